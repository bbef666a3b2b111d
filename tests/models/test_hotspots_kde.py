import math

import numpy as np
import pytest

from models.hotspots import kde_at, kde_surface, write_geotiff
from models.hotspots.kde import default_bandwidth


def test_quartic_value_by_hand():
    # density per km2 = 1e6 * 3 / (pi h^2) * (1 - d^2/h^2)^2 with h = 1000 m
    pts = [[0.0, 0.0]]
    tg = [[0.0, 0.0], [500.0, 0.0], [1000.0, 0.0], [0.0, 1200.0]]
    d = kde_at(pts, tg, bandwidth=1000.0, kernel="quartic")
    np.testing.assert_allclose(d, [3 / math.pi, 3 / math.pi * 0.75**2, 0.0, 0.0], atol=1e-12)


def test_weights_scale_density():
    a = kde_at([[0, 0], [100, 0]], [[50, 0]], 400.0, weights=[2.0, 0.5])
    b = kde_at([[0, 0]], [[50, 0]], 400.0)
    assert a[0] == pytest.approx(2.5 * b[0])


@pytest.mark.parametrize(("kernel", "half_width"), [("quartic", 250.0), ("gaussian", 6 * 100.0)])
def test_kernel_integrates_to_one(kernel, half_width):
    # one event at the centre of a fine grid: sum(density * cell area in km2) = 1
    cell = 5.0
    surf, transform = kde_surface(
        [[1000.0, 2000.0]],
        cell,
        (1000 - half_width, 2000 - half_width, 1000 + half_width, 2000 + half_width),
        bandwidth=200.0 if kernel == "quartic" else 100.0,
        kernel=kernel,
    )
    assert surf.sum() * (cell * cell) / 1e6 == pytest.approx(1.0, abs=2e-3)
    assert transform.a == cell and transform.e == -cell
    assert (transform.c, transform.f) == (1000 - half_width, 2000 + half_width)


def test_surface_is_north_up():
    surf, _ = kde_surface([[50.0, 950.0]], 100.0, (0, 0, 1000, 1000), bandwidth=150.0)
    assert surf.shape == (10, 10)
    assert np.unravel_index(surf.argmax(), surf.shape) == (0, 0)  # top-left cell


def test_default_bandwidth_rule_by_hand():
    # four corners of a 100 m square: SD = Dm = 50*sqrt(2);
    # h = 0.9 * min(SD, sqrt(1/ln 2) * Dm) * 4 ** -0.2
    pts = [[0, 0], [100, 0], [0, 100], [100, 100]]
    expect = 0.9 * 50 * math.sqrt(2) * 4**-0.2
    assert default_bandwidth(pts, clip=(1, 5000)) == pytest.approx(expect)
    assert default_bandwidth(pts) == 100.0  # clipped to the 100 m floor


def test_bad_inputs_named():
    with pytest.raises(ValueError, match="kernel"):
        kde_at([[0, 0]], [[0, 0]], 100.0, kernel="epanechnikov")
    with pytest.raises(ValueError, match="points_xy row 1"):
        kde_at([[0, 0], [np.nan, 1]], [[0, 0]], 100.0)
    with pytest.raises(ValueError, match="bandwidth"):
        kde_at([[0, 0]], [[0, 0]], -5)


def test_geotiff_round_trip(tmp_path):
    import rasterio

    surf, transform = kde_surface(
        [[530000.0, 190000.0]], 50.0, (529500, 189500, 530500, 190500), 300.0
    )
    path = write_geotiff(surf, transform, tmp_path / "kde.tif")
    with rasterio.open(path) as src:
        assert src.crs.to_epsg() == 27700
        assert src.transform == transform
        np.testing.assert_array_equal(src.read(1), surf)
