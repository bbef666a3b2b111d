"""Where the pipeline runs: this process (``local``) or a Dask cluster (``dask``).

Settings (``svrisk.toml`` or ``SVRISK_ENGINE`` / ``SVRISK_DASK_SCHEDULER``)::

    engine = "dask"
    dask_scheduler = "tcp://scheduler.example:8786"   # unset: a LocalCluster in this process

Both engines run the same functions (see :mod:`features.scale`): the local engine
streams the events table in chunks through them; the Dask engine reads it with
dask-geopandas, partitions it along a Hilbert curve and maps the same functions
over the partitions, adding the partial sums with a dask DataFrame groupby.
Feature windows are then slices of the summed (units x months x groups) arrays,
identical code on both engines. Training uses ``xgboost.dask`` on the Dask
engine (:class:`DaskPoissonBoost`); the fitted booster is brought back and
predicts and explains locally, so ranking, reasons and the backtest's measures are
the same code on both engines.

Examples
--------
>>> with Engine.from_settings(settings) as eng:                      # doctest: +SKIP
...     fb = eng.feature_builder(store, build_units(store, "grid250", settings), settings)
...     table = eng.backtest(fb, origins=["2018-06", "2018-07"])
"""

from __future__ import annotations

import math

import numpy as np

from features.scale import DEFAULT_CHUNK_ROWS
from models.boosting import PoissonBoost
from models.glm import moment_dispersion

ENGINES = ("local", "dask")


class Engine:
    """The engine setting, and for ``dask`` a client connection while in use.

    Parameters
    ----------
    kind : {"local", "dask"}
    scheduler : str, optional
        Address of a Dask scheduler (``tcp://host:8786``). None with ``dask``: a
        ``distributed.LocalCluster`` is started on entering and closed on exit.
    npartitions : int, optional
        Partitions of the events table on Dask (None: one per Parquet row group).
    chunk_rows : int
        Events per chunk on the local engine.
    n_workers : int
        Workers of the LocalCluster started when ``scheduler`` is None.
    processes : bool
        Whether that LocalCluster's workers are processes (False: threads in this
        process, as the tests use).
    """

    def __init__(self, kind: str = "local", scheduler: str | None = None, *, npartitions: int | None = None,
                 chunk_rows: int = DEFAULT_CHUNK_ROWS, n_workers: int = 2, processes: bool = False):
        if kind not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {kind!r}")
        if scheduler is not None and kind != "dask":
            raise ValueError(f"dask_scheduler={scheduler!r} is set but engine is {kind!r}; set engine = \"dask\"")
        self.kind = kind
        self.scheduler = scheduler
        self.npartitions = npartitions
        self.chunk_rows = int(chunk_rows)
        self.n_workers = int(n_workers)
        self.processes = bool(processes)
        self.client = None
        self._cluster = None

    @classmethod
    def from_settings(cls, settings, **kwargs) -> Engine:
        """The engine named by ``settings.engine`` and ``settings.dask_scheduler``."""
        return cls(settings.engine, settings.dask_scheduler, **kwargs)

    def __repr__(self) -> str:
        where = f", scheduler={self.scheduler!r}" if self.scheduler else ""
        return f"Engine({self.kind!r}{where})"

    # ---- connection --------------------------------------------------------------------
    def __enter__(self) -> Engine:
        if self.kind == "dask" and self.client is None:
            from distributed import Client, LocalCluster

            if self.scheduler is None:
                self._cluster = LocalCluster(n_workers=self.n_workers, threads_per_worker=1,
                                             processes=self.processes, dashboard_address=None)
                self.client = Client(self._cluster, set_as_default=True)
            else:
                self.client = Client(self.scheduler, set_as_default=True)
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

    def _require_client(self):
        if self.kind == "dask" and self.client is None:
            raise RuntimeError("the dask engine is not connected: use `with Engine(...) as eng:`")
        return self.client

    # ---- pipeline steps ----------------------------------------------------------------
    def event_sums(self, store, units, settings):
        """The events summed per unit and month on this engine (see :mod:`features.scale`)."""
        from features.build import event_groups
        from features.memstore import as_store
        from features.scale import event_sums, event_sums_dask

        if self.kind == "dask":
            self._require_client()
        store = as_store(store)
        groups, _ = event_groups()
        target = list(settings.model.target_groups)
        unknown = [g for g in target if g not in groups]
        if unknown or not target:
            raise ValueError(f"settings.model.target_groups: unknown offence groups {unknown}; known groups are {groups}")
        if self.kind == "local":
            return event_sums(store, units, groups, target, chunk_rows=self.chunk_rows)
        return event_sums_dask(store, units, groups, target, npartitions=self.npartitions)

    def feature_builder(self, store, units, settings):
        """A :class:`features.build.FeatureBuilder` whose event sums were made on this engine."""
        from features.build import FeatureBuilder
        from features.memstore import as_store

        store = as_store(store)
        return FeatureBuilder(store, units, settings, event_sums=self.event_sums(store, units, settings))

    def map_files(self, func, items: list) -> list:
        """``[func(item) for item in items]``, on the cluster for the Dask engine (order kept)."""
        if self.kind != "dask":
            return [func(item) for item in items]
        self._require_client()
        return self.client.gather(self.client.map(func, items, pure=False))

    def estimator(self, estimator):
        """``estimator`` for this engine: a :class:`PoissonBoost` trains with xgboost.dask on Dask,
        and so does the boosting inside a :class:`~models.boosting.BlendedBoost`."""
        from sklearn.base import clone

        from models.boosting import BlendedBoost

        if self.kind != "dask":
            return estimator
        if type(estimator) is PoissonBoost:
            return DaskPoissonBoost(**estimator.get_params())
        if isinstance(estimator, BlendedBoost):
            inner = PoissonBoost() if estimator.estimator is None else estimator.estimator
            return clone(estimator).set_params(estimator=self.estimator(inner))
        return estimator

    def methods(self, seed: int = 0) -> dict:
        """:func:`models.backtest.default_methods` with the boosted model trained on this engine."""
        from models.backtest import default_methods

        return {name: self.estimator(m) for name, m in default_methods(seed).items()}

    def fit_at(self, fb, estimator, cutoff, horizon: int = 1, **kwargs):
        """:func:`models.backtest.fit_at` with the estimator trained on this engine."""
        from models.backtest import fit_at

        self._require_client()
        return fit_at(fb, self.estimator(estimator), cutoff, horizon, **kwargs)

    def backtest(self, fb, methods=None, seed: int = 0, **kwargs):
        """:func:`models.backtest.backtest` with models trained on this engine."""
        from models.backtest import backtest

        self._require_client()
        methods = self.methods(seed) if methods is None else {k: self.estimator(m) for k, m in methods.items()}
        return backtest(fb, methods=methods, **kwargs)


