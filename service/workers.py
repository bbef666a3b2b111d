"""Where the engine's parallel work runs: a pool of processes on this machine, or a Dask cluster.

Both give the two calls the pipeline needs, with the same meaning:

* ``map(func, items, shared=(), nbytes=None)`` -> ``[func(item, *shared) for item in items]``, in order;
* ``map_reduce(func, items, combine, shared=(), rows=None)`` -> the results added in the fixed
  tree of :func:`features.reduce.tree_reduce` (so the sums do not depend on who ran which item).

``nbytes`` (input bytes) and ``rows`` (events) say how big the whole job is: a
:class:`ProcessPool` runs a job smaller than :data:`PARALLEL_MIN_BYTES` or
:data:`PARALLEL_MIN_ROWS` in this process and starts no pool: the pool's processes could not
start in time to take a share (measured in ``benchmarks/scale.py``: one borough's event
sums took 0.5 s in process and 3 s on a pool of 2 started before this process worked too).
A larger job is shared between this process, which starts at once, and the pool's processes
as they come up (see :class:`ProcessPool`). A cluster always runs what it is given.

``shared`` (e.g. the units every piece of events is located in) is sent to each worker once,
not with every item, and a pool process's results come back through files of a private folder
made for the call (removed after it), not the pool's pipe (see :func:`_call`). :class:`ProcessPool` forks its workers from a clean ``forkserver``
process (never from this one, which may hold threads and locks: the API's job threads, a
Dask client, OpenMP), so they start in milliseconds once the server is up.
:class:`DaskWorkers` runs one task per item on the cluster, scatters ``shared`` to every
worker, and adds the results in the same tree on the workers; only the total comes back.
"""

from __future__ import annotations

import contextlib
import errno
import multiprocessing
import os
import pickle
import shutil
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import forkserver

from features.reduce import SPLIT_EVERY, TreeReducer, serial_map_reduce, tree_reduce
from service.cores import free_cores, thread_budget, usable_cores

_SHARED: tuple = ()
_CLAIMS = None
_SPOOL: str | None = None
FREE, POOL, HERE = 0, 1, 2
"""Who took an item of a pooled call: nobody yet, a pool process, the calling process."""
PARALLEL_MIN_ROWS = 600_000
"""Events below which a pool sums them in this process alone: about 2 s of work on one core, over
before a pool process could take a share (the forkserver's imports, about 1 s, then 0.6-0.9 s from
fork to a first piece); 8 boroughs' 335,000 events took 2.1 s on a pool of 2 against 1.2 s alone."""
PARALLEL_MIN_BYTES = 32 * 2**20
"""Input bytes below which a pool loads files in this process (about 6 s of work on one core)."""
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


def _init(shared: tuple, threads: int, claims, spool: str | None = None) -> None:
    global _SHARED, _CLAIMS, _SPOOL
    _SHARED, _CLAIMS, _SPOOL = shared, claims, spool
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)  # BLAS and OpenMP of this worker: the pool's processes x threads <= cores


def _claim(claims, i: int, who: int) -> bool:
    """Take item ``i`` for ``who`` unless another took it first."""
    with claims.get_lock():
        if claims[i] != FREE:
            return False
        claims[i] = who
        return True


class _Spooled:
    """A result a pool process wrote to a file of the call's spool folder, in place of the result."""

    def __init__(self, path: str):
        self.path = path

    def load(self):
        with open(self.path, "rb") as fh:
            data = fh.read()
        os.unlink(self.path)
        return pickle.loads(data)


def _call(func, i: int, item):
    """A pool process's task: ``(True, func(item, *shared))``, or ``(False, None)`` when the calling
    process took item ``i`` first.

    The result goes back through a file of the call's spool folder (:class:`_Spooled`) rather
    than the pool's pipe: a large one (a month of London's events, 25 MB) crosses a pipe in 64 KB
    reads, each waiting for the calling process's GIL while it works, and the pool process sat
    waiting 0.2-0.4 s after each 0.55 s item. Written to a file it is handed over at once. If the
    file cannot be written (a full disk, the folder gone with an interrupted call), it goes
    through the pipe."""
    if not _claim(_CLAIMS, i, POOL):
        return False, None
    result = func(item, *_SHARED)
    if _SPOOL is None:
        return True, result
    path = os.path.join(_SPOOL, f"{i}.pickle")
    try:
        with open(path, "wb") as fh:
            pickle.dump(result, fh, protocol=pickle.HIGHEST_PROTOCOL)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(path)
        return True, result
    return True, _Spooled(path)


