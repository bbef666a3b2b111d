"""Where the pipeline runs: this process (``local``) or a Dask cluster (``dask``).

Settings (``svrisk.toml`` or ``SVRISK_ENGINE`` / ``SVRISK_DASK_SCHEDULER``)::

    engine = "dask"
    dask_scheduler = "tcp://scheduler.example:8786"   # unset: a LocalCluster in this process

Both engines run the same functions (see :mod:`features.scale`) over the pieces of
the store's partitioned events table (month x spatial zone, no shuffle): the local
engine on a pool of ``workers`` processes of this machine (one: in this process), the
Dask engine as one task per partition on the cluster, with the partial sums added in
the same fixed tree (:mod:`service.workers`). Locally the calling process is one of the
``workers``: it takes pieces at once while the pool's processes start, so a call never
waits for its pool's start-up. Feature windows are then slices of the
summed (units x months x groups) arrays, identical code on both engines.

``workers = "auto"`` (the default) is the cores this process may use (affinity mask,
cgroup quota) less those other work keeps busy when the engine starts, at least 1
(:mod:`service.cores`); a number is the most. Each call of the local pool then uses
only as many processes as cores are free at that moment. Training uses at most ``n_jobs``
threads locally; by default the engine's ``workers`` less the cores busy when the fit starts
(its threads wait for each other, so one sharing a core with other work holds all
back), and within that one per 10M cells of the training matrix
(:func:`models.boosting.boost_threads`), and ``xgboost.dask`` on the Dask engine
(:class:`models.boosting.DaskPoissonBoost`); the fitted booster is brought back and
predicts and explains locally, so ranking, reasons and the backtest's measures are
the same code on both engines.

Importing this module loads no features or models (no scikit-learn, scipy or libpysal):
``svrisk ingest`` only maps files over the engine's workers (:meth:`Engine.map_files`), so
each method that sums events or trains imports what it needs when called.

Examples
--------
>>> with Engine.from_settings(settings) as eng:                      # doctest: +SKIP
...     fb = eng.feature_builder(store, build_units(store, "grid250"), target_groups=["violence"])
...     table = eng.backtest(fb, origins=["2018-06", "2018-07"])
"""

from __future__ import annotations

from service.cores import free_cores, load_now, usable_cores
from service.workers import (
    PARALLEL_MIN_BYTES,
    PARALLEL_MIN_ROWS,
    DaskWorkers,
    ProcessPool,
    geo_worker_plugin,
)
from sources.memstore import as_store

ENGINES = ("local", "dask")


LOCAL_CLUSTER_CONFIG = {
    "distributed.worker.profile.enabled": False,  # the statistical profiler feeds a dashboard: this cluster has none
    "distributed.admin.system-monitor.interval": "60s",  # CPU, memory and network samples for that dashboard
    "distributed.admin.tick.interval": "1s",  # event-loop latency checks, which only warn
}
"""Dask settings of the LocalCluster an engine starts (never of a cluster it connects to): without a
dashboard its workers' background sampling serves no one and took the cores from the pieces
(London's event sums on 2 process workers: 14.0 s with Dask's defaults, 11.9 s with these, in
the same session; docs/scaling.md). The memory monitor, which pauses and restarts a worker
near its memory limit, keeps its default."""


