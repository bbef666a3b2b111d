"""Backtest predictions shared across methods and kept on disk: same numbers, read back instead of refitted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.build import FeatureBuilder
from features.units import build_units
from models.backtest import backtest, backtest_methods
from models.baselines import ColumnRanker, PanelMean
from models.glm import PoissonGLM
from models.prediction_cache import PredictionCache, method_key, store_digest
from sources.store import Store

ORIGINS = ["2018-07", "2018-08", "2018-09"]


@pytest.fixture(scope="module")
def demo_fb(demo_store):
    store = Store(demo_store)
    return FeatureBuilder(store, build_units(store, "lsoa2011"))


def _run(fb, methods, origins=ORIGINS, **kwargs):
    forecasts: dict = {}
    per = backtest(fb, methods, origins=origins, horizon=1, per_origin=True, forecasts=forecasts, **kwargs)
    return per, forecasts


def _same(a: pd.DataFrame, b: pd.DataFrame):
    a, b = a.reset_index(drop=True), b.reset_index(drop=True)
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    num = a.select_dtypes("number").columns
    np.testing.assert_allclose(a[num].astype(float).to_numpy(), b[num].astype(float).to_numpy(), rtol=1e-12,
                               atol=1e-12, equal_nan=True)
    for c in set(a.columns) - set(num):
        assert a[c].astype(str).tolist() == b[c].astype(str).tolist(), c


@pytest.mark.slow
def test_the_shared_backtest_scores_every_method_as_it_scores_alone(demo_fb):
    # one run shares feature matrices, training rows, kernel surfaces and the nested default's candidate
    # fits; each method backtested on its own (nothing shared) must give the same rows
    methods = backtest_methods()
    shared, forecasts = _run(demo_fb, methods)
    for name in methods:
        alone, own = _run(demo_fb, {name: backtest_methods()[name]})
        _same(shared.loc[shared["method"] == name, list(alone.columns)], alone)
        for o in ORIGINS:
            pd.testing.assert_series_equal(forecasts[(name, o)].sort_index(), own[(name, o)].sort_index(),
                                           rtol=1e-12, check_names=False)


@pytest.mark.slow
def test_a_second_backtest_of_an_unchanged_store_reads_its_predictions(demo_fb, demo_store, tmp_path, monkeypatch):
    digest = store_digest(Store(demo_store))
    first_cache = PredictionCache(tmp_path / "cache", digest)
    first, first_fc = _run(demo_fb, backtest_methods(), predictions=first_cache)
    assert first_cache.hits == 0 and first_cache.misses > 0
    written = sorted((tmp_path / "cache").glob("*.npz"))
    assert len(written) == first_cache.misses

    def no_fit(self, X, y):
        raise AssertionError("refitted although the cache holds the prediction")

    monkeypatch.setattr(PoissonGLM, "fit", no_fit)
    monkeypatch.setattr(ColumnRanker, "fit", no_fit)
    again = PredictionCache(tmp_path / "cache", digest)
    second, second_fc = _run(demo_fb, backtest_methods(), predictions=again)
    assert again.hits == len(written) and again.misses == 0 and again.rejected == 0
    _same(first, second)
    for k, v in first_fc.items():
        np.testing.assert_array_equal(v.sort_index().to_numpy(), second_fc[k].sort_index().to_numpy())
    # the kernel baselines' bandwidth choices come back with their predictions
    assert set(second.loc[second["method"] == "kde", "origin"]) == set(ORIGINS)


def test_a_changed_store_or_method_is_not_read_from_the_cache(tmp_path):
    counts = _counts()
    fb = _Builder(counts)
    methods = {"count_12m": ColumnRanker("cnt_sv_12m"), "glm": PoissonGLM(features=("cnt_sv_12m",),
                                                                          spatial_lag=False)}
    one = PredictionCache(tmp_path, "store-a")
    _run(fb, methods, origins=["2016-10", "2016-11"], predictions=one)
    assert one.misses == 4
    other_store = PredictionCache(tmp_path, "store-b")
    _run(fb, methods, origins=["2016-10", "2016-11"], predictions=other_store)
    assert other_store.hits == 0 and other_store.misses == 4
    changed = PredictionCache(tmp_path, "store-a")
    _run(fb, {"count_12m": ColumnRanker("cnt_sv_1m")}, origins=["2016-10", "2016-11"], predictions=changed)
    assert changed.hits == 0 and changed.misses == 2
    same = PredictionCache(tmp_path, "store-a")
    _run(fb, methods, origins=["2016-10", "2016-11"], predictions=same)
    assert same.hits == 4 and same.misses == 0


def test_a_damaged_entry_is_not_trusted_but_remade(tmp_path):
    fb = _Builder(_counts())
    methods = {"glm": PoissonGLM(features=("cnt_sv_12m",), spatial_lag=False)}
    clean, _ = _run(fb, methods, origins=["2016-10"], predictions=PredictionCache(tmp_path, "s"))
    (entry,) = tmp_path.glob("*.npz")
    with np.load(entry) as z:
        stored = z["values"].tobytes()
    raw = bytearray(entry.read_bytes())
    at = raw.find(stored)
    assert at >= 0
    raw[at + 3] ^= 0xFF  # one prediction changed on disk
    entry.write_bytes(bytes(raw))
    damaged = PredictionCache(tmp_path, "s")
    again, _ = _run(fb, methods, origins=["2016-10"], predictions=damaged)
    assert damaged.rejected == 1 and damaged.hits == 0
    _same(clean, again)
    # rewritten whole: the next read trusts it
    third = PredictionCache(tmp_path, "s")
    _run(fb, methods, origins=["2016-10"], predictions=third)
    assert third.hits == 1 and third.rejected == 0
    # a file that is not an entry at all, under an entry's name, is not trusted either
    entry.write_bytes(b"not a cache entry")
    fourth = PredictionCache(tmp_path, "s")
    _run(fb, methods, origins=["2016-10"], predictions=fourth)
    assert fourth.rejected == 1 and entry.is_file()


def test_the_cache_stays_within_its_bound_and_can_be_emptied(tmp_path):
    cache = PredictionCache(tmp_path, "s", max_mb=0.02)  # about 20 kB: a few entries of 100 units
    ids = pd.Index([f"u{i:04d}" for i in range(100)])
    for k in range(20):
        cache.put(cache.key(origin=k), pd.Series(np.arange(100.0) + k, index=ids))
    sizes = [p.stat().st_size for p in tmp_path.glob("*.npz")]
    assert 0 < len(sizes) < 20 and sum(sizes) <= 0.02 * 2**20
    newest = cache.get(cache.key(origin=19))
    assert newest is not None and newest[0].iloc[0] == 19.0  # the least recently used went first
    assert cache.get(cache.key(origin=0)) is None
    assert cache.clear() == len(sizes) and not list(tmp_path.glob("*.npz"))


def test_method_keys_follow_parameters_not_objects():
    assert method_key(PoissonGLM()) == method_key(PoissonGLM())
    assert method_key(PoissonGLM()) != method_key(PoissonGLM(spatial_lag=False))
    assert method_key(PanelMean(window=None)) != method_key(PanelMean(window=12))


def _counts() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    months = pd.date_range("2016-01-01", periods=12, freq="MS")
    rate = np.linspace(0.2, 4.0, 30)
    return pd.DataFrame(rng.poisson(rate[:, None], size=(30, 12)).astype(float),
                        index=pd.Index([f"u{i:02d}" for i in range(30)], name="unit_id"), columns=months)


class _Builder:
    """The FeatureBuilder contract over a count panel: 1- and 12-month counts (no store needed)."""

    def __init__(self, counts):
        from types import SimpleNamespace

        self.counts = counts
        ids = counts.index.astype(str)
        self.units = SimpleNamespace(edition="fake", frame=pd.DataFrame({"unit_id": ids, "area_m2": 62500.0}))
        self.months = list(counts.columns)
        self.target_groups = ["violence"]

    def matrix(self, cutoff):
        c = pd.Timestamp(cutoff)
        cols = self.counts.columns
        X = pd.DataFrame({f"cnt_sv_{w}m": self.counts.loc[:, (cols < c) & (cols >= c - pd.DateOffset(months=w))]
                          .sum(axis=1).astype(float) for w in (1, 12)})
        X.index.name = "unit_id"
        return X

    def panel(self, groups=None, weight="count"):
        return self.counts * (1.0 if weight == "count" else 150.0)
