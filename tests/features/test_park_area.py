"""Park area per unit by the parts each unit touches equals intersecting every unit with all parks dissolved."""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon, box

from features.context import park_area


def whole(units, parks):
    return shapely.area(shapely.intersection(units, shapely.union_all(shapely.make_valid(parks))))


def test_park_area_equals_the_dissolved_whole():
    rng = np.random.default_rng(3)
    units = np.array([box(x, y, x + 250, y + 250) for x in range(0, 5000, 250) for y in range(0, 3000, 250)])
    parks = [shapely.Point(rng.uniform(0, 5000), rng.uniform(0, 3000)).buffer(rng.uniform(20, 400)) for _ in range(60)]
    parks += [MultiPolygon([box(100, 100, 600, 300), box(700, 100, 900, 900)]),  # a park of two parts
              box(150, 150, 550, 250),  # inside another: counted once
              Polygon([(2000, 2000), (2600, 2600), (2600, 2000), (2000, 2600)]),  # a bow-tie: invalid, repaired
              box(90_000, 90_000, 91_000, 91_000)]  # outside every unit
    parks = np.array(parks, dtype=object)
    got, want = park_area(units, parks), whole(units, parks)
    assert (want > 0).sum() > 50 and (want == 0).sum() > 10
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-6)
    assert np.all(got <= shapely.area(units) + 1e-6)


def test_no_parks_or_no_units_give_zeros():
    units = np.array([box(0, 0, 10, 10)])
    assert park_area(units, np.array([box(100, 100, 110, 110)], dtype=object)).tolist() == [0.0]
    assert park_area(np.array([], dtype=object), np.array([box(0, 0, 1, 1)], dtype=object)).tolist() == []
