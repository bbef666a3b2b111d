"""Turn coordinate columns into validated EPSG:27700 points.

Row-level checks (each a reject reason): missing or non-numeric coordinates, 0,0,
latitude/longitude (or easting/northing) swapped, coordinates in the wrong CRS
(degrees where metres are expected and vice versa), and points outside the study
area plus a tolerance. When most rows of a file are swapped the *labels* are
swapped: the whole file is corrected and flagged instead of rejected.
"""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from geo.crs import WORKING_CRS
from sources.readers import DataError, RowChecks, to_number

_TO_BNG = Transformer.from_crs("EPSG:4326", WORKING_CRS, always_xy=True)
# Great Britain's extent: a loose sanity box for WGS84 and for BNG.
LON_RANGE, LAT_RANGE = (-9.0, 3.0), (49.0, 61.5)
E_RANGE, N_RANGE = (0.0, 700_000.0), (0.0, 1_300_000.0)


class StudyArea:
    """The area points must fall in: a polygon (EPSG:27700) grown by a tolerance in metres."""

    def __init__(self, polygon: shapely.Geometry | None):
        self.polygon = polygon
        self._cache: dict[float, shapely.Geometry] = {}

    def contains(self, x: np.ndarray, y: np.ndarray, tolerance: float) -> np.ndarray:
        if self.polygon is None:
            return np.ones(len(x), dtype=bool)
        if tolerance not in self._cache:
            grown = self.polygon.buffer(tolerance) if tolerance > 0 else self.polygon
            shapely.prepare(grown)
            self._cache[tolerance] = grown
        return shapely.contains_xy(self._cache[tolerance], x, y)


def _in_box(a: np.ndarray, b: np.ndarray, ra: tuple, rb: tuple) -> np.ndarray:
    return (a >= ra[0]) & (a <= ra[1]) & (b >= rb[0]) & (b <= rb[1])


