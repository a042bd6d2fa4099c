"""What ``bench_vision.py --speed`` and ``bench_captioning.py --speed`` share: timing a workload's floor (the plainest
loop, in each layout and precision this machine offers) and reading hfnlp's own training throughput.

The floor of a workload is the fastest of its plain loops over ready tensors: no data loading, no Trainer, no
callbacks, in float32 and (where the CPU computes bf16 natively, or on a GPU) bf16 autocast, each with the
convolution weights in NCHW and in channels-last. hfnlp's figure for the same workload includes everything it does
(reading and decoding images, collation, Trainer's step), so the ratio is the whole cost of the tool over the math.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from hfnlp.training.arguments import cpu_has_native_bf16


@dataclass(frozen=True)
class Setting:
    """One layout and precision a floor is measured in."""

    bf16: bool
    channels_last: bool | None  # None: no convolution, no layout to choose

    @property
    def name(self) -> str:
        precision = "bf16" if self.bf16 else "fp32"
        return precision if self.channels_last is None else f"{precision}, {'NHWC' if self.channels_last else 'NCHW'}"


def settings(layouts: bool = True) -> list[Setting]:
    """Every precision this machine computes natively, each in both layouts (only NCHW when ``layouts`` is off:
    a model without convolutions has no layout to choose)."""
    precisions = [False, True] if torch.cuda.is_available() or cpu_has_native_bf16() else [False]
    return [Setting(bf16, last) for bf16 in precisions for last in ([False, True] if layouts else [None])]


@contextmanager
def autocast(setting: Setting) -> Iterator[None]:
    """bf16 autocast when ``setting`` asks for it (as Trainer applies it), else nothing."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.autocast(device, dtype=torch.bfloat16, enabled=setting.bf16):
        yield


def items_per_second(step: Callable[[], None], items: int, repeats: int = 5) -> float:
    """``items`` over the median time of ``repeats`` calls of ``step``, after one untimed warm-up call."""
    step()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return items / statistics.median(times)


@dataclass(frozen=True)
class Floor:
    """The fastest setting of a workload's plain loop, with every setting's figure."""

    best: Setting
    per_second: float
    all: dict[str, float]


def floor(measure: Callable[[Setting], float], layouts: bool = True) -> Floor:
    """Measure ``measure(setting)`` (items per second) in every setting and keep the fastest."""
    figures = {setting: measure(setting) for setting in settings(layouts)}
    best = max(figures, key=figures.__getitem__)
    return Floor(best, figures[best], {setting.name: value for setting, value in figures.items()})


@contextmanager
def trained_run(recipe: str, overrides: list[str], limit_eval: int) -> Iterator[Path]:
    """Run ``hfnlp train recipe --limit-eval N --set ...`` into a temporary folder and yield its run folder
    (named by hfnlp after the limit), which is deleted afterwards."""
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "hfnlp", "train", recipe, "--limit-eval", str(limit_eval)]
        for override in (f"output_dir={Path(folder) / 'run'}", *overrides):
            command += ["--set", override]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        (run_dir,) = Path(folder).iterdir()
        yield run_dir


def training_throughput(run_dir: Path) -> float:
    """hfnlp's training samples per second in ``run_dir``: the median of the live status's throughput points
    (each the samples over the time between two training logs, evaluation excluded), the first one left out
    because it holds the warm-up."""
    points = json.loads((run_dir / "live_status.json").read_text())["throughput"]
    if len(points) < 2:
        raise SystemExit(f"{run_dir}: fewer than two throughput points; train more steps or log more often")
    return statistics.median(value for _, value in points[1:])


def table(rows: list[tuple[str, Floor, float]]) -> str:
    """A Markdown table of ``(workload, floor, hfnlp per second)`` rows, every setting of the floor listed."""
    lines = [
        "| workload | floor: every setting /s | floor /s | hfnlp /s | hfnlp time ÷ floor time |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for workload, best, hfnlp_rate in rows:
        every = "; ".join(f"{name} {value:.1f}" for name, value in best.all.items())
        ratio = best.per_second / hfnlp_rate
        lines.append(f"| {workload} | {every} | {best.per_second:.1f} | {hfnlp_rate:.1f} | {ratio:.2f}× |")
    return "\n".join(lines)
