"""Hot spots on the real data (Barnet LSOAs, points 2017-07..2018-06): the chosen band, the corridor, esda's z.

An analyst running ArcGIS Pro's Optimized Hot Spot Analysis on these points sees hot spots
along the Burnt Oak / Colindale / West Hendon corridor; svrisk's default run must too.
The corridor's LSOAs are found here from the boundaries in the store, not listed.
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pytest

CUTOFF = "2018-07"
CORRIDOR_WARDS = ("Burnt Oak", "Colindale", "West Hendon")


@pytest.fixture(scope="module")
def store(real_store):
    from sources.store import Store

    return Store(real_store)


@pytest.fixture(scope="module")
def builder(store):
    from features.build import FeatureBuilder
    from features.units import build_units

    return FeatureBuilder(store, build_units(store, "lsoa2011"), source="points")


@pytest.fixture(scope="module")
def result(builder):
    from models.hotspots.analysis import analyse_hotspots

    return analyse_hotspots(builder, CUTOFF, areas=False)


@pytest.fixture(scope="module")
def corridor(store, builder):
    """LSOA codes whose area lies mostly in one of the corridor's 2018 wards."""
    wards = store.units("ward2018")
    assert set(CORRIDOR_WARDS) <= set(wards["name"]), sorted(wards["name"])
    lsoas = builder.units.frame[["unit_id", "geometry"]]
    pieces = gpd.overlay(lsoas, wards[["name", "geometry"]], how="intersection", keep_geom_type=True)
    pieces["share"] = pieces.area / pieces["unit_id"].map(lsoas.set_index("unit_id").area)
    main = pieces.sort_values("share").groupby("unit_id").tail(1)
    codes = set(main.loc[main["name"].isin(CORRIDOR_WARDS) & (main["share"] > 0.5), "unit_id"])
    assert 20 <= len(codes) <= 40  # three wards of ~10 LSOAs each
    names = builder.units.frame.set_index("unit_id").loc[sorted(codes), "name"]
    assert names.str.match(r"^\w+ \d{3}[A-Z]$").all()  # "Barnet 024A": the names carry no ward
    return codes


def test_default_band_is_the_first_peak_of_incremental_spatial_autocorrelation(result):
    nb = result.meta["neighbourhood"]
    assert nb["conceptualisation"] == "fixed distance band" and nb["rule"] == "first peak"
    assert nb["band_m"] == pytest.approx(2319.5, abs=1.0)
    series = nb["incremental_spatial_autocorrelation"]
    z = [r["z"] for r in series]
    peak = int(np.argmin([abs(r["distance_m"] - nb["band_m"]) for r in series]))
    assert series[peak]["distance_m"] == pytest.approx(nb["band_m"], abs=1e-5)
    assert 0 < peak < len(z) - 1 and z[peak - 1] < z[peak] > z[peak + 1] and z[peak] > 1.65
    assert not any(r["peak"] for r in series[:peak])
    assert nb["neighbours"]["min"] >= 8


def test_corridor_lsoas_are_hot(result, corridor):
    table = result.table.set_index("unit_id")
    hot = set(table.index[table["Gi_Bin"] > 0])
    assert len(hot & corridor) >= 2 / 3 * len(corridor), sorted(corridor - hot)
    assert len(hot & corridor) >= 3 / 4 * len(hot), sorted(hot - corridor)
    assert not (table.loc[sorted(corridor), "Gi_Bin"] < 0).any()


def test_z_equals_esda_g_local_on_the_same_weights(result, builder):
    import esda

    nb = result.meta["neighbourhood"]
    graph = builder.units.band_graph(nb["band_m"], nb["min_neighbours"])
    y = result.table["y"].to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = esda.G_Local(y, graph, transform="B", star=True, permutations=0)
    np.testing.assert_allclose(result.table["Zs"].to_numpy(), ref.Zs, rtol=0, atol=1e-9)


def test_diagnostics_are_in_the_meta(result):
    dg = result.meta["diagnostics"]
    assert dg["n_units"] == 211 and dg["global_moran"]["p"] < 0.001 and dg["global_moran"]["I"] > 0
    assert dg["smallest_q"]["gi"] <= 0.05 and dg["no_significance_reason"] is None
    assert dg["significant"]["gi_hot"] == int((result.table["Gi_Bin"] > 0).sum())
    assert result.meta["inference"] == "normal" and result.meta["permutations"] is None
    assert result.meta["emerging"]["neighbourhood"] == result.meta["diagnostics"]["neighbourhood"]
    assert result.meta["emerging"]["inference"] == "normal"


def test_queen_with_permutations_finds_nothing_and_says_why(builder):
    """The old default (queen contiguity, permutations, FDR) is blind here, and the output says so."""
    from models.hotspots.analysis import analyse_hotspots, summary_lines

    res = analyse_hotspots(builder, CUTOFF, areas=False, neighbourhood="queen", inference="permutation",
                           permutations=999, seed=1)
    assert (res.table["Gi_Bin"] == 0).all()
    reason = res.meta["diagnostics"]["no_significance_reason"]
    assert reason.startswith("No place is a significant Gi* hot or cold spot") and "queen contiguity" in reason
    assert reason in summary_lines(res)
