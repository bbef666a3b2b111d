"""Where the engine's parallel work runs: a pool of processes on this machine, or a Dask cluster.

Both give the two calls the pipeline needs, with the same meaning:

* ``map(func, items, shared=(), nbytes=None)`` -> ``[func(item, *shared) for item in items]``, in order;
* ``map_reduce(func, items, combine, shared=(), rows=None)`` -> the results added in the fixed
  tree of :func:`features.scale.tree_reduce` (so the sums do not depend on who ran which item).

``nbytes`` (input bytes) and ``rows`` (events) say how big the whole job is: a
:class:`ProcessPool` runs a job smaller than :data:`PARALLEL_MIN_BYTES` or
:data:`PARALLEL_MIN_ROWS` in this process, where starting workers and sending them the
shared data would cost more than it saves (measured in ``benchmarks/scale.py``: one
borough's event sums took 0.5 s in process and 3 s on a pool of 2). A cluster always
runs what it is given.

``shared`` (e.g. the units every piece of events is located in) is sent to each worker once,
not with every item. :class:`ProcessPool` forks its workers from a clean ``forkserver``
process (never from this one, which may hold threads and locks: the API's job threads, a
Dask client, OpenMP), so they start in milliseconds once the server is up.
:class:`DaskWorkers` runs one task per item on the cluster, scatters ``shared`` to every
worker, and adds the results in the same tree on the workers; only the total comes back.
"""

from __future__ import annotations

import errno
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import forkserver

from features.scale import SPLIT_EVERY, TreeReducer, serial_map_reduce, tree_reduce
from service.cores import free_cores, thread_budget, usable_cores

_SHARED: tuple = ()
PARALLEL_MIN_ROWS = 300_000
"""Events below which a pool sums them in this process (about 2 s of work on one core)."""
PARALLEL_MIN_BYTES = 32 * 2**20
"""Input bytes below which a pool loads files in this process (about 15 s of work on one core)."""
PRELOAD = ["__main__", "features.scale", "sources.ingest"]
"""Modules the forkserver imports once, so a forked worker starts with them loaded (``__main__``
as multiprocessing does by default: a worker needs it to unpickle what the main script defines)."""


class WorkerLost(OSError):
    """A worker process died before finishing its task (killed: most often by the out-of-memory killer).

    An ``OSError``: the operating system took the process away, so the CLI prints it as one
    line (``error: ...``) and exits 2, with what to do, instead of a traceback.
    """


def _lost(exc: BaseException) -> WorkerLost:
    return WorkerLost(errno.ECHILD, f"a worker process died before finishing its task ({exc}); the machine may be "
                      "out of memory: set fewer workers (svrisk.toml `workers`, or SVRISK_WORKERS=1) and run again")


def _init(shared: tuple, threads: int) -> None:
    global _SHARED
    _SHARED = shared
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)  # BLAS and OpenMP of this worker: the pool's processes x threads <= cores


def _call(func, item):
    return func(item, *_SHARED)


def _context():
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


