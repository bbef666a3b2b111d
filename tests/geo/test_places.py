"""geo.places: every unit gets its ward and nearest station, by hand on a strip of cells."""

import geopandas as gpd
import pytest
from shapely.geometry import Point, box

from geo.places import place_names, station_label


def _cells():
    # four 100 m cells in a row along y = 0..100, x = 0..400
    return gpd.GeoDataFrame({"unit_id": ["c0", "c1", "c2", "c3"], "name": ["C0", "C1", "C2", "C3"]},
                            geometry=[box(100 * i, 0, 100 * (i + 1), 100) for i in range(4)], crs=27700)


WARDS = gpd.GeoDataFrame({"name": ["West Ward", "East Ward"]},
                         geometry=[box(-10, -10, 200, 110), box(200, -10, 410, 110)], crs=27700)
STATIONS = gpd.GeoDataFrame({"name": ["Alpha", "Beta Station"]},
                            geometry=[Point(50, 150), Point(1380, 50)], crs=27700)


def test_ward_of_the_representative_point_and_distance_to_the_nearest_station():
    names = place_names(_cells(), WARDS, STATIONS)
    assert names.to_dict() == {
        "c0": "West Ward, by Alpha station",            # 50 m from its edge: "by"
        "c1": "West Ward, by Alpha station",            # corner at (100, 100): 71 m
        "c2": "East Ward, 150 m from Alpha station",    # (200, 100) -> (50, 150): 158 m -> 150
        "c3": "East Ward, 250 m from Alpha station",    # (300, 100): 255 m to Alpha, 980 m to Beta
    }
    near_beta = _cells().assign(geometry=[box(1000 + 100 * i, 0, 1100 + 100 * i, 100) for i in range(4)])
    # c0 (1000..1100): Beta 280 m, Alpha 950 m; c3 (1300..1400) holds Beta
    assert place_names(near_beta, None, STATIONS)[["c0", "c3"]].tolist() == [
        "300 m from Beta Station", "By Beta Station"]


def test_without_wards_or_stations_the_name_falls_back():
    assert place_names(_cells(), None, STATIONS)["c2"] == "150 m from Alpha station"
    assert place_names(_cells(), WARDS, None)["c3"] == "East Ward"
    assert place_names(_cells())["c0"] == "C0"
    far = STATIONS.assign(geometry=[Point(9000, 0), Point(9500, 0)])
    assert place_names(_cells(), WARDS, far)["c0"] == "West Ward"  # beyond 2 km: not a landmark


def test_labels_and_errors():
    assert station_label("Hendon") == "Hendon station"
    assert station_label("Mill Hill  East Station") == "Mill Hill East Station"
    with pytest.raises(ValueError, match="EPSG:27700"):
        place_names(_cells().to_crs(4326))
    with pytest.raises(ValueError, match="name column"):
        place_names(_cells(), WARDS.rename(columns={"name": "WD22NM"}))