def _spool_folder() -> str | None:
    """A new folder for the results of a call's pool processes (:func:`_call`), or None (through the pipe)."""
    try:
        return tempfile.mkdtemp(prefix="svrisk-pool-")
    except OSError:
        return None


def _context():
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


class _Feeder(threading.Thread):
    """Sizes and starts a call's pool and submits its items, off the calling thread, which works
    meanwhile: reading the load takes 0.2 s, and starting a process waits for the forkserver (its
    imports, about a second of a core). Shuts the pool down once told the call is over.

    ``size()`` gives the call's processes, the calling one included (1: no pool at all);
    ``start_pool(n)`` makes a pool of ``n - 1`` processes.
    """

    def __init__(self, size, start_pool, func, items: list, spool: str | None = None):
        super().__init__(name="svrisk-pool-feeder", daemon=True)
        self.size, self.start_pool, self.func, self.items = size, start_pool, func, items
        self.spool = spool  # the call's spool folder, removed once the pool is down
        self.processes = 1  # this one alone until a pool is started
        self.futures: list = [None] * len(items)
        self.over = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        pool = None
        try:
            n = self.size()
            if n > 1 and not self.over.is_set():
                pool = self.start_pool(n)
                self.processes = n
                for i, item in enumerate(self.items):
                    if self.over.is_set():
                        break
                    self.futures[i] = pool.submit(_call, self.func, i, item)
        except BaseException as exc:  # a broken pool: the calling process learns of it if it needs a result
            self.error = exc
        finally:
            self.over.wait()
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            if self.spool is not None:
                shutil.rmtree(self.spool, ignore_errors=True)

    def result(self, i: int):
        """The pool's result of item ``i`` (which a pool process took), waiting for it."""
        while self.futures[i] is None:  # taken between its submission and the feeder keeping the future
            if self.error is not None:
                raise self.error
            time.sleep(0.001)
        ran, value = self.futures[i].result()
        if not ran:  # pragma: no cover - a claimed item always runs
            raise RuntimeError(f"item {i} was taken by a pool process but not run")
        return value.load() if isinstance(value, _Spooled) else value