class DaskPoissonBoost(PoissonBoost):
    """:class:`~models.boosting.PoissonBoost` trained with ``xgboost.dask`` on the current Dask client.

    Same parameters, constraints and objective; the training rows are split into
    one chunk per worker and the histogram sums are all-reduced across workers.
    The fitted booster is copied into a local ``xgboost.XGBRegressor``
    (``booster_``), so ``predict``, ``contributions`` (SHAP) and saving work as
    for :class:`PoissonBoost`. Quantile sketches merged across workers choose
    slightly different split candidates, so forecasts agree with the local fit
    to within a small tolerance, not exactly (see ``tests/features/test_scale_engine.py``).

    Parameters
    ----------
    (as :class:`~models.boosting.PoissonBoost`)
    """

    def __init__(self, features="all", n_estimators: int = 300, learning_rate: float = 0.05, max_depth: int = 3,
                 min_child_weight: float = 5.0, subsample: float = 1.0, reg_lambda: float = 1.0,
                 monotone: bool = True, seed: int = 0, allow_police_generated: bool = False):
        super().__init__(features=features, n_estimators=n_estimators, learning_rate=learning_rate,
                         max_depth=max_depth, min_child_weight=min_child_weight, subsample=subsample,
                         reg_lambda=reg_lambda, monotone=monotone, seed=seed,
                         allow_police_generated=allow_police_generated)

    def fit(self, X, y):
        import dask.array as da
        from distributed import get_client
        from xgboost import XGBRegressor
        from xgboost.dask import DaskXGBRegressor

        X, y, constraints = self._training_data(X, y)
        client = get_client()
        workers = max(len(client.scheduler_info().get("workers", {})), 1)
        rows = max(math.ceil(len(X) / workers), 1)
        kwargs = self._booster_kwargs(constraints)
        dask_model = DaskXGBRegressor(**kwargs)
        dask_model.client = client
        dask_model.fit(da.from_array(X, chunks=(rows, X.shape[1])), da.from_array(y, chunks=rows))
        local = XGBRegressor(**kwargs)
        local.load_model(bytearray(dask_model.get_booster().save_raw(raw_format="ubj")))
        self.booster_ = local
        self.dispersion_ = moment_dispersion(y, np.asarray(self.booster_.predict(X), dtype=float))
        return self
