"""Torch threads fitted to the machine: the CPUs a process may use, the CPUs others keep busy, and who decides."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from hfnlp.errors import RecipeError
from hfnlp.recipe import apply_overrides
from hfnlp.tasks import recipe_from_dict
from hfnlp.training import threads
from hfnlp.training.resume import is_safe
from tests.test_recipe import BASE


@pytest.fixture
def eight_cpus(monkeypatch):
    """A process allowed on 8 CPUs, whatever this machine has."""
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)


@pytest.fixture
def torch_threads():
    """Restore torch's thread count after a test that changes it."""
    before = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("cpu_max", "usable"),
    [
        ("200000 100000", 2.0),  # a quota below the affinity caps it
        ("150000 100000", 1.5),
        ("max 100000", 8.0),  # no limit
        ("1600000 100000", 8.0),  # a quota above the affinity does not raise it
    ],
)
def test_cgroup_v2_quota_caps_the_usable_cpus(tmp_path, eight_cpus, cpu_max, usable):
    (tmp_path / "cpu.max").write_text(cpu_max + "\n")
    assert threads.usable_cpus(tmp_path) == usable


@pytest.mark.parametrize(
    ("folder", "quota", "usable"),
    [("cpu", "250000", 2.5), ("cpu,cpuacct", "100000", 1.0), ("cpu", "-1", 8.0), (".", "300000", 3.0)],
)
def test_cgroup_v1_quota_caps_the_usable_cpus(tmp_path, eight_cpus, folder, quota, usable):
    (tmp_path / folder).mkdir(exist_ok=True)
    (tmp_path / folder / "cpu.cfs_quota_us").write_text(quota + "\n")
    (tmp_path / folder / "cpu.cfs_period_us").write_text("100000\n")
    assert threads.usable_cpus(tmp_path) == usable


def test_without_cgroup_files_the_affinity_decides(tmp_path, eight_cpus):
    assert threads.usable_cpus(tmp_path / "absent") == 8.0


def proc_stat(user: int, system: int, idle: int, iowait: int, cpus: int = 4) -> str:
    # guest and guest_nice (the last two) are already in user and nice: large values there must not count twice
    lines = [f"cpu  {user} 0 {system} {idle} {iowait} 0 0 0 9999 9999"]
    lines += [f"cpu{i} 1 0 1 1 0 0 0 0 0 0" for i in range(cpus)]
    return "\n".join([*lines, "intr 12345", "ctxt 678", "btime 1700000000"]) + "\n"


def test_busy_cpus_is_the_machine_s_load_less_this_process_s_own(tmp_path, monkeypatch):
    stat = tmp_path / "stat"
    stat.write_text(proc_stat(user=1000, system=500, idle=8000, iowait=500))
    slept = []

    def sleep(seconds):  # the interval passes: 300 busy and 100 idle jiffies more, over 4 CPUs
        slept.append(seconds)
        stat.write_text(proc_stat(user=1200, system=600, idle=8050, iowait=550))

    cpu_times = iter([10.0, 10.125])  # this process used half a CPU over the 0.25 s
    monkeypatch.setattr(threads.time, "sleep", sleep)
    monkeypatch.setattr(threads.time, "process_time", lambda: next(cpu_times))
    # 300 / 400 of 4 CPUs busy = 3.0, less this process's 0.5
    assert threads.busy_cpus(0.25, stat) == pytest.approx(2.5)
    assert slept == [0.25]


def test_busy_cpus_is_zero_where_proc_stat_cannot_be_read(tmp_path):
    assert threads.busy_cpus(0.01, tmp_path / "absent") == 0.0
    (tmp_path / "garbled").write_text("cpu  a b c\n")
    assert threads.busy_cpus(0.01, tmp_path / "garbled") == 0.0


def test_busy_cpus_of_this_machine_is_within_its_cpus():
    assert 0.0 <= threads.busy_cpus(0.05) <= os.cpu_count()


@pytest.mark.parametrize(
    ("busy", "usable", "machine", "policy"),
    [
        (0.04, 2.0, 2, None),  # idle: spinning threads are fastest
        (1.2, 2.0, 2, "PASSIVE"),  # one other job on a 2-core machine
        (40.0, 2.0, 64, None),  # a 2-CPU quota on a busy 64-CPU host: the host's load runs on its other CPUs
        (62.5, 2.0, 64, "PASSIVE"),
    ],
)
def test_threads_wait_passively_when_other_processes_keep_a_cpu_busy(monkeypatch, busy, usable, machine, policy):
    environment: dict[str, str] = {}
    monkeypatch.setattr(os, "environ", environment)
    monkeypatch.delitem(sys.modules, "torch")  # as at the command line's start, before any command loads it
    monkeypatch.setattr(threads, "busy_cpus", lambda: busy)
    monkeypatch.setattr(threads, "usable_cpus", lambda: usable)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: machine)
    monkeypatch.setattr(threads, "_busy_at_start", [])
    assert threads.choose_wait_policy() == policy
    assert environment.get("OMP_WAIT_POLICY") == policy
    assert threads._busy_at_start == [threads.competing_cpus(busy, usable)]


def test_a_given_wait_policy_or_a_loaded_torch_is_left_alone(monkeypatch):
    monkeypatch.setattr(threads, "busy_cpus", not_measured)
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert threads.choose_wait_policy() == "ACTIVE"
    monkeypatch.delenv("OMP_WAIT_POLICY")
    assert threads.choose_wait_policy() is None  # torch is loaded in this process: too late to matter


