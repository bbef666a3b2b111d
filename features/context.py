"""What a place is like, apart from its crime: deprivation, people, hubs, street furniture.

Everything geometric (overlaps, distances, points in units) is computed once per
unit set when :class:`Context` is built. The only cutoff-dependent choices are
which year of population, footfall and exclusions to use:

* population: a year-Y estimate describes 30 June Y; the latest year with
  30 June Y before the cutoff is used, else the earliest year available (the
  nearest, since all are then later). Census 2021 counts as year 2021.
* station footfall: an annual total for year Y is known once Y has ended
  (Y < cutoff year); per station the latest such year, else its earliest year.
* school exclusions: academic year "2017/18" is known once it has ended
  (from September 2018); the latest such year, else the earliest available.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from geo.interpolate import extensive, intensive, overlap_matrix

YOUTH_AGES = (10, 24)
FOOTFALL_RADII_M = (250, 500, 1000)
FOOTFALL_DECAY_M = 500.0
"""foot_decay = sum over stations of entries_exits * exp(-d / 500 m)."""
SECONDARY_DECAY_M = 300.0  # young people's journeys to and from school: most within a few hundred metres
SCHOOL_RADII_M = (500, 1000)
EXCLUSION_RADIUS_M = 1000.0
SMALL_UNIT_RADIUS_M = 500.0
"""Point densities of units smaller than a 500 m circle use that circle around the unit point."""
IMD_DOMAIN_MEANINGS = {
    "income": "Income deprivation", "employment": "Employment deprivation",
    "education": "Education, skills and training deprivation", "health": "Health deprivation and disability",
    "crime": "Crime domain", "housing": "Barriers to housing and services",
    "living_env": "Living environment deprivation", "idaci": "Income deprivation affecting children",
    "idaopi": "Income deprivation affecting older people",
}


def open_schools(schools: pd.DataFrame) -> pd.DataFrame:
    """The schools that count as open: every row whose ``status`` does not say "closed".

    A school "proposed to open" or "open, but proposed to close" counts, and so does one
    without a status; the feature matrix and the map's hubs layer both use this rule.
    """
    if "status" not in schools.columns:
        return schools
    closed = schools["status"].astype("string").str.contains("closed", case=False, na=False)
    return schools[~closed.to_numpy()]


@dataclass(frozen=True)
class Spec:
    """One feature column as the data dictionary describes it."""

    name: str
    meaning: str
    source: str
    unit: str
    window: str


def eb_rate(events: np.ndarray, population: np.ndarray, per: float = 1000.0) -> np.ndarray:
    """Global empirical-Bayes smoothed rates (Marshall 1991, method of moments).

    Each raw rate ``r_i = y_i / n_i`` is shrunk toward the overall rate
    ``b = sum(y) / sum(n)`` with weight ``w_i = a / (a + b / n_i)``, where
    ``a = s² - b / n̄`` (floored at 0), ``s² = sum(n_i (r_i - b)²) / sum(n)`` and
    ``n̄`` is the mean population of units with residents. Units with no
    residents get ``b``. Rates are per ``per`` residents.

    Examples
    --------
    Two areas of 100 and 900 residents with 1 and 9 events have the same raw rate,
    so nothing moves: ``eb_rate([1, 9], [100, 900])`` is ``[10., 10.]``.
    """
    y = np.asarray(events, dtype=float)
    n = np.asarray(population, dtype=float)
    has = n > 0
    if not has.any():
        return np.full(len(y), np.nan)
    b = y[has].sum() / n[has].sum()
    r = np.where(has, y / np.where(has, n, 1.0), b)
    s2 = (n[has] * (r[has] - b) ** 2).sum() / n[has].sum()
    a = max(s2 - b / n[has].mean(), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(has, a / (a + b / np.where(has, n, 1.0)), 0.0)
    w = np.nan_to_num(w)  # a = b = 0: no events anywhere, every rate is 0
    return (w * r + (1 - w) * b) * per


def youth_share_counts(bands: pd.DataFrame, lo: int = YOUTH_AGES[0], hi: int = YOUTH_AGES[1]) -> pd.Series:
    """Residents aged ``lo``..``hi`` from age bands, allocating each band uniformly by year of age.

    A band 16-29 (14 years) holds 9 years of 10-24 (16..24), so it contributes 9/14 of its count.
    """
    width = (bands["age_to"] - bands["age_from"] + 1).astype(float)
    overlap = (np.minimum(bands["age_to"], hi) - np.maximum(bands["age_from"], lo) + 1).clip(lower=0)
    return bands["count"].astype(float) * overlap.astype(float) / width


def park_area(units: np.ndarray, parks: np.ndarray) -> np.ndarray:
    """Area of each unit covered by parks (overlapping parks counted once).

    The parks are dissolved into disjoint polygons, and each unit is intersected only with the
    polygons it touches (an STRtree query), not with the dissolved whole: the same areas, to
    rounding (tested against the whole), at a fraction of the time (London's 20,455 cells of
    250 m: 11.7 s against the whole).
    """
    parts = shapely.get_parts(shapely.union_all(shapely.make_valid(parks)))
    parts = parts[shapely.area(parts) > 0]
    if not len(parts) or not len(units):
        return np.zeros(len(units))
    unit, part = shapely.STRtree(parts).query(units, predicate="intersects")
    areas = shapely.area(shapely.intersection(units[unit], parts[part]))
    return np.bincount(unit, weights=areas, minlength=len(units))


class Context:
    """Per-unit context features for one unit set.

    Parameters
    ----------
    store : Store or MemoryStore
    units : geo.units.UnitSet
    """

    def __init__(self, store, units):
        self.store = store
        self.units = units
        self.notes: list[str] = []
        self.specs: list[Spec] = []
        self._static: dict[str, np.ndarray] = {}
        self._overlaps: dict[str, object] = {}
        xy = units.centroids
        self._area_km2 = units.frame["area_m2"].to_numpy() / 1e6
        self._deprivation()
        self._population_setup()
        self._stations_setup(xy)
        self._points_density("bus_stops", "bus_stop_density", "bus stops per km²", "TfL bus stops")
        self._schools_setup(xy)
        self._points_density("street_lights", "light_density", "street lights per km²", "street lighting assets")
        self._parks()

    # ---- helpers -------------------------------------------------------------------------
    def _overlap(self, edition: str):
        """Overlap table between the store's ``units_<edition>`` and our units (cached)."""
        if edition not in self._overlaps:
            src = self.store.units(edition)
            src = src.assign(code=src["code"].astype("string")).reset_index(drop=True)
            A = overlap_matrix(src.geometry, self.units.frame.geometry)
            self._overlaps[edition] = (src, A, shapely.area(shapely.make_valid(src.geometry.to_numpy())))
        return self._overlaps[edition]

    def _points(self, name: str) -> gpd.GeoDataFrame | None:
        if not self.store.has(name):
            return None
        pts = self.store.table(name)
        if not isinstance(pts, gpd.GeoDataFrame):
            return None
        pts = pts[~(pts.geometry.isna() | pts.geometry.is_empty)]
        return pts[pts.geometry.geom_type == "Point"]

    # ---- deprivation ---------------------------------------------------------------------
    def _deprivation(self) -> None:
        if not self.store.has("imd"):
            self.notes.append("no IMD table in the store: deprivation features left out")
            return
        imd = self.store.table("imd")
        imd = imd.assign(lsoa11=imd["lsoa11"].astype("string")).drop_duplicates("lsoa11").set_index("lsoa11")
        cols = [c for c in ("imd_score", "imd_rank", "imd_decile") if c in imd.columns]
        cols += sorted(c for c in imd.columns if c.endswith("_score") and c != "imd_score")
        values = imd[cols].apply(pd.to_numeric, errors="coerce")
        edition = self.units.edition
        ids = self.units.frame["unit_id"]
        if edition == "lsoa2011":
            out = values.reindex(ids).to_numpy()
            how = "direct (LSOA 2011)"
        else:
            out = np.full((len(ids), len(cols)), np.nan)
            how = ""
            if edition == "lsoa2021" and self.store.has("lookup_lsoa11_lsoa21"):
                lk = self.store.table("lookup_lsoa11_lsoa21")
                parents = lk.groupby(lk["lsoa21"].astype("string"))["lsoa11"].agg(lambda s: list(s.astype(str)))
                single = parents[parents.map(len) == 1].map(lambda p: p[0])
                mapped = single.reindex(ids)
                ok = mapped.notna().to_numpy() & mapped.isin(values.index).to_numpy()
                out[ok] = values.reindex(mapped[ok]).to_numpy()
                how = "LSOA 2011->2021 lookup (unchanged and split LSOAs take their parent's values); "
            todo = np.isnan(out).all(axis=1)
            if todo.any():
                if not self.store.has("units_lsoa2011"):
                    self.notes.append("no LSOA 2011 boundaries: deprivation cannot be interpolated")
                else:
                    src, A, src_area = self._overlap("lsoa2011")
                    v = values.reindex(src["code"]).to_numpy()
                    weight, kind = self._lsoa11_density()
                    interp = intensive(v, A, weight)
                    interp = interp.reshape(len(ids), len(cols))
                    out[todo] = interp[todo]
                    how += f"{kind}-weighted interpolation from LSOA 2011"
        self.notes.append(f"deprivation (IMD 2019) carried to {edition} by {how}")
        for k, col in enumerate(cols):
            self._static[col] = out[:, k]
            if col in ("imd_score", "imd_rank", "imd_decile"):
                meaning = {
                    "imd_score": "IMD 2019 score (higher = more deprived)",
                    "imd_rank": "IMD 2019 rank among English LSOAs (1 = most deprived)",
                    "imd_decile": "IMD 2019 decile (1 = most deprived 10%)",
                }[col]
            else:
                dom = col.removesuffix("_score")
                meaning = f"IoD 2019 {IMD_DOMAIN_MEANINGS.get(dom, dom.replace('_', ' '))} score"
            if edition != "lsoa2011":
                meaning += " (interpolated: a weighted mean over overlapping LSOAs)"
            self.specs.append(Spec(col, meaning, "imd (IoD 2019, LSOA 2011)", "score" if col.endswith("score") else col.split("_")[1], "static (2019 release)"))

    def _lsoa11_density(self):
        """Residents per m² of each LSOA 2011 (earliest year), for population weighting; None if absent."""
        if not self.store.has("population"):
            return None, "area"
        pop = self.store.table("population")
        pop = pop[pop["edition"].astype("string") == "lsoa2011"]
        if pop.empty:
            return None, "area"
        pop = pop[pop["year"] == pop["year"].min()]
        tot = pop.groupby(pop["code"].astype("string"))["count"].sum()
        src, _, src_area = self._overlap("lsoa2011")
        dens = tot.reindex(src["code"]).to_numpy(dtype=float) / np.where(src_area > 0, src_area, np.nan)
        if np.isnan(dens).all():
            return None, "area"
        return np.nan_to_num(dens), f"population ({int(pop['year'].min())})"

    # ---- population ----------------------------------------------------------------------
    def _population_setup(self) -> None:
        self._pop_cache: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
        self._pop_years: list[tuple[int, str]] = []
        if not self.store.has("population"):
            self.notes.append("no population table: pop_total, pop_density, share_10_24 and sv_rate_eb left out")
            return
        pop = self.store.table("population")
        pop = pop.assign(code=pop["code"].astype("string"), edition=pop["edition"].astype("string"))
        self._pop = pop
        pairs = pop[["year", "edition"]].drop_duplicates()
        usable = [(int(y), str(e)) for y, e in pairs.itertuples(index=False) if self.store.has(f"units_{e}") or e == self.units.edition]
        if not usable:
            self.notes.append("population editions have no boundaries in the store: population features left out")
            return
        self._pop_years = sorted(usable)
        self.specs += [
            Spec("pop_total", "residents", "population", "persons", "latest year before the cutoff"),
            Spec("pop_density", "residents per km²", "population", "persons/km²", "latest year before the cutoff"),
            Spec("share_10_24", "share of residents aged 10-24 (age bands split uniformly by year of age)", "population", "fraction", "latest year before the cutoff"),
        ]

    def population_year(self, cutoff: pd.Timestamp) -> tuple[int, str] | None:
        """(year, edition) of the population used at ``cutoff`` (see module notes)."""
        if not self._pop_years:
            return None
        known = [ye for ye in self._pop_years if pd.Timestamp(ye[0], 6, 30) < cutoff]
        pick_year = max(y for y, _ in known) if known else min(y for y, _ in self._pop_years)
        eds = [e for y, e in self._pop_years if y == pick_year]
        ed = self.units.edition if self.units.edition in eds else sorted(eds)[0]
        return pick_year, ed

    @property
    def population_years(self) -> list[tuple[int, str]]:
        """Every (year, edition) of residents the store holds, oldest first."""
        return list(self._pop_years)

    def population(self, cutoff: pd.Timestamp, pick: tuple[int, str] | None = None
                   ) -> tuple[np.ndarray, np.ndarray] | None:
        """Residents and residents aged 10-24 per unit at ``cutoff`` (or of the (year, edition)
        ``pick``); None without population data."""
        pick = pick or self.population_year(cutoff)
        if pick is None:
            return None
        if pick not in self._pop_cache:
            year, ed = pick
            rows = self._pop[(self._pop["year"] == year) & (self._pop["edition"] == ed)]
            rows = rows.assign(youth=youth_share_counts(rows))
            per = rows.groupby("code")[["count", "youth"]].sum()
            if ed == self.units.edition:
                ids = self.units.frame["unit_id"]
                total = per["count"].reindex(ids).fillna(0).to_numpy(dtype=float)
                youth = per["youth"].reindex(ids).fillna(0).to_numpy(dtype=float)
            else:
                src, A, src_area = self._overlap(ed)
                vals = per.reindex(src["code"]).fillna(0)
                total = extensive(vals["count"].to_numpy(dtype=float), A, src_area)
                youth = extensive(vals["youth"].to_numpy(dtype=float), A, src_area)
            self._pop_cache[pick] = (total, youth)
        return self._pop_cache[pick]

    # ---- stations / footfall -------------------------------------------------------------
    def _stations_setup(self, xy: np.ndarray) -> None:
        st = self._points("stations")
        self._foot = None
        if st is None or st.empty:
            self.notes.append("no stations in the store: footfall and station distance left out")
            return
        st = st.reset_index(drop=True)
        sxy = np.column_stack([st.geometry.x, st.geometry.y])
        d = np.hypot(xy[:, None, 0] - sxy[None, :, 0], xy[:, None, 1] - sxy[None, :, 1])
        self._static["dist_station_m"] = d.min(axis=1)
        self.specs.append(Spec("dist_station_m", "distance from the unit point to the nearest station", "stations", "m", "static"))
        if not self.store.has("station_footfall"):
            self.notes.append("no station_footfall table: foot_* features left out")
            return
        ff = self.store.table("station_footfall")
        ff = ff.assign(station_key=ff["station_key"].astype("string"))
        ff = ff[ff["entries_exits"].notna()]
        self._foot = (st["station_key"].astype("string").to_numpy(), d, ff, {})
        nomatch = int((~st["station_key"].astype("string").isin(ff["station_key"])).sum())
        if nomatch:
            self.notes.append(f"{nomatch} of {len(st)} stations have no entries/exits figures: they count 0 in foot_*")
        for r in FOOTFALL_RADII_M:
            self.specs.append(Spec(f"foot_{r}", f"station entries+exits per year within {r} m of the unit point", "stations + station_footfall", "entries+exits/year", "latest year ended before the cutoff"))
        self.specs.append(Spec("foot_decay", f"sum of station entries+exits weighted by exp(-distance / {FOOTFALL_DECAY_M:g} m)", "stations + station_footfall", "entries+exits/year", "latest year ended before the cutoff"))

    def footfall(self, cutoff: pd.Timestamp) -> dict[str, np.ndarray]:
        if self._foot is None:
            return {}
        keys, d, ff, cache = self._foot
        known = ff[ff["year"] < cutoff.year]
        latest = known.sort_values("year").groupby("station_key")["entries_exits"].last()
        earliest = ff.sort_values("year").groupby("station_key")["entries_exits"].first()
        per = latest.combine_first(earliest)
        f = per.reindex(keys).fillna(0.0).to_numpy(dtype=float)
        key = tuple(np.round(f, 3))
        if key not in cache:
            out = {f"foot_{r}": (d <= r).astype(float) @ f for r in FOOTFALL_RADII_M}
            out["foot_decay"] = np.exp(-d / FOOTFALL_DECAY_M) @ f
            cache[key] = out
        return cache[key]

    # ---- point densities -----------------------------------------------------------------
    def _points_density(self, table: str, col: str, meaning: str, source: str) -> None:
        pts = self._points(table)
        if pts is None or pts.empty:
            self.notes.append(f"no {table} in the store: {col} left out")
            return
        xy = self.units.centroids
        unit = self.units.assign(pts)
        inside = np.bincount(unit[unit >= 0], minlength=len(self.units)).astype(float)
        pxy = np.column_stack([pts.geometry.x, pts.geometry.y])
        near = np.array([len(v) for v in cKDTree(pxy).query_ball_point(xy, SMALL_UNIT_RADIUS_M)], dtype=float)
        circle_km2 = np.pi * (SMALL_UNIT_RADIUS_M / 1000) ** 2
        small = self._area_km2 < circle_km2
        self._static[col] = np.where(small, near / circle_km2, inside / np.where(small, 1.0, self._area_km2))
        self.specs.append(Spec(col, f"{meaning} (in the unit; units smaller than a {SMALL_UNIT_RADIUS_M:g} m circle use that circle around the unit point)", f"{table} ({source})", "per km²", "static"))

    # ---- schools -------------------------------------------------------------------------
    def _schools_setup(self, xy: np.ndarray) -> None:
        sc = self._points("schools")
        self._excl = None
        if sc is None or sc.empty:
            self.notes.append("no schools in the store: schools_* and dist_school_m left out")
            return
        sc = open_schools(sc).reset_index(drop=True)
        sxy = np.column_stack([sc.geometry.x, sc.geometry.y])
        d = np.hypot(xy[:, None, 0] - sxy[None, :, 0], xy[:, None, 1] - sxy[None, :, 1])
        for r in SCHOOL_RADII_M:
            self._static[f"schools_{r}"] = (d <= r).sum(axis=1).astype(float)
            self.specs.append(Spec(f"schools_{r}", f"open schools within {r} m of the unit point", "schools", "count", "static"))
        self._static["dist_school_m"] = d.min(axis=1)
        self.specs.append(Spec("dist_school_m", "distance from the unit point to the nearest open school", "schools", "m", "static"))
        phase = sc["phase"].astype("string").str.lower() if "phase" in sc.columns else pd.Series(pd.NA, index=sc.index)
        secondary = phase.str.contains("secondary|all-through|all through", regex=True, na=False).to_numpy()
        if secondary.any():
            ds = d[:, secondary]
            self._static["sec_schools_1000"] = (ds <= 1000).sum(axis=1).astype(float)
            self._static["dist_sec_school_m"] = ds.min(axis=1)
            self._static["sec_school_prox"] = np.exp(-ds / SECONDARY_DECAY_M).max(axis=1)
            self.specs += [
                Spec("sec_schools_1000", "open secondary / all-through schools within 1000 m of the unit point", "schools", "count", "static"),
                Spec("dist_sec_school_m", "distance to the nearest open secondary / all-through school", "schools", "m", "static"),
                Spec("sec_school_prox", f"proximity to the nearest secondary school, exp(-d / {SECONDARY_DECAY_M:g} m): 1 at the gate, 0.37 at {SECONDARY_DECAY_M:g} m", "schools", "0..1", "static"),
            ]
        else:
            self.notes.append("no school phase marked secondary: sec_school_* features left out")
        if not self.store.has("school_exclusions"):
            self.notes.append("no school exclusions file (DfE suspensions/permanent exclusions by school): excl_rate left out")
            return
        ex = self.store.table("school_exclusions")
        ex = ex.assign(urn=ex["urn"].astype("string"), year=ex["year"].astype("string"))
        self._excl = (sc["urn"].astype("string").to_numpy(), d <= EXCLUSION_RADIUS_M, ex, {})
        self.specs.append(Spec("excl_rate", f"suspensions + permanent exclusions per 100 pupils at schools within {EXCLUSION_RADIUS_M:g} m (borough rate where none)", "school_exclusions", "per 100 pupils", "latest academic year ended before the cutoff"))

    def exclusions(self, cutoff: pd.Timestamp) -> dict[str, np.ndarray]:
        if self._excl is None:
            return {}
        urns, near, ex, cache = self._excl
        ends = ex["year"].str.slice(0, 4).astype(int) + 1  # "2017/18" ends August 2018
        known = ends.to_numpy() < cutoff.year + (cutoff.month >= 9)
        years = ex.loc[known, "year"] if known.any() else ex.loc[ends == ends.min(), "year"]
        year = str(sorted(years.unique())[-1])
        if year not in cache:
            rows = ex[ex["year"] == year].groupby("urn")[["headcount", "suspensions", "permanent_exclusions"]].sum(min_count=1)
            rows = rows.reindex(urns)
            head = rows["headcount"].fillna(0).to_numpy(dtype=float)
            events = (rows["suspensions"].fillna(0) + rows["permanent_exclusions"].fillna(0)).to_numpy(dtype=float)
            has = head > 0
            borough = 100 * events[has].sum() / head[has].sum() if has.any() else np.nan
            num = near.astype(float) @ np.where(has, events, 0.0)
            den = near.astype(float) @ head
            with np.errstate(invalid="ignore", divide="ignore"):
                cache[year] = {"excl_rate": np.where(den > 0, 100 * num / np.where(den > 0, den, 1), borough)}
        return cache[year]

    # ---- parks ---------------------------------------------------------------------------
    def _parks(self) -> None:
        if not self.store.has("parks"):
            self.notes.append("no parks table: park_share left out")
            return
        parks = self.store.table("parks")
        if not isinstance(parks, gpd.GeoDataFrame):
            self.notes.append("parks table has no geometry: park_share left out")
            return
        geoms = parks.geometry[~(parks.geometry.isna() | parks.geometry.is_empty)]
        polys = geoms[geoms.geom_type.isin(["Polygon", "MultiPolygon"])]
        if len(polys):
            self._static["park_share"] = park_area(self.units.frame.geometry.to_numpy(), polys.to_numpy()) \
                / self.units.frame["area_m2"].to_numpy()
            self.specs.append(Spec("park_share", "share of the unit's area that is park or open space", "parks", "fraction", "static"))
        elif len(geoms):
            pxy = np.column_stack([geoms.x, geoms.y])
            self._static["parks_500"] = np.array([len(v) for v in cKDTree(pxy).query_ball_point(self.units.centroids, 500.0)], dtype=float)
            self.specs.append(Spec("parks_500", "parks and open spaces (points) within 500 m of the unit point", "parks", "count", "static"))
        else:
            self.notes.append("parks have no locations (the source lists addresses only): park_share left out")

    # ---- per cutoff ----------------------------------------------------------------------
    def static(self) -> dict[str, np.ndarray]:
        return self._static