class Engine:
    """The engine setting, and for ``dask`` a client connection while in use.

    Parameters
    ----------
    kind : {"local", "dask"}
    scheduler : str, optional
        Address of a Dask scheduler (``tcp://host:8786``). None with ``dask``: a
        ``distributed.LocalCluster`` is started on entering and closed on exit.
    npartitions : int, optional
        Pieces of the events table (None: one per partition file of the store, small
        ones joined on the local engine; see :func:`features.scale.event_pieces`).
    chunk_rows : int, optional
        Most events in one piece (None: :data:`features.scale.DEFAULT_CHUNK_ROWS`).
    n_workers : int or "auto", optional
        Local engine: processes summing events and loading files, this one included (1: this one alone).
        Dask: workers of the LocalCluster started when ``scheduler`` is None. ``"auto"``
        (or None): the cores this process may use less the load of other work now
        (:func:`service.cores.free_cores`), at least 1; a number is the most. A local
        pool starts only as many processes as cores are free as each call starts.
    processes : bool
        Whether that LocalCluster's workers are processes (the default) or threads in
        this process.
    n_jobs : int, optional
        Most threads of a local XGBoost fit (it runs one per 10M cells of its matrix).
        None: decided as each fit starts, the engine's explicit ``n_workers`` (or the
        usable cores with ``"auto"``) less the cores other work keeps busy then, at least 1 (:meth:`fit_threads`). On Dask each worker's
        threads train.
    min_parallel : (rows, bytes), optional
        Local engine: event sums under ``rows`` events and ingests under ``bytes`` of
        monthly files run in this process (None: ``service.workers.PARALLEL_MIN_ROWS``
        and ``PARALLEL_MIN_BYTES``; tests pass ``(0, 0)`` to use the pool always).
    cores : int, optional
        Cores this process may use (None: :func:`service.cores.usable_cores`).
    load : callable, optional
        Runnable threads of other work now (None: :func:`service.cores.load_now`); read
        when ``"auto"`` workers are sized and as each fit with ``n_jobs=None`` starts.

    Attributes
    ----------
    n_workers : int
        The processes (or Dask workers) used.
    sizing : str
        How ``n_workers`` was chosen, for the run's progress line (``repr`` shows it).
    """

    def __init__(self, kind: str = "local", scheduler: str | None = None, *, npartitions: int | None = None,
                 chunk_rows: int | None = None, n_workers: int | str | None = "auto", processes: bool = True,
                 n_jobs: int | None = None, min_parallel: tuple[int, int] | None = None, cores: int | None = None,
                 load=None):
        if kind not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {kind!r}")
        if scheduler is not None and kind != "dask":
            raise ValueError(f"dask_scheduler={scheduler!r} is set but engine is {kind!r}; set engine = \"dask\"")
        self.kind = kind
        self.scheduler = scheduler
        self.npartitions = npartitions
        self.chunk_rows = int(chunk_rows) if chunk_rows is not None else None
        auto = n_workers is None or n_workers == "auto"
        if isinstance(n_workers, str) and not auto:
            raise ValueError(f"n_workers must be a number >= 1 or \"auto\", got {n_workers!r}")
        for name, value in (("n_workers", None if auto else n_workers), ("n_jobs", n_jobs), ("npartitions", npartitions)):
            if value is not None and int(value) < 1:
                raise ValueError(f"{name} must be >= 1 (or None for the default), got {value!r}")
        self.cores = int(cores) if cores is not None else usable_cores()
        self._load = load or load_now
        self._explicit_workers = None if auto else int(n_workers)
        if auto:
            busy = self._load()
            self.n_workers = free_cores(self.cores, busy)
            self.sizing = f"auto: {self.cores} usable cores, {busy:.1f} busy with other work"
        else:
            self.n_workers = int(n_workers)
            self.sizing = f"at most, as set; {self.cores} usable cores"
        self.processes = bool(processes)
        self.n_jobs = int(n_jobs) if n_jobs is not None else None
        self.client = None
        self._cluster = None
        min_rows, min_bytes = min_parallel or (PARALLEL_MIN_ROWS, PARALLEL_MIN_BYTES)
        self._workers = (ProcessPool(self.n_workers, min_rows, min_bytes, self.cores, self._load) if kind == "local"
                         else None)

    @classmethod
    def from_settings(cls, settings, **kwargs) -> Engine:
        """The engine of ``settings``: ``engine``, ``dask_scheduler``, ``workers``, ``processes``, ``n_jobs``."""
        options = {"n_workers": settings.workers, "processes": settings.processes, "n_jobs": settings.n_jobs}
        return cls(settings.engine, settings.dask_scheduler, **{**options, **kwargs})

    def __repr__(self) -> str:
        where = f", scheduler={self.scheduler!r}" if self.scheduler else f", workers={self.n_workers} ({self.sizing})"
        if self.kind == "dask" and self.scheduler is None:
            where += ", processes" if self.processes else ", threads"
        return f"Engine({self.kind!r}{where})"

    # ---- connection --------------------------------------------------------------------
    def __enter__(self) -> Engine:
        if self.kind == "local":
            self._workers.start()
        if self.kind == "dask" and self.client is None:
            from distributed import Client, LocalCluster

            if self.scheduler is None:
                import dask

                with dask.config.set(LOCAL_CLUSTER_CONFIG):  # read as the workers start; this process's is kept
                    self._cluster = LocalCluster(n_workers=self.n_workers, threads_per_worker=1,
                                                 processes=self.processes, dashboard_address=None)
                self.client = Client(self._cluster, set_as_default=True)
            else:
                self.client = Client(self.scheduler, set_as_default=True)
            self.client.register_plugin(geo_worker_plugin())
            self._workers = DaskWorkers(self.client)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None
        if self.kind == "dask":
            self._workers = None

    def _require_client(self):
        if self.kind == "dask" and self.client is None:
            raise RuntimeError("the dask engine is not connected: use `with Engine(...) as eng:`")
        return self.client

    # ---- pipeline steps ----------------------------------------------------------------
    def event_sums(self, store, units, target_groups, source: str = "auto"):
        """The events summed per unit and month on this engine (see :mod:`features.scale`).

        Monthly area counts (``source`` resolving to ``"areas"``, :mod:`features.areas`) are
        small tables and are summed here on either engine.
        """
        from features.areas import area_sums, choose_source  # import here: scipy, not for ingest
        from features.build import event_groups  # import here: scipy, not for ingest
        from features.scale import (  # import here: scipy, not for ingest
            DEFAULT_CHUNK_ROWS,
            event_sums,
        )

        self._require_client()
        store = as_store(store)
        groups, _ = event_groups()
        target = list(target_groups)
        unknown = [g for g in target if g not in groups]
        if unknown or not target:
            raise ValueError(f"target groups: unknown offence groups {unknown}; known groups are {groups}")
        if choose_source(store, units.edition, source, target) == "areas":
            return area_sums(store, units, groups)
        chunk_rows = DEFAULT_CHUNK_ROWS if self.chunk_rows is None else self.chunk_rows
        return event_sums(store, units, groups, target, chunk_rows=chunk_rows, npartitions=self.npartitions,
                          map_reduce=self._workers.map_reduce, engine=self.kind)

    def feature_builder(self, store, units, *, target_groups, allow_police_generated: bool = False,
                        source: str = "auto"):
        """A :class:`features.build.FeatureBuilder` whose event sums were made on this engine."""
        from features.build import FeatureBuilder  # import here: scipy, not for ingest

        store = as_store(store)
        return FeatureBuilder(store, units, target_groups=target_groups,
                              allow_police_generated=allow_police_generated,
                              event_sums=self.event_sums(store, units, target_groups, source))

    def map_files(self, func, items: list, shared: tuple = (), nbytes: int | None = None) -> list:
        """``[func(item, *shared) for item in items]`` on this engine's workers, in order.

        A process pool of ``n_workers`` locally (in this process with one, or when the
        files hold under ``service.workers.PARALLEL_MIN_BYTES``), one task per item on
        Dask; ``shared`` (e.g. the ingest context) is sent to each worker once.
        """
        self._require_client()
        return self._workers.map(func, items, tuple(shared), nbytes=nbytes)

    def last_call(self) -> tuple[int, str]:
        """(calls so far, how the last one ran) of the local pool (:meth:`service.workers.ProcessPool.last_call`),
        for the run's progress; (0, "") on Dask."""
        if self.kind == "local":
            return len(self._workers.used), self._workers.last_call()
        return 0, ""

    def estimator(self, estimator):
        """``estimator`` for this engine: a :class:`PoissonBoost` trains with xgboost.dask on Dask,
        and so does the boosting inside a :class:`~models.boosting.BlendedBoost`."""
        from sklearn.base import clone

        from models.boosting import (  # import here: scikit-learn, not for ingest
            BlendedBoost,
            DaskPoissonBoost,
            PoissonBoost,
        )

        if self.kind == "local":
            return self._local_threads(estimator)
        if type(estimator) is PoissonBoost:
            return DaskPoissonBoost(**estimator.get_params())
        if isinstance(estimator, BlendedBoost):
            inner = PoissonBoost() if estimator.estimator is None else estimator.estimator
            return clone(estimator).set_params(estimator=self.estimator(inner))
        return estimator

    def fit_threads(self) -> int:
        """Threads for a local fit starting now: ``n_jobs`` if set, else the engine's explicit
        ``n_workers`` (the usable cores with ``"auto"``) less the cores other work keeps busy
        now, at least 1. No pool of the engine runs meanwhile (each is closed when its call returns)."""
        if self.n_jobs is not None:
            return self.n_jobs
        most = min(self._explicit_workers or self.cores, self.cores)
        return min(most, free_cores(self.cores, self._load()))

    def _local_threads(self, estimator, threads: int | None = None):
        """``estimator`` with :meth:`fit_threads` as its ``n_jobs`` (a copy; the boosting inside a blend too)."""
        from sklearn.base import clone

        from models.boosting import (  # import here: scikit-learn, not for ingest
            BlendedBoost,
            PoissonBoost,
        )

        if isinstance(estimator, BlendedBoost):
            inner = PoissonBoost() if estimator.estimator is None else estimator.estimator
            threaded = self._local_threads(inner, threads)
            return estimator if threaded is inner else clone(estimator).set_params(estimator=threaded)
        params = estimator.get_params(deep=False) if hasattr(estimator, "get_params") else {}
        if "n_jobs" not in params:
            return estimator
        threads = self.fit_threads() if threads is None else threads
        return estimator if params["n_jobs"] == threads else clone(estimator).set_params(n_jobs=threads)

    def methods(self, seed: int = 0) -> dict:
        """:func:`models.backtest.default_methods` with the boosted model trained on this engine."""
        from models.backtest import default_methods  # import here: scikit-learn, not for ingest

        return {name: self.estimator(m) for name, m in default_methods(seed).items()}

    def fit_at(self, fb, estimator, cutoff, horizon: int = 1, **kwargs):
        """:func:`models.backtest.fit_at` with the estimator trained on this engine."""
        from models.backtest import fit_at  # import here: scikit-learn, not for ingest

        self._require_client()
        return fit_at(fb, self.estimator(estimator), cutoff, horizon, **kwargs)

    def backtest(self, fb, methods=None, seed: int = 0, **kwargs):
        """:func:`models.backtest.backtest` with models trained on this engine."""
        from models.backtest import backtest  # import here: scikit-learn, not for ingest

        self._require_client()
        methods = self.methods(seed) if methods is None else {k: self.estimator(m) for k, m in methods.items()}
        return backtest(fb, methods=methods, **kwargs)