def validate_points(
    frame: pd.DataFrame,
    checks: RowChecks,
    result_flags: list[dict],
    *,
    x_col: str,
    y_col: str,
    crs: str,
    area: StudyArea,
    tolerance: float,
    source: str,
    votes: dict | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Check coordinates row by row; return easting/northing arrays (NaN where rejected).

    ``crs`` is "EPSG:4326" (x = longitude, y = latitude) or "EPSG:27700" (x = easting).

    Two rules look at the whole file: when most rows have swapped coordinates, or a decimal
    comma, the file is read that way instead of rejecting those rows. With ``votes`` (a
    piece of a file, or several files checked as one table) neither rule is applied here: the
    rows are checked as though it did not fire and the counts it decides on are added to
    ``votes``, per file with ``votes["file"]`` (see :func:`_vote` and :func:`file_rules_fire`).
    """
    raw_x, raw_y = frame[x_col], frame[y_col]
    checks.reject(raw_x.isna() | raw_y.isna(), "missing coordinates", f"{x_col}/{y_col} blank")
    geographic = crs == "EPSG:4326"
    raw_x, raw_y = _decimal_commas(raw_x, raw_y, checks, result_flags, geographic, source, (x_col, y_col), votes)
    x = to_number(raw_x).to_numpy(dtype="float64", na_value=np.nan)
    y = to_number(raw_y).to_numpy(dtype="float64", na_value=np.nan)
    checks.reject(np.isnan(x) | np.isnan(y), "coordinates not numeric", raw_x.astype("string") + "," + raw_y.astype("string"))
    checks.reject((x == 0) & (y == 0), "coordinates at 0,0", "0,0 is a placeholder, not a location")
    if geographic:
        plausible = _in_box(x, y, LON_RANGE, LAT_RANGE)
        swapped_plausible = _in_box(y, x, LON_RANGE, LAT_RANGE)
        wrong_crs = _in_box(x, y, E_RANGE, N_RANGE) & ~plausible & ((np.abs(x) > 180) | (np.abs(y) > 90))
    else:
        plausible = _in_box(x, y, E_RANGE, N_RANGE) & ((np.abs(x) > 1000) | (np.abs(y) > 1000))
        wrong_crs = _in_box(x, y, LON_RANGE, LAT_RANGE)
    ok = checks.ok.to_numpy()
    # Project what can be projected; test the area for both orders to detect swaps.
    ex, ny = _project(x, y, geographic)
    sx, sy = _project(y, x, geographic)
    inside = area.contains(np.nan_to_num(ex), np.nan_to_num(ny), tolerance) & plausible
    if not geographic:
        swapped_plausible = _in_box(y, x, E_RANGE, N_RANGE)
    inside_swapped = area.contains(np.nan_to_num(sx), np.nan_to_num(sy), tolerance) & swapped_plausible
    swapped = ok & ~inside & inside_swapped
    candidates = ok & (inside | inside_swapped)
    if votes is not None:
        _vote(votes, "swapped", swapped)
        _vote(votes, "candidates", candidates)
    if votes is None and _swapped_file(int(swapped.sum()), int(candidates.sum())):
        result_flags.append({
            "check": "swapped_coordinate_columns",
            "severity": "warning",
            "message": f"{source}: columns {x_col!r}/{y_col!r} hold swapped values in "
            f"{int(swapped.sum())} of {int(candidates.sum())} rows; used them the other way round",
        })
        ex, ny = np.where(swapped, sx, ex), np.where(swapped, sy, ny)
        inside = inside | swapped
    else:
        label = "latitude/longitude swapped" if geographic else "easting/northing swapped"
        checks.reject(swapped, label, raw_x.astype("string") + "," + raw_y.astype("string"))
    checks.reject(
        wrong_crs & ~inside,
        "coordinates in the wrong CRS",
        "metres where degrees were expected" if geographic else "degrees where British National Grid metres were expected",
    )
    checks.reject(~plausible & ~inside, "coordinates outside Great Britain", raw_x.astype("string") + "," + raw_y.astype("string"))
    checks.reject(~inside, "outside the study area", f"more than {tolerance:g} m outside the study area")
    keep = checks.ok.to_numpy()
    return np.where(keep, ex, np.nan), np.where(keep, ny, np.nan)


def _vote(votes: dict, key: str, hit: np.ndarray) -> None:
    """Add the rows ``hit`` to ``votes[key]``: one count, or one per file when ``votes["file"]`` numbers
    each row's file (several files checked as one table: ``votes["files"]`` of them)."""
    hit = np.asarray(hit, dtype=bool)
    if "file" in votes:
        counts = np.bincount(votes["file"][hit], minlength=votes["files"])
        votes[key] = votes.get(key, 0) + counts
    else:
        votes[key] = votes.get(key, 0) + int(hit.sum())


def _swapped_file(swapped: int, candidates: int) -> bool:
    return candidates >= 3 and swapped > 0.5 * candidates


def _comma_file(commas: int, present: int) -> bool:
    return commas > 0.5 * present


def file_rules_fire(votes: dict[str, int]) -> bool:
    """Whether the counts of a file's pieces (``votes`` of :func:`validate_points`) make a rule of
    the whole file fire: then the pieces' checks do not stand and the file is checked whole."""
    return (_swapped_file(votes.get("swapped", 0), votes.get("candidates", 0))
            or (votes.get("commas", 0) > 0 and _comma_file(votes["commas"], votes.get("present", 0))))


def _decimal_commas(raw_x: pd.Series, raw_y: pd.Series, checks: RowChecks, result_flags: list[dict],
                    geographic: bool, source: str, cols: tuple[str, str],
                    votes: dict | None = None) -> tuple[pd.Series, pd.Series]:
    """Coordinates written with a decimal comma ("51,5"): read as decimals when the file writes them
    all that way (a semicolon-separated export), else each such row is rejected as "comma decimal".

    Metres with commas every three digits ("524,279") are thousands separators, not decimals.
    """
    def comma(s: pd.Series) -> pd.Series:
        s = s.astype("string")
        hit = s.str.fullmatch(r"-?\d+,\d+")
        if not geographic:
            hit &= ~s.str.fullmatch(r"-?\d{1,3}(,\d{3})+")
        return hit.fillna(False).astype(bool)

    cx, cy = comma(raw_x), comma(raw_y)
    either = cx | cy
    if votes is not None:
        _vote(votes, "commas", either.to_numpy())
        _vote(votes, "present", (raw_x.notna() & raw_y.notna()).to_numpy())
    if not either.any():
        return raw_x, raw_y
    present = int((raw_x.notna() & raw_y.notna()).sum())
    if votes is None and _comma_file(int(either.sum()), present):
        result_flags.append({"check": "decimal_commas", "severity": "info",
                             "message": f"{source}: columns {cols[0]!r}/{cols[1]!r} use a decimal comma in "
                             f"{int(either.sum())} of {present} rows; read as decimals"})
        fix = lambda s, hit: s.where(~hit, s.astype("string").str.replace(",", ".", regex=False))  # noqa: E731
        return fix(raw_x, cx), fix(raw_y, cy)
    checks.reject(either, "comma decimal", "coordinates written with a decimal comma ("
                  + raw_x.astype("string") + ", " + raw_y.astype("string") + "); expected a decimal point")
    return raw_x, raw_y


def _project(x: np.ndarray, y: np.ndarray, geographic: bool) -> tuple[np.ndarray, np.ndarray]:
    if not geographic:
        return x.copy(), y.copy()
    with np.errstate(invalid="ignore"):
        ex, ny = _TO_BNG.transform(x, y)
    ex, ny = np.asarray(ex, dtype="float64"), np.asarray(ny, dtype="float64")
    bad = ~np.isfinite(ex) | ~np.isfinite(ny)
    ex[bad], ny[bad] = np.nan, np.nan
    return ex, ny


def grid_labels(columns: list[str]) -> dict[str, str]:
    """{"easting": column, "northing": column} of columns labelled so (the first of each)."""
    labelled: dict[str, str] = {}
    for col in columns:
        m = re.search(r"easting|northing", col, re.I)
        if m and m.group(0).lower() not in labelled:
            labelled[m.group(0).lower()] = col
    return labelled


def grid_values(frame: pd.DataFrame, ex: np.ndarray, ny: np.ndarray) -> tuple | None:
    """(columns labelled easting/northing, their values, the points projected from latitude/longitude)
    for :func:`judge_grid_columns`; None when the file has no such pair of columns."""
    labelled = grid_labels(list(frame.columns))
    if len(labelled) < 2:
        return None
    e_vals = to_number(frame[labelled["easting"]]).to_numpy(dtype="float64", na_value=np.nan)
    n_vals = to_number(frame[labelled["northing"]]).to_numpy(dtype="float64", na_value=np.nan)
    return labelled, e_vals, n_vals, ex, ny


def cross_check_grid_columns(frame: pd.DataFrame, ex: np.ndarray, ny: np.ndarray, source: str) -> list[dict]:
    """Compare columns labelled easting/northing with the points projected from latitude/longitude.

    A column's label is the first of "easting"/"northing" in its name. When the values under
    the "northing" label match the eastings (and vice versa) the labels are swapped.
    """
    return judge_grid_columns(grid_values(frame, ex, ny), source)


def judge_grid_columns(values: tuple | None, source: str) -> list[dict]:
    """The flags of :func:`cross_check_grid_columns` from :func:`grid_values` (of a whole file, or its
    pieces' values joined in order)."""
    if values is None:
        return []
    labelled, e_vals, n_vals, ex, ny = values
    ok = np.isfinite(e_vals) & np.isfinite(n_vals) & np.isfinite(ex) & np.isfinite(ny)
    if ok.sum() == 0:
        return []
    straight = np.median(np.hypot(e_vals[ok] - ex[ok], n_vals[ok] - ny[ok]))
    crossed = np.median(np.hypot(n_vals[ok] - ex[ok], e_vals[ok] - ny[ok]))
    if crossed < 100 < straight:
        return [{"check": "swapped_coordinate_labels", "severity": "warning",
                 "message": f"{source}: column {labelled['easting']!r} holds northings and {labelled['northing']!r} "
                 f"holds eastings (labels swapped; median gap {crossed:.0f} m when crossed, {straight:.0f} m as "
                 "labelled); used latitude/longitude"}]
    if straight > 100:
        return [{"check": "grid_columns_disagree", "severity": "warning",
                 "message": f"{source}: easting/northing columns disagree with latitude/longitude by a median "
                 f"{straight:.0f} m; used latitude/longitude"}]
    return []


def to_geoframe(frame: pd.DataFrame, x: np.ndarray, y: np.ndarray) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(x, y), crs=WORKING_CRS)


