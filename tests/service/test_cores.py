"""Cores the engine may use, the load of other work, and the thread budget of a pool."""

from __future__ import annotations

import pytest

from service.cores import cgroup_cpu_limit, free_cores, load_now, thread_budget, usable_cores


def _cgroup_v2(root, text):
    root.mkdir(exist_ok=True)
    (root / "cpu.max").write_text(text)
    return root


def _cgroup_v1(root, quota, period="100000"):
    (root / "cpu").mkdir(parents=True, exist_ok=True)
    (root / "cpu" / "cpu.cfs_quota_us").write_text(quota + "\n")
    (root / "cpu" / "cpu.cfs_period_us").write_text(period + "\n")
    return root


@pytest.mark.parametrize(("affinity", "v2", "v1", "cores"), [
    (range(8), None, None, 8),                   # no cgroup files: the affinity mask
    ({0, 1}, None, None, 2),                     # taskset -c 0,1 on a bigger machine
    ({3}, "max 100000", None, 1),                # one CPU allowed, no quota
    (range(8), "200000 100000", None, 2),        # docker --cpus 2 (cgroup v2)
    (range(8), "150000 100000", None, 2),        # --cpus 1.5: two processes use the 1.5 cores
    (range(8), "50000 100000", None, 1),         # half a core: still one
    ({0, 1}, "400000 100000", None, 2),          # a quota above the mask: the mask
    (range(16), None, ("300000", "100000"), 3),  # cgroup v1 quota of 3 cores
    (range(4), None, ("-1", "100000"), 4),       # cgroup v1 without a quota (this machine's files)
])
def test_usable_cores_from_the_affinity_mask_and_the_cgroup_quota(tmp_path, affinity, v2, v1, cores):
    root = tmp_path / "cgroup"
    root.mkdir()
    if v2 is not None:
        _cgroup_v2(root, v2 + "\n")
    if v1 is not None:
        _cgroup_v1(root, *v1)
    assert usable_cores(affinity, cgroup_root=root) == cores


def test_cgroup_v2_read_before_v1_and_bad_files_named(tmp_path):
    both = _cgroup_v1(_cgroup_v2(tmp_path / "both", "100000 100000"), "300000")
    assert cgroup_cpu_limit(both) == 1.0
    assert cgroup_cpu_limit(tmp_path / "none") is None
    bad = _cgroup_v2(tmp_path / "bad", "lots 100000")
    with pytest.raises(ValueError, match=r"bad/cpu.max: expected '<quota> <period>'.*got 'lots 100000'"):
        usable_cores({0, 1}, cgroup_root=bad)
    bad_v1 = _cgroup_v1(tmp_path / "bad_v1", "1.5")
    with pytest.raises(ValueError, match=r"cpu.cfs_quota_us / .*cpu.cfs_period_us: expected whole microseconds"):
        cgroup_cpu_limit(bad_v1)


@pytest.mark.parametrize(("affinity", "quota", "processes", "threads"), [
    (range(8), None, 1, 8),       # one process (a fit): every usable core as threads
    (range(8), None, 2, 4),
    (range(8), None, 3, 2),       # 3 x 2 = 6 <= 8; never 3 x 3
    ({0, 1}, None, 2, 1),         # this machine's two cores, a pool of two: one thread each
    (range(8), "200000 100000", 2, 1),  # eight CPUs in the mask, a quota of two
    (range(8), "200000 100000", 1, 2),
])
def test_processes_times_threads_never_exceed_the_usable_cores(tmp_path, affinity, quota, processes, threads):
    if quota is not None:
        _cgroup_v2(tmp_path, quota)
    cores = usable_cores(affinity, cgroup_root=tmp_path)
    assert thread_budget(processes, cores) == threads
    assert processes * thread_budget(processes, cores) <= cores


def test_thread_budget_is_at_least_one_thread():
    assert thread_budget(4, 2) == 1  # more processes than cores (a number set by hand): one thread each
    with pytest.raises(ValueError, match="processes must be >= 1, got 0"):
        thread_budget(0, 2)


@pytest.mark.parametrize(("cores", "load", "free"), [
    (2, 0.0, 2), (2, 0.4, 2), (2, 0.6, 1), (2, 1.0, 1), (2, 5.0, 1), (8, 2.5, 6), (4, -1.0, 4),
])
def test_free_cores_leave_the_busy_ones_and_never_fall_below_one(cores, load, free):
    assert free_cores(cores, load) == free


def test_load_now_counts_other_runnable_threads(tmp_path):
    loadavg = tmp_path / "loadavg"
    loadavg.write_text("3.52 2.10 1.01 4/145 8420\n")  # 4 running, one of them the reader
    assert load_now(samples=3, interval=0.0, loadavg=loadavg) == 3.0
    loadavg.write_text("0.00 0.00 0.00 1/90 12\n")
    assert load_now(samples=1, loadavg=loadavg) == 0.0
    loadavg.write_text("garbled\n")
    with pytest.raises(ValueError, match="loadavg: expected .*got 'garbled'"):
        load_now(samples=1, loadavg=loadavg)


def test_load_now_leaves_out_this_processs_own_running_children(tmp_path):
    """The pool's forkserver importing its modules is this run's work, not other work."""
    loadavg = tmp_path / "loadavg"
    loadavg.write_text("3.52 2.10 1.01 4/145 8420\n")
    proc = tmp_path / "proc"
    (proc / "self" / "task" / "7").mkdir(parents=True)
    (proc / "self" / "task" / "7" / "children").write_text("101 102 103 ")
    for pid, state in (("101", "R"), ("102", "S")):  # 103 ended meanwhile: no stat file
        (proc / pid).mkdir()
        (proc / pid / "stat").write_text(f"{pid} (python (forkserver)) {state} 7 101 101 0 -1 4194560\n")
    assert load_now(samples=2, interval=0.0, loadavg=loadavg, proc=proc) == 2.0  # 4 less the reader, less 101


def test_load_now_leaves_out_this_processs_own_running_threads(tmp_path):
    """The caller summing events while a helper thread reads the load is this run's work, not other work."""
    loadavg = tmp_path / "loadavg"
    loadavg.write_text("3.52 2.10 1.01 4/145 8420\n")
    proc = tmp_path / "proc"
    for tid, state in (("7", "R"), ("8", "R"), ("9", "S")):  # 7 the caller at work, 8 the reader, 9 asleep
        (proc / "self" / "task" / tid).mkdir(parents=True)
        (proc / "self" / "task" / tid / "stat").write_text(f"{tid} (python) {state} 1 7 7 0 -1 4194560\n")
    assert load_now(samples=2, interval=0.0, loadavg=loadavg, proc=proc) == 2.0  # 4 less the two of ours
    assert load_now(samples=1, loadavg=loadavg, proc=tmp_path / "none") == 3.0  # no task list: the reader only
