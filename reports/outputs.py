"""Everything people and GIS tools open after a run: map, briefing and layers in every format.

A run folder (``<out>/runs/<run_id>/``, written by the pipeline) holds ``run.json`` and
GeoParquet tables; :func:`load_run` reads it, :func:`run_layers` turns it into the export
layers, and :func:`write_outputs` writes them next to the tables (every name is in
:mod:`reports.run_catalogue`):

==================  =====================================================================
``map.html``        self-contained folium map (no network needed to read it)
``briefing.html``   the printable (A4) briefing for the tasking meeting
``briefing.pdf``    the same, printed to A4 by headless Chromium (when it is installed)
``layers.gpkg``     GeoPackage, EPSG:27700, one layer per output, QGIS styles
``layers_shp.zip``  Shapefiles (EPSG:27700) + ``field_names.csv`` (10-character names)
``geojson/``        ``<layer>.geojson`` per layer, EPSG:4326
``layers.kml``      all layers, one folder each, EPSG:4326
``csv/``            ``<layer>.csv`` per layer, geometry as WKT in EPSG:27700
==================  =====================================================================
"""

from __future__ import annotations

import warnings
from pathlib import Path

from reports import layers as gl
from reports import run_catalogue as rc
from reports.briefing import write_briefing
from reports.maps import risk_map, save_map
from reports.pdf import PdfError, html_to_pdf
from reports.run_folder import context_layers, load_run, run_layers


def write_outputs(run_dir, *, scheme: str = "top_area", value: str = "expected", tiles: str | None = None,
                  tiles_attribution: str | None = None, pdf: bool = True,
                  browser: str | None = None) -> dict[str, Path]:
    """Write the map, the briefing (HTML and PDF) and every GIS format for one run folder.

    Parameters
    ----------
    run_dir : path-like
        ``<out>/runs/<run_id>``.
    scheme : {"top_area", "quantile", "rate_bands"}
        Choropleth classes of the map (see :func:`reports.maps.risk_map`).
    value : str
        Ranking column the choropleth shows.
    tiles, tiles_attribution : str, optional
        Base tiles of the interactive map (:func:`reports.maps.tile_source`); none by default.
    pdf : bool
        Print the briefing to ``briefing.pdf`` with headless Chromium (``browser``, else the
        first found). Without a browser the HTML is still written and a warning says why.

    Returns
    -------
    dict of str to Path
        Keys ``map``, ``briefing``, ``briefing_pdf`` (when printed), ``gpkg``, ``shp_zip``,
        ``shp_fields``, ``kml``, and ``geojson:<layer>`` / ``csv:<layer>`` per layer.
    """
    run_dir = Path(run_dir)
    run = load_run(run_dir)
    layers = run_layers(run)
    paths: dict[str, Path] = {}
    fmap = risk_map(layers, run.meta, context=context_layers(run), scheme=scheme, value=value, tiles=tiles,
                    tiles_attribution=tiles_attribution)
    paths[rc.MAP.key] = save_map(fmap, run_dir / rc.MAP.path)
    paths[rc.BRIEFING.key] = write_briefing(run, run_dir / rc.BRIEFING.path, scheme=scheme, value=value)
    if pdf:
        try:
            paths[rc.BRIEFING_PDF.key] = html_to_pdf(paths[rc.BRIEFING.key], run_dir / rc.BRIEFING_PDF.path,
                                                     browser=browser)
        except PdfError as err:
            warnings.warn(str(err), RuntimeWarning, stacklevel=2)
    paths[rc.GPKG.key] = gl.write_gpkg(layers, run_dir / rc.GPKG.path)
    fields = gl.write_shapefile_zip(layers, run_dir / rc.SHP_ZIP.path)
    paths[rc.SHP_ZIP.key] = run_dir / rc.SHP_ZIP.path
    paths[rc.SHP_FIELDS.key] = run_dir / rc.SHP_FIELDS.path
    fields.to_csv(paths[rc.SHP_FIELDS.key], index=False)
    # the layer files are written one per layer into the folder of their catalogue entry
    for name, p in gl.write_geojson(layers, run_dir / Path(rc.GEOJSON.path).parent).items():
        paths[f"{rc.GEOJSON.key}:{name}"] = p
    paths[rc.KML.key] = gl.write_kml(layers, run_dir / rc.KML.path)
    for name, p in gl.write_csv_wkt(layers, run_dir / Path(rc.CSV.path).parent).items():
        paths[f"{rc.CSV.key}:{name}"] = p
    return paths