def pick_coordinates(columns: list[str]) -> tuple[str, str, str] | None:
    """Find (x, y, crs) coordinate columns by their usual public names; None if there are none."""
    lower = {c.lower(): c for c in columns}
    for xs, ys in [
        ("easting", "northing"), ("location_easting", "location_northing"),
        ("asset_xcords", "asset_ycords"), ("x_coordinate", "y_coordinate"),
    ]:
        if xs in lower and ys in lower:
            return lower[xs], lower[ys], WORKING_CRS
    for xs, ys in [("longitude", "latitude"), ("lon", "lat"), ("long", "lat")]:
        if xs in lower and ys in lower:
            return lower[xs], lower[ys], "EPSG:4326"
    return None


def point_table(
    raw, checks: RowChecks, columns: dict[str, pd.Series], area: StudyArea,
    tolerance: float, coords: tuple[str, str, str] | None = None, flags: list[dict] | None = None,
    votes: dict | None = None,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Validate coordinates of ``raw.frame`` and return (accepted GeoDataFrame, rejects).

    ``votes``: ``raw`` is a piece of a file (see :func:`validate_points`); the values the labels
    of easting/northing columns are cross-checked on go in ``votes["grid"]``, to be judged
    over the whole file (:func:`judge_grid_columns`).
    """
    frame = raw.frame
    coords = coords or pick_coordinates([c for c in frame.columns if c != "_row"])
    if coords is None:
        raise DataError(raw.source, "no coordinate columns (Easting/Northing or Longitude/Latitude)")
    flags = flags if flags is not None else []
    x, y = validate_points(
        frame, checks, flags, x_col=coords[0], y_col=coords[1], crs=coords[2],
        area=area, tolerance=tolerance, source=raw.source, votes=votes,
    )
    if coords[2] == "EPSG:4326" and votes is None:
        flags.extend(cross_check_grid_columns(frame, x, y, raw.source))
    elif coords[2] == "EPSG:4326":
        votes["grid"] = grid_values(frame, x, y)
    out = pd.DataFrame({k: v for k, v in columns.items()}, index=frame.index)
    out["_x"], out["_y"] = x, y
    good, rejects = checks.split()
    kept = out.loc[good.index]
    gdf = to_geoframe(kept.drop(columns=["_x", "_y"]).reset_index(drop=True), kept["_x"].to_numpy(), kept["_y"].to_numpy())
    return gdf, rejects
