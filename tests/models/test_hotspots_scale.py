"""Scale of analysis: incremental spatial autocorrelation, its peak and fallback, the minimum-neighbours rule."""

import math
import warnings

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geo.units import UnitSet
from models.hotspots.scale import (
    choose_band,
    fallback_band,
    find_peaks,
    global_moran,
    incremental_spatial_autocorrelation,
    isa_distances,
    select_neighbourhood,
    standard_distance,
)


def lattice(n, spacing=100.0):
    return np.array([(c, r) for r in range(n) for c in range(n)], float) * spacing


def checkerboard(n, block, high=11.0, low=1.0):
    """Blocks of ``block`` x ``block`` cells, alternately high and low."""
    return np.array([high if ((r // block) + (c // block)) % 2 else low for r in range(n) for c in range(n)])


def lattice_units(n, spacing=100.0):
    boxes = [shapely.box(x - spacing / 2, y - spacing / 2, x + spacing / 2, y + spacing / 2) for x, y in lattice(n, spacing)]
    ids = [f"u{i:03d}" for i in range(n * n)]
    frame = gpd.GeoDataFrame({"unit_id": ids, "name": ids, "area_m2": spacing**2}, geometry=boxes, crs=27700)
    return UnitSet(frame, "test")


def moran_z_by_hand(y, xy, band):
    """Textbook global Moran's I z (row-standardised binary band, randomisation variance), dense loops."""
    n = len(y)
    d = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    a = ((d <= band + 1e-6) & (d > 0)).astype(float)
    w = a / a.sum(axis=1, keepdims=True)
    z = y - y.mean()
    s0 = w.sum()
    s1 = 0.5 * ((w + w.T) ** 2).sum()
    s2 = ((w.sum(axis=1) + w.sum(axis=0)) ** 2).sum()
    i = n / s0 * (z @ w @ z) / (z @ z)
    k = (z**4).mean() / (z**2).mean() ** 2
    ei = -1 / (n - 1)
    vi = (n * ((n * n - 3 * n + 3) * s1 - n * s2 + 3 * s0**2) - k * ((n * n - n) * s1 - 2 * n * s2 + 6 * s0**2)) / (
        (n - 1) * (n - 2) * (n - 3) * s0**2) - ei**2
    return (i - ei) / math.sqrt(vi)


def test_global_moran_equals_esda_randomisation():
    import esda
    from libpysal.graph import Graph
    from libpysal.weights import lat2W

    rng = np.random.default_rng(3)
    y = rng.poisson(3, 99).astype(float)
    g = Graph.from_W(lat2W(9, 11, rook=False)).transform("r")
    ours = global_moran(y, g.sparse)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = esda.Moran(y, g, permutations=0)
    assert ours["I"] == pytest.approx(ref.I, abs=1e-12)
    assert ours["VI"] == pytest.approx(ref.VI_rand, abs=1e-12)
    assert ours["z"] == pytest.approx(ref.z_rand, abs=1e-9)
    assert ours["p"] == pytest.approx(ref.p_rand, abs=1e-12)


def test_default_bands_of_a_lattice_by_hand():
    # 12 x 12 points 100 m apart: every nearest neighbour is 100 m away, so the series starts
    # at 100 m and would step by 100 m, but 10 steps pass the standard distance
    # sqrt(2 * (12**2 - 1) / 12) * 100 = 488.19 m: the 10 bands spread from 100 m up to it.
    xy = lattice(12)
    sd = math.sqrt(2 * (12**2 - 1) / 12) * 100
    assert standard_distance(xy) == pytest.approx(sd)
    np.testing.assert_allclose(isa_distances(xy), 100 + (sd - 100) / 10 * np.arange(10))
    # given a beginning and an increment, they are used as they are
    np.testing.assert_allclose(isa_distances(xy, begin_m=50, increment_m=25, n_bands=3), [50, 75, 100])


def test_lattice_series_and_its_peak_reproduced_by_hand():
    # 3 x 3 blocks of 11 among blocks of 1 on a 12 x 12 lattice: the clustering is strongest once
    # the band takes in the diagonal neighbours (141 m; the band at 177.6 m) and weakens beyond the
    # block size, so the first peak is the third band.
    xy, y = lattice(12), checkerboard(12, 3)
    table = incremental_spatial_autocorrelation(y, xy)
    bands = isa_distances(xy)
    np.testing.assert_allclose(table["distance_m"], bands)
    hand = np.array([moran_z_by_hand(y, xy, b) for b in bands])
    np.testing.assert_allclose(table["z"], hand, atol=1e-9)
    # the peak rule, by hand: z rose into the band, falls after it, and exceeds 1.65
    peaks = [i for i in range(1, len(hand) - 1)
             if hand[i] > hand[i - 1] and hand[i + 1] < hand[i] and hand[i] > 1.65]
    assert peaks[0] == 2
    assert table["peak"].tolist() == [i in peaks for i in range(len(hand))]
    band, rule, reason, _ = choose_band(y, xy)
    assert (band, rule) == (pytest.approx(bands[2]), "first peak")
    assert "178 m" in reason


def test_series_equals_esda_moran_at_each_band():
    import esda
    from libpysal.weights import DistanceBand

    xy, y = lattice(10), checkerboard(10, 2, high=5.0, low=2.0) + np.arange(100) % 3
    table = incremental_spatial_autocorrelation(y, xy, [100, 150, 250])
    for row in table.itertuples():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            w = DistanceBand(xy, threshold=row.distance_m + 1e-6, binary=True, silence_warnings=True)
            ref = esda.Moran(y, w, transformation="r", permutations=0)
        assert row.z == pytest.approx(ref.z_rand, abs=1e-9)
        assert row.I == pytest.approx(ref.I, abs=1e-12)


def test_peak_rule():
    assert find_peaks([1.0, 2.0, 3.0, 2.5, 4.0, 3.0]) == (2, 4)
    assert find_peaks([1.0, 2.0, 3.0, 4.0]) == (None, None)  # still rising: no peak
    assert find_peaks([0.5, 1.2, 1.0, 0.8]) == (None, None)  # a peak below 1.65 does not count
    assert find_peaks([1.0, 3.0, 3.0, 2.0]) == (2, 2)  # a plateau peaks where it ends
    assert find_peaks([4.0, 3.0, 3.5, 2.0]) == (2, 2)  # the first band cannot be a peak


def test_fallback_when_z_only_rises():
    # 5 x 5 blocks on a 10 x 10 lattice: clustering grows with every band up to the standard
    # distance, so there is no peak; K = 5% of 100 units = 5, and the 5th nearest neighbour is
    # 141.4 m away inside the lattice, 141.4 m on the edges too (3 at 100 m, 2 diagonals) but
    # 200 m in the 4 corners (2 at 100 m, 1 diagonal, then 200 m): mean (96 * 141.42 + 4 * 200) / 100.
    xy, y = lattice(10), checkerboard(10, 5)
    band, rule, reason, table = choose_band(y, xy)
    assert not table["peak"].any() and rule == "fallback"
    assert band == pytest.approx((96 * 100 * math.sqrt(2) + 4 * 200) / 100)
    assert "z kept rising without falling back" in reason and "5 nearest neighbours" in reason


def test_fallback_for_few_units_uses_three_neighbours():
    # 25 units (< 30): no series; K = 3. The 3rd nearest neighbour is 100 m away except in the
    # 4 corners (141.4 m): mean (21 * 100 + 4 * 141.42) / 25.
    xy = lattice(5)
    band, how = fallback_band(xy)
    assert band == pytest.approx((21 * 100 + 4 * 100 * math.sqrt(2)) / 25)
    band2, rule, reason, table = choose_band(np.arange(25.0), xy)
    assert (band2, rule, table) == (pytest.approx(band), "fallback", None)
    assert "only 25 units" in reason


def test_minimum_neighbours_tops_up_edges_and_corners():
    units = lattice_units(12)
    y = checkerboard(12, 3)
    nb = select_neighbourhood(units, y)
    # band 177.6 m: interior cells have their 8 queen neighbours, edges 5, corners 3
    assert nb.band_m == pytest.approx(isa_distances(units.centroids)[2])
    assert nb.topped_up == 4 * 10 + 4
    counts = nb.neighbour_counts()
    assert counts["min"] == 8 and counts["max"] == 8
    plain = select_neighbourhood(units, y, min_neighbours=0)
    assert plain.neighbour_counts() == {"min": 3, "mean": pytest.approx((100 * 8 + 40 * 5 + 4 * 3) / 144, abs=0.01),
                                        "max": 8}
    meta = nb.to_meta()
    assert meta["first_peak_m"] == pytest.approx(nb.band_m) and len(meta["incremental_spatial_autocorrelation"]) == 10


def test_other_conceptualisations_and_bad_input():
    units = lattice_units(6)
    y = checkerboard(6, 2)
    assert select_neighbourhood(units, y, "queen").graph is units.graph("queen")
    assert select_neighbourhood(units, y, "knn").graph is units.graph("knn")
    given = select_neighbourhood(units, y, "band", band_m=150)
    assert given.rule == "given" and given.isa is None and given.neighbour_counts()["min"] == 8
    with pytest.raises(ValueError, match="needs band_m"):
        select_neighbourhood(units, y, "band")
    with pytest.raises(ValueError, match="neighbourhood must be one of"):
        select_neighbourhood(units, y, "rook")
    with pytest.raises(ValueError, match="y has 3 values"):
        select_neighbourhood(units, [1.0, 2.0, 3.0])
