"""Flowers benchmark: EfficientNet-Lite0 fine-tuned with and without augmentation, and trained from scratch.

    python scripts/bench_vision.py --train    # train every variant without a metrics.json yet, then print
    python scripts/bench_vision.py            # print the table from the finished runs

Each variant trains in its own ``hfnlp train`` process, logging to ``<runs-dir>/<variant>.log``; the table
(test accuracy, macro F1, epochs, training time, training images per second) is read from the run folders'
``metrics.json``. The runs are long on a CPU: start them in the background, e.g.
``OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 nohup python scripts/bench_vision.py --train > runs/bench-vision.log 2>&1 &``
(on a CPU shared with other jobs one intra-op thread was about twice as fast as two: less waiting on each other).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Variant:
    """One benchmark run: a recipe plus ``--set`` overrides."""

    name: str
    recipe: str
    overrides: tuple[str, ...] = ()
    pretrained: bool = True
    augmentation: bool = True


VARIANTS = (
    Variant("finetune-augmented", "recipes/flowers-finetune.yaml"),
    Variant(
        "finetune-no-augmentation",
        "recipes/flowers-finetune.yaml",
        ("data.augmentation.enabled=false",),
        augmentation=False,
    ),
    Variant("scratch-augmented", "recipes/flowers-scratch.yaml", pretrained=False),
)


def train(variant: Variant, runs_dir: Path, extra: list[str]) -> int:
    """Run ``hfnlp train`` for ``variant`` into ``runs_dir/<name>``; return its exit status."""
    overrides = [*variant.overrides, f"output_dir={runs_dir / variant.name}", *extra]
    command = [sys.executable, "-m", "hfnlp", "train", variant.recipe]
    if (runs_dir / variant.name).is_dir():
        command.append("--resume")  # an interrupted run continues from its last checkpoint
    for override in overrides:
        command += ["--set", override]
    log = runs_dir / f"{variant.name}.log"
    print(f"training {variant.name} (log: {log})", flush=True)
    with log.open("w") as handle:
        return subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, check=False).returncode


def table(runs_dir: Path) -> str:
    """A Markdown table of every variant: finished ones with their numbers, others marked as missing."""
    lines = [
        "| variant | pretrained | augmentation | test accuracy | macro F1 | epochs | train time | images/s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for variant in VARIANTS:
        metrics_path = runs_dir / variant.name / "metrics.json"
        flags = (
            f"| {variant.name} | {'yes' if variant.pretrained else 'no'} | {'yes' if variant.augmentation else 'no'} |"
        )
        if not metrics_path.is_file():
            lines.append(f"{flags} not run yet | | | | |")
            continue
        metrics = json.loads(metrics_path.read_text())
        lines.append(
            f"{flags} {metrics['test']['accuracy']:.2%} | {metrics['test']['macro_f1']:.4f} | {metrics['epochs']:g} | "
            f"{metrics['train_runtime_s'] / 60:.1f} min | {metrics['train_samples_per_second']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", action="store_true", help="train the variants that have no metrics.json yet")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/bench-vision"))
    parser.add_argument("--set", dest="extra", action="append", default=[], help="extra override for every run")
    args = parser.parse_args(argv)
    args.runs_dir.mkdir(parents=True, exist_ok=True)
    status = 0
    if args.train:
        for variant in VARIANTS:
            if not (args.runs_dir / variant.name / "metrics.json").is_file():
                status = train(variant, args.runs_dir, args.extra) or status
    print(table(args.runs_dir))
    return status


if __name__ == "__main__":
    sys.exit(main())
