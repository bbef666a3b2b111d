"""The engine's workers: a process pool of this machine (small jobs kept in this process)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from features.reduce import tree_reduce
from service.workers import ProcessPool, WorkerLost


def _pid_plus(item, offset):
    return os.getpid(), item + offset


def _pair(item, offset):
    return [item + offset]


def _concat(parts):
    return [x for p in parts for x in p]


def _wait_for_the_pool(flag: Path, parent: int, seconds: float = 60.0) -> None:
    """In the calling process, wait until a pool process has run an item (or ``seconds`` passed)."""
    if os.getpid() != parent:
        flag.touch()
        return
    t0 = time.monotonic()
    while not flag.exists() and time.monotonic() - t0 < seconds:
        time.sleep(0.01)


def _pid_plus_both(item, offset, flag, parent):
    _wait_for_the_pool(flag, parent)  # so that both processes take items, however slowly the pool starts
    return os.getpid(), item + offset


def test_pool_maps_in_order_here_and_on_a_pool_process_with_shared_data(tmp_path):
    pool = ProcessPool(2, min_rows=0, min_bytes=0)
    pool.start()
    out = pool.map(_pid_plus_both, list(range(20)), (100, tmp_path / "flag", os.getpid()))
    assert [v for _, v in out] == list(range(100, 120))  # order kept, shared argument applied
    pids = [p for p, _ in out]
    assert len(set(pids)) == 2 and os.getpid() in pids  # this process is one of the two workers
    assert pool.used == [2] and pool.here == [pids.count(os.getpid())]
    assert pool.last_call() == f"2 processes, {pids.count(os.getpid())} of 20 item(s) in this one"  # printed by a run


class _SlowToUnpickle:
    """Shared data that takes 10 s to arrive in a pool process (as large units would on a busy machine)."""

    def __reduce__(self):
        return (_slow_restore, ())


def _pair_shared(item, _shared):
    return [item]


def _slow_restore():
    time.sleep(10)
    return _SlowToUnpickle()


def test_a_call_done_before_its_pool_is_up_is_done_here_without_waiting_for_it():
    pool = ProcessPool(2, min_rows=0, min_bytes=0)
    got = pool.map(_pair_shared, [0, 1, 2, 3], (_SlowToUnpickle(),))
    assert got == [[0], [1], [2], [3]]
    assert pool.here == [4]  # the pool never took an item: the call did not wait for it to start


def test_small_jobs_stay_in_this_process(tmp_path):
    pool = ProcessPool(2, min_rows=1_000, min_bytes=1_000)
    assert {p for p, _ in pool.map(_pid_plus, [1, 2, 3], (0,), nbytes=999)} == {os.getpid()}
    shared = (0, tmp_path / "flag", os.getpid())
    assert [v for _, v in pool.map(_pid_plus_both, [1, 2, 3], shared, nbytes=1_000)] == [1, 2, 3]
    assert pool.map_reduce(_pair, [1, 2, 3], _concat, (0,), rows=10) == [1, 2, 3]
    assert pool.used == [1, 2, 1] and pool.here[0] == pool.here[2] == 3  # only the second call started a pool


@pytest.mark.parametrize("n", [1, 2, 9, 17])
def test_pool_reduces_in_the_fixed_tree(n):
    def nest(parts):
        return ["(" + ",".join(str(x) for p in parts for x in p) + ")"]

    # the pool adds in item order, whatever finishes first: the same tree as tree_reduce
    expected = tree_reduce([[i] for i in range(n)], nest, 3)
    got = ProcessPool(2, min_rows=0).map_reduce(_pair, list(range(n)), nest, (0,), split_every=3, rows=n)
    assert got == expected


def _die_in_the_pool(item, flag, parent):
    if os.getpid() != parent:
        flag.touch()
        os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer would
    _wait_for_the_pool(flag, parent)  # this process waits, so that the pool takes an item (and dies)
    return [item]


def test_a_killed_worker_is_one_clear_error(tmp_path):
    pool = ProcessPool(2, min_rows=0, min_bytes=0)
    with pytest.raises(WorkerLost, match="a worker process died before finishing its task.*set fewer workers"):
        pool.map(_die_in_the_pool, list(range(6)), (tmp_path / "a", os.getpid()))
    with pytest.raises(OSError, match="out of memory"):  # the CLI prints OSErrors as one line
        pool.map_reduce(_die_in_the_pool, list(range(6)), _concat, (tmp_path / "b", os.getpid()))


def test_workers_validated():
    with pytest.raises(ValueError, match="workers must be >= 1, got 0"):
        ProcessPool(0)


def _blas_threads(item, _):
    from threadpoolctl import threadpool_info

    return sorted({lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"})


@pytest.mark.parametrize(("cores", "threads"), [(2, 1), (4, 2)])
def test_a_pools_workers_run_their_share_of_the_cores_as_blas_threads(cores, threads):
    out = ProcessPool(2, min_rows=0, min_bytes=0, cores=cores).map(_blas_threads, [0, 1, 2, 3], (None,))
    assert out == [[threads]] * 4  # 2 processes x threads <= cores


def test_a_pool_starts_only_as_many_processes_as_cores_are_free(tmp_path):
    busy = ProcessPool(2, min_rows=0, min_bytes=0, cores=2, load=lambda: 1.0)  # one of two cores busy elsewhere
    assert busy.size(10) == 1
    assert {p for p, _ in busy.map(_pid_plus, [1, 2, 3], (0,))} == {os.getpid()}  # run here, as with one worker
    idle = ProcessPool(2, min_rows=0, min_bytes=0, cores=2, load=lambda: 0.2)
    assert idle.size(10) == 2 and idle.size(1) == 1
    assert [v for _, v in idle.map(_pid_plus_both, [1, 2, 3], (0, tmp_path / "flag", os.getpid()))] == [1, 2, 3]
    assert (busy.used, idle.used) == ([1], [2])  # what each call ran on, as the benchmark reports it
    assert busy.here == [3]


def _spool_and_item(item, flag, parent):
    from service import workers

    _wait_for_the_pool(flag, parent)
    return (workers._SPOOL if os.getpid() != parent else None), [item] * 1000


def _spool_gone(root: Path, seconds: float = 10.0) -> bool:
    t0 = time.monotonic()
    while list(root.glob("svrisk-pool-*")) and time.monotonic() - t0 < seconds:
        time.sleep(0.05)
    return not list(root.glob("svrisk-pool-*"))


def test_pool_results_come_back_through_a_spool_folder_removed_after_the_call(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the call makes its spool folder
    out = ProcessPool(2, min_rows=0, min_bytes=0).map(_spool_and_item, list(range(12)),
                                                      (tmp_path / "flag", os.getpid()))
    assert [v for _, v in out] == [[i] * 1000 for i in range(12)]
    spools = {s for s, _ in out if s is not None}
    assert len(spools) == 1 and Path(next(iter(spools))).parent == tmp_path  # the pool's items went that way
    assert not list(tmp_path.glob("svrisk-pool-*"))  # removed once the call is over


def _lose_the_spool(item, flag, parent):
    import shutil

    from service import workers

    _wait_for_the_pool(flag, parent)
    if os.getpid() != parent and workers._SPOOL:
        shutil.rmtree(workers._SPOOL, ignore_errors=True)  # as a full disk or a cleaned /tmp would
    return [item]


def test_a_result_that_cannot_be_spooled_comes_back_through_the_pipe(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    pool = ProcessPool(2, min_rows=0, min_bytes=0)
    assert pool.map(_lose_the_spool, list(range(10)), (tmp_path / "flag", os.getpid())) == [[i] for i in range(10)]
    assert pool.used == [2] and pool.here[0] < 10  # the pool process did take items


def test_a_killed_worker_leaves_no_spool_folder(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(WorkerLost):
        ProcessPool(2, min_rows=0, min_bytes=0).map(_die_in_the_pool, list(range(6)), (tmp_path / "a", os.getpid()))
    assert _spool_gone(tmp_path)
