"""Feature matrices on the real Barnet data (SVRISK_REAL_DATA, default ../shared/data)."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.build import FeatureBuilder, features_to_files
from features.units import build_units
from sources.memstore import MemoryStore
from sources.store import Store

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

EDITIONS = ["lsoa2011", "lsoa2021", "ward2022", "grid250"]
CUTOFF = "2018-01"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    data = Path(os.environ.get("SVRISK_REAL_DATA", "../shared/data"))
    if not data.is_dir():
        pytest.skip(f"real data folder {data} not found (set SVRISK_REAL_DATA)")
    from sources.ingest import ingest

    out = tmp_path_factory.mktemp("realstore")
    ingest(data, out)
    return Store(out)


@pytest.fixture(scope="module")
def builders(store):
    return {e: FeatureBuilder(store, build_units(store, e), source="points") for e in EDITIONS}


def test_four_matrices_build_complete(builders):
    for edition, fb in builders.items():
        X = fb.matrix(CUTOFF)
        assert len(X) == len(fb.units), edition
        assert X.index.is_unique and X.index.tolist() == fb.units.frame["unit_id"].tolist()
        assert fb.dictionary()["name"].tolist() == X.columns.tolist()
        assert not X.isna().any().any(), (edition, X.columns[X.isna().any()].tolist())
        for col in ("cnt_sv_12m", "nr_sv", "kde_sv_12m", "imd_score", "pop_total", "foot_500", "dist_school_m"):
            assert col in X.columns, (edition, col)
        rep = fb.assignment_report()
        assert rep["assigned"] + rep["outside"] + rep["no_location"] == rep["read"]
        # ward and LSOA 2021 boundaries differ slightly from the LSOA 2011 layer the events were cut with
        assert rep["outside"] <= 0.02 * rep["read"], (edition, rep)


def test_counts_match_a_direct_count_of_the_events(store, builders):
    ev = store.table("events")
    sv = ev["group"].isin(["violence", "robbery", "sexual"]) & ev["month"].between("2017-01-01", "2017-12-01")
    fb = builders["lsoa2011"]
    X = fb.matrix(CUTOFF)
    # LSOA 2011 covers every event of the 2016-18 file (it was cut by LSOA 2011)
    assert X["cnt_sv_12m"].sum() == sv.sum()
    # population of the borough is carried whole to every unit set (±1%)
    totals = {e: b.matrix(CUTOFF)["pop_total"].sum() for e, b in builders.items()}
    assert max(totals.values()) / min(totals.values()) < 1.01, totals
    assert 350_000 < totals["lsoa2011"] < 420_000


def test_no_leakage_on_real_data(store, builders):
    tables = {p.stem: store.table(p.stem) for p in store.root.glob("*.parquet") if p.stem != "rejects"}
    ev = tables["events"]
    tables["events"] = ev[ev["month"] < pd.Timestamp(f"{CUTOFF}-01")]
    cut = MemoryStore(tables)
    fb = builders["grid250"]
    other = FeatureBuilder(cut, fb.units)
    pd.testing.assert_frame_equal(fb.matrix(CUTOFF), other.matrix(CUTOFF))
    assert not np.array_equal(fb.target(CUTOFF).to_numpy(), np.zeros(len(fb.units)))


def test_files_written(builders, tmp_path):
    paths = features_to_files(builders["ward2022"], CUTOFF, tmp_path)
    assert paths["matrix"].is_file() and paths["dictionary"].is_file()
