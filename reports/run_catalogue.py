"""The run catalogue: every file of a run folder, what it holds and which step writes it.

A run folder (``<out>/runs/<run_id>/``) is written by :func:`service.run.make_run` and
:func:`reports.outputs.write_outputs` and read by :mod:`reports.run_folder`, the API
(:mod:`service.api`) and :mod:`service.publish`. All of them take the file names from here,
so the format has one description (in the spirit of Kedro's data catalogue), and
:func:`check_folder` says which files of a folder the catalogue does not list and which
files it lists for every run are missing (the catalogue test runs it on a demo run).

It sits in ``reports/`` because its writers and readers are ``service/`` and ``reports/``;
the models' ledger keeps its own folder (``<out>/ledger/``) and reads no run folder.

Example
-------
>>> RANKING.path, PLANNING_RANKING.name(horizon=3), GEOJSON.name(layer="hubs")
('ranking.parquet', 'ranking_h3.parquet', 'geojson/hubs.geojson')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# what writes each file: the steps of service.run.make_run, then reports.outputs.write_outputs
TABLES_STEP = "service.run.write_run_folder"
OUTPUTS_STEP = "reports.outputs.write_outputs"


@dataclass(frozen=True)
class RunFile:
    """One file (or one family of files) of a run folder.

    Attributes
    ----------
    key : str
        The name readers use (``Run.tables[key]`` for tables).
    path : str
        Path inside the run folder; ``{horizon}`` or ``{layer}`` stand for a number or a
        layer name (:data:`LAYERS`).
    format : str
        File format (GeoParquet tables are in EPSG:27700).
    holds : tuple of str
        Key columns of a table or top-level keys of a JSON file (not every one).
    step : str
        The function that writes it.
    when : str or None
        None: every run writes it; else the condition under which it is written.
    """

    key: str
    path: str
    format: str
    holds: tuple[str, ...]
    step: str
    when: str | None = None

    def name(self, **fields) -> str:
        """The file name with its placeholders filled, e.g. ``name(horizon=3)``."""
        return self.path.format(**fields)

    @property
    def optional(self) -> bool:
        return self.when is not None

    def pattern(self) -> re.Pattern:
        """A regular expression every name of this entry matches."""
        text = re.escape(self.path).replace(r"\{horizon\}", r"\d+")
        return re.compile("^" + text.replace(r"\{layer\}", "(" + "|".join(LAYERS) + ")") + "$")


LAYERS = ("ranked_units", "hotspots", "emerging", "areas", "hubs", "youth_places", "current_ranked_units")
"""Export layers of a run (:func:`reports.run_folder.run_layers`), in the order they are written."""
ALWAYS_LAYERS = ("ranked_units",)
"""Layers every run has; the others appear when their table (or a pattern) is there."""

HOTSPOT_COLUMNS = ("unit_id", "Gs", "Zs", "p_sim", "q_value", "gi_class", "Gi_Bin", "lisa_label", "emerging",
                   "geometry")
BOUNDARY_COLUMNS = ("code", "name", "geometry")
REQUIRED_META = ("run_id", "created", "model_version", "cutoff", "data_period")

RUN_JSON = RunFile("meta", "run.json", "JSON", REQUIRED_META + ("units", "horizons", "current", "data", "ledger"),
                   TABLES_STEP)
RANKING = RunFile("ranking", "ranking.parquet", "GeoParquet",
                  ("unit_id", "rank", "expected", "expected_lo", "expected_hi", "reason_1", "place", "geometry"),
                  "service.run.rank_places")
PLANNING_RANKING = RunFile("planning_ranking", "ranking_h{horizon}.parquet", "GeoParquet", RANKING.holds,
                           "service.run.rank_places",
                           "model.planning_horizon_months is set, differs from the main horizon and a model "
                           "for it exists (run.json['horizons'] names the file)")
CURRENT_RANKING = RunFile("current_ranking", "current_ranking.parquet", "GeoParquet", RANKING.holds,
                          "service.run.rank_places",
                          "monthly area tables reach later than the lead analysis (run.json['current'])")
HOTSPOTS = RunFile("hotspots", "hotspots.parquet", "GeoParquet", HOTSPOT_COLUMNS, TABLES_STEP)
AREAS = RunFile("areas", "areas.parquet", "GeoParquet", ("area_id", "n_units", "unit_ids", "expected", "harm_share", "geometry"), TABLES_STEP)
YOUTH_LIST = RunFile("youth_list", "youth_list.parquet", "GeoParquet", ("unit_id", "youth_rank", "youth_score", "reasons", "geometry"),
                     TABLES_STEP)
HUBS = RunFile("hubs", "hubs.parquet", "GeoParquet", ("kind", "name", "footfall", "geometry"), TABLES_STEP)
WARDS = RunFile("wards", "wards.parquet", "GeoParquet", BOUNDARY_COLUMNS, TABLES_STEP, "the store holds wards")
BOROUGH = RunFile("borough", "borough.parquet", "GeoParquet", BOUNDARY_COLUMNS, TABLES_STEP,
                  "the store holds the borough outline")
FAIRNESS = RunFile("fairness", "fairness.json", "JSON", ("top_n", "rows", "note"), TABLES_STEP)
FIGURES = RunFile("figures", "figures.json", "JSON", ("period_start", "period_end", "rows", "knife"), TABLES_STEP)
MAP = RunFile("map", "map.html", "HTML (folium, self-contained)", (), OUTPUTS_STEP)
BRIEFING = RunFile("briefing", "briefing.html", "HTML (A4)", (), OUTPUTS_STEP)
BRIEFING_PDF = RunFile("briefing_pdf", "briefing.pdf", "PDF (A4)", (), OUTPUTS_STEP,
                       "map.pdf is on and a headless Chromium is found")
GPKG = RunFile("gpkg", "layers.gpkg", "GeoPackage, EPSG:27700", LAYERS + ("layer_styles",), OUTPUTS_STEP)
SHP_ZIP = RunFile("shp_zip", "layers_shp.zip", "zipped Shapefiles, EPSG:27700", LAYERS, OUTPUTS_STEP)
SHP_FIELDS = RunFile("shp_fields", "layers_shp_fields.csv", "CSV", ("layer", "field", "shapefile_field"),
                     OUTPUTS_STEP)
KML = RunFile("kml", "layers.kml", "KML, EPSG:4326", LAYERS, OUTPUTS_STEP)
GEOJSON = RunFile("geojson", "geojson/{layer}.geojson", "GeoJSON, EPSG:4326", (), OUTPUTS_STEP)
CSV = RunFile("csv", "csv/{layer}.csv", "CSV, geometry as WKT in EPSG:27700", (), OUTPUTS_STEP)

CATALOGUE: tuple[RunFile, ...] = (RUN_JSON, RANKING, PLANNING_RANKING, CURRENT_RANKING, HOTSPOTS, AREAS, YOUTH_LIST,
                                  HUBS, WARDS, BOROUGH, FAIRNESS, FIGURES, MAP, BRIEFING, BRIEFING_PDF, GPKG,
                                  SHP_ZIP, SHP_FIELDS, KML, GEOJSON, CSV)
"""Every file of a run folder."""

TABLES: tuple[RunFile, ...] = (RANKING, HOTSPOTS, AREAS, YOUTH_LIST, HUBS, WARDS, BOROUGH, CURRENT_RANKING)
"""The GeoParquet tables :func:`reports.run_folder.load_run` reads by key (the planning ranking by
the name ``run.json['horizons']`` gives it)."""
OUTPUT_FILES: tuple[RunFile, ...] = (MAP, BRIEFING, BRIEFING_PDF, GPKG, SHP_ZIP, KML)
"""What people and GIS open, as the API lists and serves them."""


def catalogued(relative: str) -> RunFile | None:
    """The catalogue entry a path inside a run folder (``"csv/hubs.csv"``) belongs to, or None."""
    return next((f for f in CATALOGUE if f.pattern().match(relative)), None)


def check_folder(run_dir) -> tuple[list[str], list[str]]:
    """Compare a run folder with the catalogue.

    Returns
    -------
    unlisted, missing : list of str
        Files in the folder no entry lists, and files every run has (entries without
        ``when``; for layer files, :data:`ALWAYS_LAYERS`) that are not there.
    """
    run_dir = Path(run_dir)
    present = sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file())
    unlisted = [p for p in present if catalogued(p) is None]
    expected = [f.name(layer=layer) for f in CATALOGUE if not f.optional
                for layer in (ALWAYS_LAYERS if "{layer}" in f.path else (None,))]
    missing = [name for name in expected if name not in present]
    return unlisted, missing
