"""The engine's workers: a process pool of this machine (small jobs kept in this process)."""

from __future__ import annotations

import os
import signal

import pytest

from features.scale import tree_reduce
from service.workers import ProcessPool, WorkerLost


def _pid_plus(item, offset):
    return os.getpid(), item + offset


def _pair(item, offset):
    return [item + offset]


def _concat(parts):
    return [x for p in parts for x in p]


def test_pool_maps_in_order_on_other_processes_with_shared_data_once():
    pool = ProcessPool(2, min_rows=0, min_bytes=0)
    pool.start()
    out = pool.map(_pid_plus, list(range(20)), (100,))
    assert [v for _, v in out] == list(range(100, 120))  # order kept, shared argument applied
    pids = {p for p, _ in out}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2


def test_small_jobs_stay_in_this_process():
    pool = ProcessPool(2, min_rows=1_000, min_bytes=1_000)
    assert {p for p, _ in pool.map(_pid_plus, [1, 2, 3], (0,), nbytes=999)} == {os.getpid()}
    assert {p for p, _ in pool.map(_pid_plus, [1, 2, 3], (0,), nbytes=1_000)} != {os.getpid()}
    assert pool.map_reduce(_pair, [1, 2, 3], _concat, (0,), rows=10) == [1, 2, 3]


@pytest.mark.parametrize("n", [1, 2, 9, 17])
def test_pool_reduces_in_the_fixed_tree(n):
    def nest(parts):
        return ["(" + ",".join(str(x) for p in parts for x in p) + ")"]

    # the pool adds in item order, whatever finishes first: the same tree as tree_reduce
    expected = tree_reduce([[i] for i in range(n)], nest, 3)
    got = ProcessPool(2, min_rows=0).map_reduce(_pair, list(range(n)), nest, (0,), split_every=3, rows=n)
    assert got == expected


def _die_on_three(item, _):
    if item == 3:
        os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer would
    return [item]


def test_a_killed_worker_is_one_clear_error():
    pool = ProcessPool(2, min_rows=0, min_bytes=0)
    with pytest.raises(WorkerLost, match="a worker process died before finishing its task.*set fewer workers"):
        pool.map(_die_on_three, list(range(6)), (0,))
    with pytest.raises(OSError, match="out of memory"):  # the CLI prints OSErrors as one line
        pool.map_reduce(_die_on_three, list(range(6)), _concat, (0,))


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


def test_a_pool_starts_only_as_many_processes_as_cores_are_free():
    busy = ProcessPool(2, min_rows=0, min_bytes=0, cores=2, load=lambda: 1.0)  # one of two cores busy elsewhere
    assert busy.size(10) == 1
    assert {p for p, _ in busy.map(_pid_plus, [1, 2, 3], (0,))} == {os.getpid()}  # run here, as with one worker
    idle = ProcessPool(2, min_rows=0, min_bytes=0, cores=2, load=lambda: 0.2)
    assert idle.size(10) == 2 and idle.size(1) == 1
    assert os.getpid() not in {p for p, _ in idle.map(_pid_plus, [1, 2, 3], (0,))}
    assert (busy.used, idle.used) == ([1], [2])  # what each call ran on, as the benchmark reports it