def not_measured() -> float:
    pytest.fail("the busy CPUs were measured although a setting decided")


def test_a_recipe_value_wins_over_omp_num_threads(monkeypatch, caplog, torch_threads):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setattr(threads, "busy_cpus", not_measured)
    monkeypatch.setattr(threads, "usable_cpus", lambda: 1.5)
    record = threads.configure_threads(2)
    assert torch.get_num_threads() == 2
    assert record["num_threads"] == 2 and record["source"] == "recipe" and record["busy_cpus"] is None
    assert "training.num_threads is 2 but this process may use 1.5 CPUs" in caplog.text  # kept, with a warning


def test_omp_num_threads_is_respected(monkeypatch, torch_threads):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setattr(threads, "busy_cpus", not_measured)
    torch.set_num_threads(1)  # as an earlier run in this process may have left it
    record = threads.configure_threads(None)
    assert torch.get_num_threads() == 3
    assert (record["num_threads"], record["source"]) == (3, "OMP_NUM_THREADS")


@pytest.mark.parametrize(("usable", "chosen"), [(2.0, 2), (1.5, 1), (0.5, 1), (16.0, 16)])
def test_without_a_setting_every_usable_cpu_gets_a_thread(monkeypatch, caplog, torch_threads, usable, chosen):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.setattr(threads, "usable_cpus", lambda: usable)
    monkeypatch.setattr(threads, "busy_cpus", not_measured)
    monkeypatch.setattr(threads, "_busy_at_start", [1.2])  # as the command line measured it
    caplog.set_level(logging.INFO, logger=threads.__name__)
    record = threads.configure_threads(None)
    assert record == {
        "num_threads": chosen,
        "source": "usable CPUs",
        "usable_cpus": usable,
        "busy_cpus": 1.2,
        "omp_wait_policy": "PASSIVE",
    }
    assert torch.get_num_threads() == chosen
    (line,) = [r.getMessage() for r in caplog.records if r.name == threads.__name__]
    assert line.startswith(f"torch threads: {chosen} (from usable CPUs;") and "OMP_WAIT_POLICY=PASSIVE" in line


def test_an_omp_num_threads_that_is_no_number_is_ignored(monkeypatch, caplog, torch_threads):
    monkeypatch.setenv("OMP_NUM_THREADS", "lots")
    monkeypatch.setattr(threads, "usable_cpus", lambda: 2.0)
    assert threads.configure_threads(None)["source"] == "usable CPUs"
    assert "OMP_NUM_THREADS='lots' is not a number of threads" in caplog.text


def test_num_threads_in_a_recipe_is_checked_and_may_change_on_resume():
    with pytest.raises(RecipeError) as error:
        recipe_from_dict(apply_overrides(BASE, ["training.num_threads=0"]))
    assert "training.num_threads: 0 is not allowed; use an integer in [1, 1024] or null" in str(error.value)
    with pytest.raises(RecipeError, match="training.num_threads: 1099511627776 is not allowed"):
        recipe_from_dict(apply_overrides(BASE, ["training.num_threads=1099511627776"]))  # torch would overflow
    with pytest.raises(RecipeError, match="training.num_threads: expected"):
        recipe_from_dict(apply_overrides(BASE, ["training.num_threads=1.5"]))
    assert recipe_from_dict(apply_overrides(BASE, ["training.num_threads=2"])).training.num_threads == 2
    assert recipe_from_dict(BASE).training.num_threads is None
    assert is_safe("training.num_threads")


def test_a_cpu_run_records_its_threads_in_the_environment(monkeypatch, torch_threads):
    from hfnlp.hub.model_card import _environment
    from hfnlp.training.engine import configure_cpu_threads, environment_summary

    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    recipe = recipe_from_dict(apply_overrides(BASE, ["training.num_threads=2"]))
    torch.set_num_threads(1)
    assert configure_cpu_threads(recipe, SimpleNamespace(device=torch.device("cuda"))) is None
    assert torch.get_num_threads() == 1  # a GPU run leaves them
    record = configure_cpu_threads(recipe, SimpleNamespace(device=torch.device("cpu")))
    assert torch.get_num_threads() == 2
    environment = environment_summary(record)
    assert environment["cpu_count"] == os.cpu_count()
    assert environment["num_threads"] == 2 and environment["source"] == "recipe"
    assert environment["omp_wait_policy"] == "PASSIVE"
    rows = dict(_environment({"environment": environment}))
    assert rows["CPU threads"].startswith("2 (from recipe; ") and "OMP_WAIT_POLICY=PASSIVE" in rows["CPU threads"]


def test_the_command_line_chooses_the_wait_policy_before_torch_loads():
    # Importing the command line and parsing a command load no torch; main() then chooses the policy (a busy machine
    # is simulated by a busy_cpus that reports one CPU busy), and the command loads torch after.
    code = (
        "import os, sys, hfnlp.cli as cli, hfnlp.training.threads as t; assert 'torch' not in sys.modules; "
        "cli.build_parser().parse_args(['train', 'r.yaml']); assert 'torch' not in sys.modules; "
        "t.busy_cpus = lambda: 1.0 + (os.cpu_count() or 1) - t.usable_cpus(); "
        "cli.main(['recipe', '--data', 'none.csv'])"
    )
    env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    check = "; import torch; print(os.environ.get('OMP_WAIT_POLICY'))"
    result = subprocess.run(
        [sys.executable, "-c", f"try:\n    {code}\nexcept SystemExit:\n    pass\nimport os{check}"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "PASSIVE"