class ProcessPool:
    """``map`` and ``map_reduce`` over ``workers`` processes of this machine: this one and ``workers - 1``
    pool processes (1: this one alone).

    The calling process is one of the workers: it takes the items in order from the first
    while a pool of ``workers - 1`` processes starts (off the calling thread) and takes the
    next free ones as its processes come up; each item is taken once (a lock-guarded claim
    per item). So a pool never makes a call slower by more than the last item a pool process
    is still running: a job done before the pool is up is simply done here, and the pool's
    start-up (the forkserver's imports, forking, the ``shared`` data unpickled in each
    process) costs another core's time, not the caller's. The results are the same, in the
    same order, whoever ran each item.

    A pool is started for each call and closed after it, so no pool runs while the caller
    trains a model; ``shared`` is pickled once per pool process. Jobs under ``min_rows``
    events or ``min_bytes`` of input run in this process alone. Each process's BLAS and
    OpenMP threads (the pool's, and this one's during the call) are limited (threadpoolctl)
    to :func:`service.cores.thread_budget` of the call's processes and the ``cores`` this
    process may use (None: :func:`service.cores.usable_cores`).

    With ``load`` (a callable giving the runnable threads of other work now, e.g.
    :func:`service.cores.load_now`), ``workers`` is the most: each call uses only as many
    processes as cores are free then (:func:`service.cores.free_cores`), and runs in this
    process alone when one is; on a busy machine a second process cost more than it gave
    (London, 2 cores, load 3-4: event sums 10.7 s on 2 workers against 9.7 s on 1; issue 34).
    """

    def __init__(self, workers: int, min_rows: int = PARALLEL_MIN_ROWS, min_bytes: int = PARALLEL_MIN_BYTES,
                 cores: int | None = None, load=None):
        if int(workers) < 1:
            raise ValueError(f"workers must be >= 1, got {workers!r}")
        self.workers = int(workers)
        self.min_rows, self.min_bytes = int(min_rows), int(min_bytes)
        self.cores = int(cores) if cores is not None else usable_cores()
        self.load = load
        self.used: list[int] = []  # processes each call ran on (1: this one alone), for benchmarks
        self.here: list[int] = []  # items of each call this process ran itself
        self.items: list[int] = []  # items of each call

    def __repr__(self) -> str:
        return f"ProcessPool(workers={self.workers})"

    def last_call(self) -> str:
        """How the last call ran, for a run's progress line: ``"2 processes, 5 of 8 items in this one"``."""
        if not self.used:
            return "no call yet"
        n, here, items = self.used[-1], self.here[-1], self.items[-1]
        if n < 2:
            return f"this process alone, {items} item(s)"
        return f"{n} processes, {here} of {items} item(s) in this one"

    def start(self) -> None:
        """Launch the forkserver now, off the calling thread: a fresh interpreter that imports
        :data:`PRELOAD` meanwhile (about a second of one core), so it is ready sooner for the first
        pool, whose processes fork from it. Not when no core is free: on a busy machine the
        server's imports would take a core from the run."""
        if self.workers > 1:
            threading.Thread(target=self._start_forkserver, name="svrisk-forkserver-start", daemon=True).start()

    def _start_forkserver(self) -> None:
        if self.size(self.workers) > 1:
            _context()
            forkserver.ensure_running()

    def size(self, items: int) -> int:
        """Processes a call with ``items`` items uses now, this one included: ``workers`` at most,
        one per item, and with ``load`` only as many as cores are free."""
        n = min(self.workers, int(items))
        if n > 1 and self.load is not None:
            n = min(n, free_cores(self.cores, self.load()))
        return max(n, 1)

    def _most(self, items: list, small: bool) -> int:
        """The most processes a call may use (this one included): 1 for a small job, which is then
        recorded in ``used`` (a larger one's count is decided off the calling thread, see ``size``)."""
        n = 1 if small else min(self.workers, len(items))
        if n < 2:
            self.used.append(1)
            self.here.append(len(items))
            self.items.append(len(items))
        return n

    def _results(self, func, items: list, shared: tuple, most: int):
        """``func(item, *shared)`` of every item, yielded in item order, here and on at most ``most - 1``
        pool processes (see the class)."""
        ctx = _context()
        claims = ctx.Array("b", len(items))
        threads = thread_budget(most, self.cores)
        spool = _spool_folder()

        def start_pool(n: int) -> ProcessPoolExecutor:
            return ProcessPoolExecutor(max_workers=n - 1, mp_context=ctx, initializer=_init,
                                       initargs=(shared, threads, claims, spool))

        feeder = _Feeder(lambda: self.size(len(items)), start_pool, func, items, spool)
        feeder.start()
        done: dict[int, object] = {}  # results made here, not yet yielded
        out = 0

        def ready(i: int) -> bool:
            return i in done or (claims[i] == POOL and feeder.futures[i] is not None and feeder.futures[i].done())

        def take(i: int):
            return done.pop(i) if i in done else feeder.result(i)

        from threadpoolctl import ThreadpoolController

        blas = ThreadpoolController()  # looked up once: a threadpool_limits per item took 1.7 ms
        finished = False
        try:
            for i, item in enumerate(items):
                if _claim(claims, i, HERE):
                    with blas.limit(limits=threads):
                        done[i] = func(item, *shared)
                while out <= i and ready(out):
                    yield take(out)
                    out += 1
            while out < len(items):
                yield take(out)
                out += 1
            finished = True
        except BrokenProcessPool as exc:
            raise _lost(exc) from None
        finally:
            feeder.over.set()  # the feeder stops submitting and shuts the pool down (unstarted items cancelled)
            self.used.append(feeder.processes)
            self.here.append(sum(claims[i] == HERE for i in range(len(items))))
            self.items.append(len(items))
            if finished and any(claims[i] == POOL for i in range(len(items))):
                feeder.join()  # its processes are up and idle now: they exit at once
            # else (an error, or every item done here) the feeder closes the pool on its own: an
            # interrupted call does not wait for a running item, nor a small one for the forkserver

    def map(self, func, items, shared: tuple = (), nbytes: int | None = None) -> list:
        items = list(items)
        most = self._most(items, nbytes is not None and nbytes < self.min_bytes)
        if most < 2:
            return [func(item, *shared) for item in items]
        return list(self._results(func, items, tuple(shared), most))

    def map_reduce(self, func, items, combine, shared: tuple = (), split_every: int = SPLIT_EVERY,
                   rows: int | None = None):
        items = list(items)
        most = self._most(items, rows is not None and rows < self.min_rows)
        if most < 2:
            return serial_map_reduce(func, items, combine, shared, split_every)
        reducer = TreeReducer(combine, split_every)
        for result in self._results(func, items, tuple(shared), most):  # in item order: the same tree
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
