"""The Dask engine gives the local engine's features, rankings and backtest scores.

Input: two synthetic boroughs, one year (``generate_scaled`` with a light process),
ingested once: 12 monthly partition files of one row group each. Dask runs on a
``LocalCluster`` of 2 **process** workers, the events cut into 30 pieces (more pieces
than row groups, so pieces cut row groups and cross files); the local engine runs one
process, or a pool of 2 (identical sums).

Tolerances (stated): event and harm counts, window features, rankings of the
count baselines and their backtest measures are equal; with other pieces than the
local engine's, kernel features (near-repeat, KDE) are sums of floats added in another
order and agree to a relative 1e-12; with the same pieces (the default) every sum is
identical on both engines.
Training with ``xgboost.dask`` merges per-worker quantile sketches, so forecasts
may differ slightly: relative difference <= 1e-3 per unit, Spearman >= 0.999, and
backtest PAI/PEI* within 0.02.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from features.build import event_groups
from features.scale import event_sums, read_events_dask
from features.units import build_units
from models.backtest import forecast_matrix
from models.baselines import baseline_methods
from models.boosting import DaskPoissonBoost, PoissonBoost
from models.evaluation import rank_order
from service.cores import usable_cores
from service.engine import Engine
from service.settings import get_settings
from service.workers import DaskWorkers
from sources.demo.borough import CrimeTypeRate, DemoProcess
from sources.demo.scale import generate_scaled
from sources.ingest import ingest
from sources.store import Store

pytest.importorskip("dask_geopandas")
pytest.importorskip("distributed")

LIGHT = DemoProcess(other_types=(CrimeTypeRate("Burglary", 60, {"resid": 0.4}),),
                    stop_search=CrimeTypeRate("stop and search", 20, {"dep": 0.5}))
CUTOFFS = ["2016-08", "2017-01"]
KERNEL = ["nr_sv", "kde_sv_12m"]
FAST_XGB = {"n_estimators": 60, "learning_rate": 0.15}
PIECES = 30
TARGET = ["violence", "robbery"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("scale_engine")
    data = generate_scaled(root / "data", boroughs=2, years=1, seed=11, process=LIGHT)
    ingest(data, root / "store")
    return Store(root / "store")


@pytest.fixture(scope="module")
def settings():
    return get_settings()


@pytest.fixture(scope="module")
def dask_engine():
    with Engine("dask", npartitions=PIECES, n_workers=2, processes=True) as eng:
        yield eng


@pytest.fixture(scope="module")
def builders(store, settings, dask_engine):
    out = {}
    for edition in ("lsoa2011", "grid250"):
        units = build_units(store, edition)
        target = settings.model.target_groups
        out[edition] = (Engine("local", n_workers=1).feature_builder(store, units, target_groups=target),
                        dask_engine.feature_builder(store, units, target_groups=target))
    return out


def test_engine_setting_is_validated(settings):
    assert Engine.from_settings(settings).kind == "local"
    eng = Engine.from_settings(settings.model_copy(update={"workers": 3, "processes": False, "n_jobs": 2}))
    assert (eng.n_workers, eng.processes, eng.n_jobs) == (3, False, 2)
    assert settings.workers == "auto" and 1 <= Engine.from_settings(settings).n_workers <= usable_cores()
    assert Engine("dask").processes  # process workers
    with pytest.raises(ValueError, match="n_workers must be >= 1"):
        Engine("local", n_workers=0)
    with pytest.raises(ValueError, match="n_workers must be a number >= 1 or \"auto\", got 'all'"):
        Engine("local", n_workers="all")
    with pytest.raises(ValueError, match="engine must be one of"):
        Engine("spark")
    with pytest.raises(ValueError, match="dask_scheduler='tcp://x:8786' is set but engine is 'local'"):
        Engine("local", "tcp://x:8786")
    with pytest.raises(RuntimeError, match="not connected"):
        Engine("dask").event_sums(None, None, settings.model.target_groups)


def test_the_cluster_has_process_workers_and_more_pieces_than_row_groups(store, dask_engine):
    import pyarrow.parquet as pq

    workers = dask_engine.client.scheduler_info()["workers"]
    assert len(workers) == 2
    pids = set(dask_engine.client.run(os.getpid).values())
    assert os.getpid() not in pids and len(pids) == 2
    row_groups = sum(pq.read_metadata(f).num_row_groups for f in store.files("events"))
    assert PIECES > row_groups and len(store.files("events")) == 12


def test_the_engines_own_cluster_samples_nothing_for_a_dashboard_it_does_not_have(dask_engine):
    import dask

    def background():
        return (dask.config.get("distributed.worker.profile.enabled"),
                dask.config.get("distributed.admin.system-monitor.interval"))

    assert set(dask_engine.client.run(background).values()) == {(False, "60s")}
    assert background() == (True, "500ms")  # this process keeps Dask's defaults


def test_a_new_clusters_workers_have_imported_what_the_pieces_need_before_any_task():
    import sys

    with Engine("dask", n_workers=1) as eng:
        loaded = eng.client.run(lambda: [m in sys.modules for m in ("dask_geopandas", "features.scale",
                                                                     "sources.ingest")])
    assert list(loaded.values()) == [[True, True, True]]


@pytest.mark.parametrize("edition", ["lsoa2011", "grid250"])
def test_dask_features_equal_local(builders, edition):
    local, dask = builders[edition]
    assert dask._cube is not local._cube
    assert dask.assignment_report() == local.assignment_report()
    assert dask.assignment_report()["read"] > 8_000
    assert dask.months == local.months
    pd.testing.assert_frame_equal(dask.panel(), local.panel())
    pd.testing.assert_frame_equal(dask.panel(weight="harm"), local.panel(weight="harm"), rtol=1e-12)
    for cutoff in CUTOFFS:
        a, b = local.matrix(cutoff), dask.matrix(cutoff)
        assert list(b.columns) == list(a.columns) and b.index.equals(a.index)
        exact = [c for c in a.columns if c not in KERNEL]
        pd.testing.assert_frame_equal(b[exact], a[exact], check_exact=False, rtol=1e-12, atol=1e-9)
        pd.testing.assert_frame_equal(b[KERNEL], a[KERNEL], check_exact=False, rtol=1e-12, atol=1e-12)
        assert (b["cnt_sv_12m"] == a["cnt_sv_12m"]).all()
        assert a["nr_sv"].sum() > 0


def test_same_pieces_give_identical_sums_on_every_engine(store, dask_engine):
    """One task per partition file on the cluster, a pool of 2, one process: the same bits."""
    units = build_units(store, "grid250")
    groups, _ = event_groups()
    one = Engine("local", n_workers=1).event_sums(store, units, TARGET)
    with Engine("local", n_workers=2, min_parallel=(0, 0), load=_idle) as pool:  # the pool even for a small job
        two = pool.event_sums(store, units, TARGET)
    cluster = event_sums(store, units, groups, TARGET, map_reduce=DaskWorkers(dask_engine.client).map_reduce,
                         engine="dask")
    assert one.partitions == two.partitions == cluster.partitions
    for other in (two, cluster):
        assert other.assignment == one.assignment
        for a, b in [(one.cube.counts, other.cube.counts), (one.cube.harm, other.cube.harm),
                     (one.kernel.near, other.kernel.near), (one.kernel.kde, other.kernel.kde)]:
            assert np.array_equal(a, b)
    assert one.kernel.near.sum() > 0


def test_a_spatial_shuffle_works_on_process_workers(store, dask_engine, tmp_path):
    """The geometry survives the P2P shuffle's Arrow round trip (dask-geopandas imported on workers).

    Without the engine's worker plugin this failed with ``TypeError: Input must be valid
    geometry objects: b'\\x01\\x01...'``: one file read as one partition, shuffled into four.
    """
    import dask_geopandas

    events = store.table("events")[["month", "group", "harm", "geometry"]]
    events.to_parquet(tmp_path / "one.parquet")
    gdf = dask_geopandas.read_parquet(tmp_path / "one.parquet")
    assert gdf.npartitions == 1
    shuffled = gdf.spatial_shuffle(by="hilbert", npartitions=4).compute()
    assert len(shuffled) == len(events) and shuffled.geometry.geom_type.eq("Point").all()
    assert read_events_dask(store).npartitions == 1  # the borough's small months: one piece, no shuffle


def test_dask_rankings_and_baseline_backtest_equal_local(builders, dask_engine):
    local, dask = builders["grid250"]
    for cutoff in CUTOFFS:
        ra = rank_order(local.matrix(cutoff)["cnt_sv_12m"])
        rb = rank_order(dask.matrix(cutoff)["cnt_sv_12m"])
        assert list(ra) == list(rb)
    kw = {"origins": ["2016-11", "2016-12"], "train_origins": 2, "min_train_history": 6}
    a = dask_engine.backtest(local, methods=baseline_methods(), **kw)
    b = dask_engine.backtest(dask, methods=baseline_methods(), **kw)
    pd.testing.assert_frame_equal(a, b)


def test_xgboost_dask_within_tolerance(builders, dask_engine):
    local, dask = builders["lsoa2011"]
    model = PoissonBoost(**FAST_XGB)
    assert isinstance(dask_engine.estimator(model), DaskPoissonBoost)
    kw = {"train_origins": 3, "min_train_history": 6}
    fitted_local = Engine("local").fit_at(local, model, "2017-01", **kw)
    fitted_dask = dask_engine.fit_at(dask, model, "2017-01", **kw)
    assert isinstance(fitted_dask, DaskPoissonBoost) and not isinstance(fitted_local, DaskPoissonBoost)
    X = forecast_matrix(local, "2017-01")
    pl, pd_ = fitted_local.predict(X), fitted_dask.predict(X)
    assert np.max(np.abs(pd_ - pl) / pl) <= 1e-3
    assert pd.Series(pl).corr(pd.Series(pd_), method="spearman") >= 0.999
    ta = Engine("local").backtest(local, methods={"xgb": model}, origins=["2016-12"], **kw)
    tb = dask_engine.backtest(dask, methods={"xgb": model}, origins=["2016-12"], **kw)
    for measure in ("pai", "pei", "hit_rate"):
        np.testing.assert_allclose(tb[measure].to_numpy(), ta[measure].to_numpy(), atol=0.02)


def test_the_engine_sends_the_blends_boosting_to_dask():
    from models.boosting import BlendedBoost, DaskPoissonBoost, PoissonBoost
    from service.engine import Engine

    blend = BlendedBoost(PoissonBoost(seed=3, n_estimators=20), weight=0.4)
    on_dask = Engine("dask").estimator(blend)
    assert isinstance(on_dask, BlendedBoost) and on_dask is not blend
    assert type(on_dask.estimator) is DaskPoissonBoost
    assert on_dask.estimator.get_params()["seed"] == 3 and on_dask.weight == 0.4
    assert type(blend.estimator) is PoissonBoost  # the original is not changed


def test_the_local_engine_trains_with_its_threads():
    from models.boosting import BlendedBoost, PoissonBoost

    blend = BlendedBoost(PoissonBoost(seed=3, n_estimators=20), weight=0.4)
    local = Engine("local", n_jobs=2)
    assert local.estimator(PoissonBoost()).n_jobs == 2
    threaded = local.estimator(blend)
    assert threaded is not blend and threaded.estimator.n_jobs == 2 and threaded.estimator.seed == 3
    assert blend.estimator.n_jobs is None  # the original is not changed


def _idle():
    return 0.0  # tests that need a pool of 2 get one however busy the machine is


@pytest.mark.parametrize(("workers", "busy", "workers_used", "processes", "fit_threads"), [
    ("auto", 0.0, 4, 4, 4),   # an idle machine: every usable core, as processes or as a fit's threads
    ("auto", 1.0, 3, 3, 3),   # one core busy with other work: left to it
    ("auto", 6.0, 1, 1, 1),   # more work than cores: never below 1
    (2, 0.0, 2, 2, 2),        # a number is the most; a fit has as many threads
    (2, 3.0, 2, 1, 1),        # ... and neither processes nor a fit's threads take a busy core
    (8, 0.0, 8, 4, 4),        # never more processes or threads than usable cores
])
def test_workers_and_fit_threads_sized_to_the_free_cores(workers, busy, workers_used, processes, fit_threads):
    from models.boosting import PoissonBoost

    eng = Engine("local", n_workers=workers, cores=4, load=lambda: busy)
    assert eng.n_workers == workers_used and eng._workers.size(10) == processes
    assert eng.fit_threads() == fit_threads and eng.estimator(PoissonBoost()).n_jobs == fit_threads
    assert f"workers={workers_used} (" in repr(eng)  # the choice and why, in the run's progress line
    assert ("auto: 4 usable cores, " + f"{busy:.1f} busy" in repr(eng)) == (workers == "auto")


def test_a_fit_measures_the_load_as_it_starts():
    from models.boosting import PoissonBoost

    loads = iter([0.0, 1.0, 0.0])  # idle as the engine starts, one core busy at the first fit, idle at the next
    eng = Engine("local", cores=2, load=lambda: next(loads))
    assert eng.n_workers == 2
    assert eng.estimator(PoissonBoost()).n_jobs == 1
    assert eng.estimator(PoissonBoost()).n_jobs == 2


@pytest.mark.parametrize("kind", ["local", "dask"])
def test_parallel_ingest_gives_the_same_store(tmp_path, kind):
    """Monthly files loaded on 2 worker processes (a pool, or Dask process workers), linked
    records across files resolved after loading: the same tables, rejects and report."""
    from ingest_fixtures import STREET_HEADER, street_row, write_boundaries, write_csv

    from service.engine import Engine
    from sources.ingest import ingest

    data = tmp_path / "data"
    write_boundaries(data / "boundaries")
    for m in range(1, 10):  # nine files on two workers: a shared duplicate memory would race
        rows = [street_row(f"{m}{i:063x}", f"2017-0{m}", 530100 + 70 * i, 180300 + 40 * m) for i in range(10)]
        rows.append(street_row("e" * 64, f"2017-0{m}", 530500, 180500))  # one id repeated in every month
        rows.append(street_row(f"{m}" + "f" * 63, f"2017-0{m}", 545000, 195000))  # outside: rejected
        write_csv(data / "crime" / f"2017-0{m}" / f"2017-0{m}-fixture-street.csv", STREET_HEADER, rows)
    local = ingest(data, tmp_path / "serial")
    calls = []
    with Engine(kind, n_workers=2, **({"min_parallel": (0, 0), "load": _idle} if kind == "local" else {})) as engine:
        def mapper(func, items, shared=(), nbytes=None):
            calls.append((len(items), nbytes > 0))
            return engine.map_files(func, items, shared, nbytes)

        if kind == "dask":
            assert set(engine.client.run(os.getpid).values()).isdisjoint({os.getpid()})
        parallel = ingest(data, tmp_path / "parallel", map_files=mapper)
    assert calls == [(5, True)]  # the nine monthly files went to the workers together (in 5 groups), with their size
    _assert_same_stores(tmp_path, local, parallel)
    a = Store(tmp_path / "serial").table("events")
    ra = pd.read_parquet(tmp_path / "serial" / "rejects.parquet")
    assert (ra["reason"] == "linked record of one crime").sum() == 8
    assert a.loc[a["crime_id"] == "e" * 64, "month"].dt.month.tolist() == [1]


@pytest.mark.parametrize("kind", ["local", "dask"])
def test_one_long_file_checked_in_pieces_gives_the_same_store(tmp_path, kind):
    """One police.uk CSV of nine months, cut into pieces of about 1,000 characters checked on 2
    worker processes (a pool, or Dask process workers): the same tables, rejects and report."""
    from ingest_fixtures import STREET_HEADER, street_row, write_boundaries, write_csv

    from sources.loaders.context import IngestOptions

    data = tmp_path / "data"
    write_boundaries(data / "boundaries")
    rows = []
    for m in range(1, 10):
        rows += [street_row(f"{m}{i:063x}" if i % 7 else "", f"2017-0{m}", 530100 + 70 * i, 180300 + 40 * m)
                 for i in range(10)]
        rows.append(street_row("e" * 64, f"2017-0{m}", 530500, 180500))  # one id repeated in every month
        rows.append(street_row(f"{m}" + "f" * 63, f"2017-0{m}", 545000, 195000))  # outside: rejected
    write_csv(data / "crime" / "force-street.csv", STREET_HEADER, rows)
    options = IngestOptions(piece_mb=1000 / 2**20)
    local = ingest(data, tmp_path / "serial", options=options)
    calls = []
    with Engine(kind, n_workers=2, **({"min_parallel": (0, 0), "load": _idle} if kind == "local" else {})) as engine:
        def mapper(func, items, shared=(), nbytes=None):
            calls.append((getattr(func, "func", func).__name__, len(items)))
            return engine.map_files(func, items, shared, nbytes)

        parallel = ingest(data, tmp_path / "parallel", map_files=mapper, options=options)
    assert calls[0] == ("_load_group", 0) and calls[1][0] == "_load_piece" and calls[1][1] > 10
    _assert_same_stores(tmp_path, local, parallel)


def _assert_same_stores(tmp_path, local: dict, parallel: dict) -> None:
    strip = [{k: v for k, v in i.items() if k not in ("files",)} for i in local["inputs"]]
    assert strip == [{k: v for k, v in i.items() if k not in ("files",)} for i in parallel["inputs"]]
    assert local["totals"] == parallel["totals"]
    a_store, b_store = Store(tmp_path / "serial"), Store(tmp_path / "parallel")
    for name in ("events", "units_lsoa2011"):
        pd.testing.assert_frame_equal(pd.DataFrame(a_store.table(name)), pd.DataFrame(b_store.table(name)))
    ra = pd.read_parquet(tmp_path / "serial" / "rejects.parquet").sort_values(["source_file", "source_row"])
    rb = pd.read_parquet(tmp_path / "parallel" / "rejects.parquet").sort_values(["source_file", "source_row"])
    cols = ["source_file", "source_row", "reason", "detail"]
    pd.testing.assert_frame_equal(ra[cols].reset_index(drop=True), rb[cols].reset_index(drop=True))
