"""Steps of the run that hold a rule of their own: which schools the map shows, which saved model is the latest."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point

from features.context import open_schools
from models.baselines import ColumnRanker
from models.registry import save_model
from service.run import hubs_layer, latest_model

STATUSES = ["Open", "Closed", "Proposed to open", "Open, but proposed to close", None]


class _Store:
    """A store with schools only (what hubs_layer asks of one)."""

    def __init__(self, schools):
        self._tables = {"schools": schools}

    def has(self, name):
        return name in self._tables

    def table(self, name):
        return self._tables[name]


def _schools() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"name": [f"School {i}" for i in range(len(STATUSES))], "status": STATUSES},
                            geometry=[Point(530000 + 100 * i, 190000) for i in range(len(STATUSES))],
                            crs="EPSG:27700")


def test_a_school_is_open_unless_its_status_says_closed():
    assert open_schools(_schools())["name"].tolist() == ["School 0", "School 2", "School 3", "School 4"]


def test_the_map_shows_the_schools_the_features_count():
    hubs = hubs_layer(_Store(_schools()))
    assert hubs["name"].tolist() == open_schools(_schools())["name"].tolist()  # "proposed to open" included
    assert (hubs["kind"] == "school").all() and hubs["footfall"].isna().all()


def test_latest_model_picks_the_newest_version_for_units_data_and_horizon(tmp_path):
    X = pd.DataFrame({"cnt_sv_12m": [1.0, 2.0, 3.0]})
    model = ColumnRanker("cnt_sv_12m").fit(X, np.array([1.0, 2.0, 3.0]))
    for units, data, horizon in [("lsoa2011", "/d", 1), ("lsoa2011", "/d", 3), ("ward2022", "/d", 1),
                                 ("lsoa2011", "/other", 1)]:
        save_model(model, {"method": "count_12m", "units": units, "data_dir": data, "horizon": horizon}, tmp_path)
    assert latest_model(tmp_path, "lsoa2011", "/d") == "v0002"  # any horizon: the newest
    assert latest_model(tmp_path, "lsoa2011", "/d", horizon=1) == "v0001"
    assert latest_model(tmp_path, "lsoa2011", "/other") == "v0004"
    with pytest.raises(ValueError, match="no saved model for ward2022 units of /d with horizon 3"):
        latest_model(tmp_path, "ward2022", "/d", horizon=3)
