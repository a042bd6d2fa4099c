"""How many threads torch computes with on CPU: as many as this process may use and other processes leave free.

PyTorch starts one intra-op thread per core it sees, and OpenMP threads spin while they wait for each other. When
other jobs keep some of those cores busy, the threads spin on cores they do not get: on 2 cores with one other
2-thread process, 60 training steps took 34.5 s with PyTorch's default threads, 12.5 s with 1 thread and 13.8 s with
2 threads that wait passively; with several competing jobs the default was 150× slower.

Measured with ``scripts/bench_threads.py`` (quickstart BiLSTM steps, 2 cores; docs/benchmarks.md): idle, spinning
threads are fastest (2 threads 0.084 s/step, passive 0.114); with one or two other 2-thread jobs, 2 passive threads
are within 1.17× of the best setting while 2 spinning ones are 3-4× slower. So the command line measures the load
before torch loads and makes threads wait passively only when other processes keep a CPU busy
(:func:`choose_wait_policy`); torch then computes with every usable CPU (:func:`configure_threads`). A load that starts
after the run began is not seen: set ``OMP_WAIT_POLICY=PASSIVE`` for a machine that is always shared.

Nothing here imports torch at module level: :func:`choose_wait_policy` must run before torch is imported.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_STAT = Path("/proc/stat")
# Other processes' CPU use (in CPUs) from which threads wait passively: one competing thread already makes spinning
# threads 3× slower on 2 cores, and an idle machine measures well below this (0.04).
BUSY_FOR_PASSIVE = 0.5
_busy_at_start: list[float] = []  # what choose_wait_policy measured, for configure_threads' record


def choose_wait_policy() -> str | None:
    """Make OpenMP threads sleep rather than spin while they wait if other processes keep BUSY_FOR_PASSIVE CPUs or
    more busy (of those this process may use), unless ``OMP_WAIT_POLICY`` is set already; return the policy.

    The OpenMP runtime reads the variable once, when it is loaded, that is when torch is imported: this has an
    effect only if it runs before anything in the process imports torch (the command line calls it first), and it
    does nothing once torch is loaded. Measuring takes a quarter of a second.
    """
    if "OMP_WAIT_POLICY" in os.environ or "torch" in sys.modules:
        return os.environ.get("OMP_WAIT_POLICY")
    busy = competing_cpus(busy_cpus(), usable_cpus())
    _busy_at_start[:] = [busy]
    if busy >= BUSY_FOR_PASSIVE:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return os.environ.get("OMP_WAIT_POLICY")


def competing_cpus(busy: float, usable: float) -> float:
    """The part of the machine's ``busy`` CPUs that competes with this process's ``usable`` ones: /proc/stat counts
    the whole machine, and load beyond the CPUs this process may use runs elsewhere (a container with a 2-CPU quota
    on a busy 64-CPU host is not short of CPUs)."""
    return round(max(0.0, busy - max(0.0, (os.cpu_count() or 1) - usable)), 2)


def usable_cpus(cgroup_root: Path | str = CGROUP_ROOT) -> float:
    """The CPUs this process may use: its CPU affinity, capped by a cgroup CPU quota (v2 ``cpu.max``, or v1
    ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``) under ``cgroup_root``. A quota may be fractional (1.5 CPUs)."""
    try:
        cpus = float(len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux: no affinity to ask for
        cpus = float(os.cpu_count() or 1)
    quota = _cgroup_quota(Path(cgroup_root))
    return min(cpus, quota) if quota is not None else cpus


def _cgroup_quota(root: Path) -> float | None:
    # v2 keeps "<quota> <period>" in one file; v1 has two files, in the cpu controller's folder (cpu/ is usually a
    # link to cpu,cpuacct/) or at the root when only that controller is mounted there.
    v2 = _read(root / "cpu.max")
    if v2 is not None:
        quota, _, period = v2.partition(" ")
        return _quota(quota, period)
    for folder in (root / "cpu", root / "cpu,cpuacct", root):
        quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
        if quota is not None and period is not None:
            return _quota(quota, period)
    return None


def _quota(quota: str, period: str) -> float | None:
    try:
        cpus = int(quota) / int(period)
    except (ValueError, ZeroDivisionError):  # v2 writes "max" for no limit
        return None
    return cpus if cpus > 0 else None  # v1 writes -1 for no limit


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def busy_cpus(interval: float = 0.25, proc_stat: Path | str = PROC_STAT) -> float:
    """How many CPUs of the machine other processes keep busy now: the non-idle share of ``/proc/stat``'s CPU time
    over ``interval`` seconds, times the CPU count, less this process's own CPU time over the interval. 0.0 where
    ``/proc/stat`` cannot be read (not Linux)."""
    path = Path(proc_stat)
    try:
        busy_before, total_before, _ = _cpu_jiffies(path)
        own_before = time.process_time()
        time.sleep(interval)
        busy_after, total_after, cpus = _cpu_jiffies(path)
    except (OSError, ValueError, IndexError):
        return 0.0
    own = (time.process_time() - own_before) / interval
    elapsed = total_after - total_before
    if elapsed <= 0:
        return 0.0
    return max(0.0, (busy_after - busy_before) / elapsed * cpus - own)


def _cpu_jiffies(path: Path) -> tuple[int, int, int]:
    """(non-idle jiffies, all jiffies, CPU count) from ``/proc/stat``."""
    lines = path.read_text().splitlines()
    aggregate = next(line for line in lines if line.startswith("cpu ")).split()
    # user nice system idle iowait irq softirq steal; guest time is already counted in user and nice. Steal counts as
    # busy: the hypervisor gave that time to someone else.
    jiffies = [int(value) for value in aggregate[1:9]]
    idle = jiffies[3] + jiffies[4]
    cpus = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
    return sum(jiffies) - idle, sum(jiffies), cpus


def configure_threads(requested: int | None) -> dict[str, Any]:
    """Set torch's intra-op threads and return how they were chosen.

    ``requested`` (the recipe's ``training.num_threads``) wins; else ``OMP_NUM_THREADS``, the user's setting for the
    process, is kept; else one thread per usable CPU (:func:`usable_cpus`, at least 1): on a busy machine the wait
    policy, not fewer threads, is what keeps them from collapsing (see the module's measurements). The record,
    logged in one line, is ``{"num_threads", "source" ("recipe", "OMP_NUM_THREADS" or "usable CPUs"),
    "usable_cpus", "busy_cpus" (as :func:`choose_wait_policy` measured them, None if it did not), "omp_wait_policy"}``.
    """
    import torch  # here: importing this module must not load torch (see choose_wait_policy)

    usable = usable_cpus()
    busy = _busy_at_start[0] if _busy_at_start else None
    from_environment = _omp_num_threads()
    if requested is not None:
        threads, source = requested, "recipe"
        if requested > usable:
            logger.warning(
                "training.num_threads is %d but this process may use %s CPUs: the threads will wait for each other",
                requested,
                usable,
            )
    elif from_environment is not None:
        # Set again although torch read it at start-up: an earlier run in this process may have changed the threads.
        threads, source = from_environment, "OMP_NUM_THREADS"
    else:
        threads, source = max(1, math.floor(usable)), "usable CPUs"
    torch.set_num_threads(threads)
    record = {
        "num_threads": threads,
        "source": source,
        "usable_cpus": usable,
        "busy_cpus": busy,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
    }
    logger.info(
        "torch threads: %(num_threads)d (from %(source)s; %(usable_cpus)s usable CPUs, busy with other processes: "
        "%(busy_cpus)s, OMP_WAIT_POLICY=%(omp_wait_policy)s)",
        record,
    )
    return record


def _omp_num_threads() -> int | None:
    # OpenMP also takes a list for nested levels ("4,2"): the first is the outer level's.
    value = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if not value:
        return None
    try:
        threads = int(value)
    except ValueError:
        threads = 0
    if threads < 1:
        logger.warning("OMP_NUM_THREADS=%r is not a number of threads >= 1: ignored", os.environ["OMP_NUM_THREADS"])
        return None
    return threads