class ProcessPool:
    """``map`` and ``map_reduce`` over ``workers`` processes of this machine (1: in this process).

    A pool is started for each call and closed after it (its workers fork from the
    forkserver in milliseconds), so no pool is left running while the caller trains a
    model; ``shared`` is pickled once per worker. Jobs under ``min_rows`` events or
    ``min_bytes`` of input run in this process. Each worker's BLAS and OpenMP threads are
    limited (threadpoolctl) to :func:`service.cores.thread_budget` of the pool's processes
    and the ``cores`` this process may use (None: :func:`service.cores.usable_cores`).

    With ``load`` (a callable giving the runnable threads of other work now, e.g.
    :func:`service.cores.load_now`), ``workers`` is the most: each call starts only as many
    processes as cores are free then (:func:`service.cores.free_cores`), and runs in this
    process when one is; on a busy machine a second process cost more than it gave (London,
    2 cores, load 3-4: event sums 10.7 s on 2 workers against 9.7 s on 1; issue 34).
    """

    def __init__(self, workers: int, min_rows: int = PARALLEL_MIN_ROWS, min_bytes: int = PARALLEL_MIN_BYTES,
                 cores: int | None = None, load=None):
        if int(workers) < 1:
            raise ValueError(f"workers must be >= 1, got {workers!r}")
        self.workers = int(workers)
        self.min_rows, self.min_bytes = int(min_rows), int(min_bytes)
        self.cores = int(cores) if cores is not None else usable_cores()
        self.load = load
        self.used: list[int] = []  # processes each pooled call ran on (1: in this process), for benchmarks

    def __repr__(self) -> str:
        return f"ProcessPool(workers={self.workers})"

    def start(self) -> None:
        """Launch the forkserver now: a fresh interpreter that imports :data:`PRELOAD` meanwhile.

        The imports take a few seconds of one core; launched when the engine is entered,
        the server is ready by the time the events are summed (the pipeline builds the
        units first), and the first pool's workers fork from it at once.
        """
        if self.size(self.workers) > 1:  # on a busy machine the server's imports would take a core from the run
            _context()
            forkserver.ensure_running()

    def size(self, items: int) -> int:
        """Processes a call with ``items`` items starts now: ``workers`` at most, one per item,
        and with ``load`` only as many as cores are free."""
        n = min(self.workers, int(items))
        if n > 1 and self.load is not None:
            n = min(n, free_cores(self.cores, self.load()))
        return max(n, 1)

    def _executor(self, items: list, shared: tuple) -> ProcessPoolExecutor | None:
        n = self.size(len(items)) if items else 0
        self.used.append(max(n, 1))
        if n < 2:
            return None
        return ProcessPoolExecutor(max_workers=n, mp_context=_context(), initializer=_init,
                                   initargs=(shared, thread_budget(n, self.cores)))

    def _in_order(self, pool: ProcessPoolExecutor, func, items: list):
        """``func(item, *shared)`` of every item on ``pool``, yielded in item order.

        On an error or an interrupt (here or in the caller) the items not started are
        cancelled rather than waited for; a worker that died is :class:`WorkerLost`.
        """
        try:
            with pool:
                futures = [pool.submit(_call, func, item) for item in items]
                try:
                    for f in futures:
                        yield f.result()
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
        except BrokenProcessPool as exc:
            raise _lost(exc) from None

    def map(self, func, items, shared: tuple = (), nbytes: int | None = None) -> list:
        items = list(items)
        small = nbytes is not None and nbytes < self.min_bytes
        pool = None if small else self._executor(items, tuple(shared))
        if pool is None:
            return [func(item, *shared) for item in items]
        return list(self._in_order(pool, func, items))

    def map_reduce(self, func, items, combine, shared: tuple = (), split_every: int = SPLIT_EVERY,
                   rows: int | None = None):
        items = list(items)
        small = rows is not None and rows < self.min_rows
        pool = None if small else self._executor(items, tuple(shared))
        if pool is None:
            return serial_map_reduce(func, items, combine, shared, split_every)
        reducer = TreeReducer(combine, split_every)
        for result in self._in_order(pool, func, items):  # in item order: the same tree whatever finishes first
            reducer.push(result)
        return reducer.result()


def _apply(item, fn, shared):
    return fn(item, *shared)


def _combine(parts, combine):
    return combine(list(parts))


class DaskWorkers:
    """``map`` and ``map_reduce`` on a ``distributed`` client: one task per item."""

    def __init__(self, client):
        self.client = client

    def _shared(self, shared: tuple):
        return self.client.scatter([tuple(shared)], broadcast=True)[0] if shared else ()

    def map(self, func, items, shared: tuple = (), nbytes: int | None = None) -> list:
        items = list(items)
        if not items:
            return []
        futures = self.client.map(_apply, items, fn=func, shared=self._shared(shared), pure=False)
        try:
            return self.client.gather(futures)
        except Exception as exc:
            raise _dask_lost(exc) from None

    def map_reduce(self, func, items, combine, shared: tuple = (), split_every: int = SPLIT_EVERY,
                   rows: int | None = None):
        items = list(items)
        futures = self.client.map(_apply, items, fn=func, shared=self._shared(shared), pure=False)

        def add(group):
            return self.client.submit(_combine, group, combine, pure=False)

        total = tree_reduce(futures, add, split_every) if futures else None
        if total is None:
            raise ValueError("nothing to reduce")
        try:
            return total.result()
        except Exception as exc:
            raise _dask_lost(exc) from None


def _dask_lost(exc: Exception) -> Exception:
    """A worker lost on the cluster (``KilledWorker``: the task killed every worker that ran it) as
    :class:`WorkerLost`; any other error is the task's own and goes up unchanged."""
    from distributed import KilledWorker

    return _lost(exc) if isinstance(exc, KilledWorker) else exc


def geo_worker_plugin():
    """A Dask worker plugin that imports ``dask_geopandas`` on every worker, as the client does,
    and the modules of :data:`PRELOAD`, as the local pool's forkserver does.

    dask-geopandas registers how a GeoDataFrame partition travels through Arrow (the P2P
    shuffle behind ``spatial_shuffle``); a process worker that never imported it decodes the
    geometry column as WKB bytes and fails with ``TypeError: Input must be valid geometry
    objects: b'\\x01\\x01...'``. The other imports (1.8 s for ``features.scale``) would
    otherwise be paid by each worker's first task. Registered by :class:`service.engine.Engine`
    on connecting, which waits for it.
    """
    from distributed.diagnostics.plugin import WorkerPlugin

    class GeoWorkerImports(WorkerPlugin):
        name = "svrisk-geo-imports"

        def setup(self, worker) -> None:
            import importlib

            import dask_geopandas  # noqa: F401

            for module in PRELOAD:
                if module != "__main__":
                    importlib.import_module(module)

    return GeoWorkerImports()
