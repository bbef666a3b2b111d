"""The Dask engine gives the local engine's features, rankings and backtest scores.

Input: two synthetic boroughs, one year (``generate_scaled`` with a light process),
ingested once. Dask runs on an in-process ``LocalCluster`` (2 thread workers), the
events split into 4 partitions along a Hilbert curve.

Tolerances (stated): event and harm counts, window features, rankings of the
count baselines and their backtest measures are equal; kernel features (near-repeat,
KDE) are sums of floats added in another order and agree to a relative 1e-12.
Training with ``xgboost.dask`` merges per-worker quantile sketches, so forecasts
may differ slightly: relative difference <= 1e-3 per unit, Spearman >= 0.999, and
backtest PAI/PEI* within 0.02.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.demo.borough import CrimeTypeRate, DemoProcess
from features.demo.scale import generate_scaled
from features.sources.ingest import ingest
from features.sources.store import Store
from features.units import build_units
from models.backtest import forecast_matrix
from models.baselines import baseline_methods
from models.boosting import PoissonBoost
from models.evaluation import rank_order
from service.engine import DaskPoissonBoost, Engine
from service.settings import get_settings

pytest.importorskip("dask_geopandas")
pytest.importorskip("distributed")

LIGHT = DemoProcess(other_types=(CrimeTypeRate("Burglary", 60, {"resid": 0.4}),),
                    stop_search=CrimeTypeRate("stop and search", 20, {"dep": 0.5}))
CUTOFFS = ["2016-08", "2017-01"]
KERNEL = ["nr_sv", "kde_sv_12m"]
FAST_XGB = {"n_estimators": 60, "learning_rate": 0.15}


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
    with Engine("dask", npartitions=4, n_workers=2, processes=False) as eng:
        yield eng


@pytest.fixture(scope="module")
def builders(store, settings, dask_engine):
    out = {}
    for edition in ("lsoa2011", "grid250"):
        units = build_units(store, edition)
        target = settings.model.target_groups
        out[edition] = (Engine("local", chunk_rows=5_000).feature_builder(store, units, target_groups=target),
                        dask_engine.feature_builder(store, units, target_groups=target))
    return out


def test_engine_setting_is_validated(settings):
    assert Engine.from_settings(settings).kind == "local"
    with pytest.raises(ValueError, match="engine must be one of"):
        Engine("spark")
    with pytest.raises(ValueError, match="dask_scheduler='tcp://x:8786' is set but engine is 'local'"):
        Engine("local", "tcp://x:8786")
    with pytest.raises(RuntimeError, match="not connected"):
        Engine("dask").event_sums(None, None, settings.model.target_groups)


@pytest.mark.parametrize("edition", ["lsoa2011", "grid250"])
def test_dask_features_equal_local(builders, edition):
    local, dask = builders[edition]
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
    from models.boosting import BlendedBoost, PoissonBoost
    from service.engine import DaskPoissonBoost, Engine

    blend = BlendedBoost(PoissonBoost(seed=3, n_estimators=20), weight=0.4)
    on_dask = Engine("dask").estimator(blend)
    assert isinstance(on_dask, BlendedBoost) and on_dask is not blend
    assert type(on_dask.estimator) is DaskPoissonBoost
    assert on_dask.estimator.get_params()["seed"] == 3 and on_dask.weight == 0.4
    assert type(blend.estimator) is PoissonBoost  # the original is not changed
    assert Engine("local").estimator(blend) is blend


def test_ingest_on_the_dask_engine_gives_the_same_store(tmp_path):
    """Monthly files loaded in parallel, linked records across files resolved after loading: same tables."""
    from ingest_fixtures import STREET_HEADER, street_row, write_boundaries, write_csv

    from features.sources.ingest import ingest
    from service.engine import Engine

    data = tmp_path / "data"
    write_boundaries(data / "boundaries")
    for m in range(1, 10):  # nine files on two thread workers: a shared duplicate memory would race
        rows = [street_row(f"{m}{i:063x}", f"2017-0{m}", 530100 + 70 * i, 180300 + 40 * m) for i in range(10)]
        rows.append(street_row("e" * 64, f"2017-0{m}", 530500, 180500))  # one id repeated in every month
        rows.append(street_row(f"{m}" + "f" * 63, f"2017-0{m}", 545000, 195000))  # outside: rejected
        write_csv(data / "crime" / f"2017-0{m}" / f"2017-0{m}-fixture-street.csv", STREET_HEADER, rows)
    local = ingest(data, tmp_path / "local")
    with Engine("dask", n_workers=2) as engine:
        dask = ingest(data, tmp_path / "dask", map_files=engine.map_files)
    strip = [{k: v for k, v in i.items() if k not in ("files",)} for i in local["inputs"]]
    assert strip == [{k: v for k, v in i.items() if k not in ("files",)} for i in dask["inputs"]]
    a = pd.read_parquet(tmp_path / "local" / "events.parquet")
    b = pd.read_parquet(tmp_path / "dask" / "events.parquet")
    pd.testing.assert_frame_equal(a, b)
    ra = pd.read_parquet(tmp_path / "local" / "rejects.parquet").sort_values(["source_file", "source_row"])
    rb = pd.read_parquet(tmp_path / "dask" / "rejects.parquet").sort_values(["source_file", "source_row"])
    cols = ["source_file", "source_row", "reason", "detail"]
    pd.testing.assert_frame_equal(ra[cols].reset_index(drop=True), rb[cols].reset_index(drop=True))
    assert (ra["reason"] == "linked record of one crime").sum() == 8
    assert a.loc[a["crime_id"] == "e" * 64, "month"].dt.month.tolist() == [1]
