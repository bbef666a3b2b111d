"""The demo borough: a synthetic "Demoborough" written in the real public formats.

:func:`generate_demo` writes a folder that looks like a council analyst's download
folder (ONS boundaries and lookups, police.uk bulk street-level crime and stop and
search, IoD2019, ONS population, TfL stations/footfall/bus stops, DfE schools and
exclusions, street lights, parks) plus ``catalogue.toml`` (what each file is) and
``truth.json`` (the generating process and its planted structure). Everything is
drawn from one ``numpy.random.Generator(seed)``: the same arguments give
byte-identical files on any machine, and re-running into the same folder gives the
same folder. Codes are in ranges ONS never issued (``E01900xxx``, ``E05900xxx``,
``E09900001``), places and streets have invented names, and the borough is an
invented outline about 8 km x 6 km near E 530000, N 190000 (EPSG:27700).

The generating process (tests and backtests use it as ground truth)
-------------------------------------------------------------------
Geography. An irregular borough polygon is cut into ``n_lsoa`` LSOAs (2011) by a
Lloyd-relaxed Voronoi tessellation; ``n_splits`` of them are split in two for the
2021 edition (ONS change indicator ``S``); LSOAs (2021) are grouped into ``n_wards``
contiguous wards by region growing. Deprivation is a smooth latent field (a few
Gaussian "deprived areas") read at each LSOA plus noise: that is the IMD score.
Stations (with annual entries+exits), schools, bus stops, street lights and parks
are placed at random; crimes are snapped, as police.uk does, to a fixed set of
anonymised street points, and carry the 2011 LSOA code of that point.

Serious violence (police.uk "Violence and sexual offences" + "Robbery") is an
inhomogeneous Poisson process on a lattice of ``lattice_m`` (50 m) cells plus
self-exciting near-repeat offspring. For cell ``c`` in month ``t`` the background
intensity (expected events per cell per month) is::

    log lambda(c, t) = intercept
                       + b_dep    * dep(c)       standardised IMD score of the cell's LSOA
                       + b_foot   * foot(c)      log(1 + sum_s F_s/1e6 * exp(-d_s / footfall_decay_m))
                       + b_school * school(c)    max over open secondary schools exp(-d / school_decay_m)
                       + sum_h a_h * exp(-d_h^2 / (2 r_h^2))   persistent planted hot spots
                       + [t >= emerging start] * a_e * exp(-d_e^2 / (2 r_e^2))
                       + log(1 + seasonal_amplitude * cos(2 pi (month - seasonal_peak_month) / 12))

``F_s`` is station ``s``'s mean annualised entries+exits over the written years and
``d`` distances in metres from the cell centre. ``intercept`` is set so that the
persistent part sums to ``sv_background_per_month`` events over the borough. Events
are placed uniformly within their cell. Each event (background or offspring) then
has Poisson(``branching_ratio``) offspring, displaced by an isotropic Gaussian of
``contagion_sigma_m`` (about 300 m at two sigma) and due ``lag`` months later with
probabilities ``contagion_lag_weights`` (lag 1, lag 2); offspring falling outside the
borough or after the last month are dropped. ``burn_in_months`` are simulated before
the first month and discarded so the first months are not short of offspring. An
event is "Robbery" with probability ``sigmoid(logit(robbery_share) +
robbery_foot_coef * (foot - mean foot) / sd foot)``, otherwise "Violence and sexual
offences". The expected total is about ``sv_background_per_month / (1 -
branching_ratio)`` (about 300) a month.

Other police.uk types (ASB, thefts, burglary, ...) are independent inhomogeneous
Poisson processes on the same lattice with ``log lambda = base + sum_k coef_k * x_k``
over the covariates ``dep``, ``foot``, ``school``, ``resid`` (standardised log
population density of the LSOA) and ``hot`` (the persistent hot-spot bumps divided by
their amplitude), each calibrated to its ``per_month`` total (see
:class:`CrimeTypeRate`), with the same seasonality and no contagion. Stop and search
follows ``stop_search`` the same way; a share of records has blank coordinates, and
in one month (``truth.json``: ``stop_search_sparse_month``) nearly all do.

Planted intervention (off unless ``DemoProcess.intervention`` is given; the default
borough is unchanged). From its start month, each serious-violence event whose street
point lies in one of the intervention's LSOAs (2011) is removed with probability
``reduction``; each removed event is, with probability ``displaced_share``, moved to a
street point outside the area but within ``buffer_m`` of it (displacement to the buffer
ring). This is applied to the realised events after contagion, with its own generator
(seeded from ``seed``), so the borough with the intervention has exactly the events of
the one without it except those removed or moved: the planted effect is a rate ratio of
``1 - reduction`` in the area, and ``truth.json`` (``intervention``) holds the monthly
counts in the area and the buffer with and without it.

``truth.json`` records every parameter, the intercept, the hot-spot centres, radii,
amplitudes and the LSOAs they touch, the expected background serious violence per
LSOA (2011) per month, and the realised monthly counts.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from scipy.spatial import cKDTree

from sources.demo import places as dp

SV_TYPES = ("Violence and sexual offences", "Robbery")
"""The police.uk crime types the demo draws as serious violence."""


@dataclass(frozen=True)
class CrimeTypeRate:
    """One police.uk crime type (or stop and search) as a log-linear lattice process.

    Parameters
    ----------
    crime_type : str
        police.uk "Crime type" text (or ``"stop and search"``).
    per_month : float
        Expected borough-wide events a month (before seasonality).
    coefs : dict
        Coefficients on the covariates ``dep``, ``foot``, ``school``, ``resid``, ``hot``.
    """

    crime_type: str
    per_month: float
    coefs: dict[str, float] = field(default_factory=dict)


def default_other_types() -> tuple[CrimeTypeRate, ...]:
    """The non-serious-violence police.uk types and their rates (about 1,450 a month)."""
    return (
        CrimeTypeRate("Anti-social behaviour", 520, {"dep": 0.3, "foot": 0.7, "hot": 0.5}),
        CrimeTypeRate("Other theft", 170, {"foot": 1.0}),
        CrimeTypeRate("Theft from the person", 45, {"foot": 1.5}),
        CrimeTypeRate("Shoplifting", 70, {"foot": 1.4}),
        CrimeTypeRate("Bicycle theft", 25, {"foot": 0.8}),
        CrimeTypeRate("Burglary", 150, {"resid": 0.4, "dep": -0.1}),
        CrimeTypeRate("Vehicle crime", 160, {"resid": 0.3}),
        CrimeTypeRate("Criminal damage and arson", 120, {"dep": 0.4}),
        CrimeTypeRate("Public order", 90, {"dep": 0.3, "foot": 0.6, "hot": 0.4}),
        CrimeTypeRate("Drugs", 55, {"dep": 0.5, "foot": 0.3, "hot": 0.9}),
        CrimeTypeRate("Possession of weapons", 14, {"dep": 0.4, "hot": 0.9}),
        CrimeTypeRate("Other crime", 25, {}),
    )


@dataclass(frozen=True)
class DemoIntervention:
    """A place-based intervention planted in the demo's serious violence (see the module docstring).

    Parameters
    ----------
    area_lsoa11 : tuple of str
        LSOA (2011) codes of the intervention area. Empty: the LSOAs within the radius of
        the first persistent hot spot (a Clear Hold Build footprint).
    start_index : int, optional
        Month index (0 = the first month) from which it acts; None: half way through.
    reduction : float
        Share of the area's serious-violence events removed from the start month (0..1).
    displaced_share : float
        Share of the removed events moved to the buffer ring instead of vanishing (0..1).
    buffer_m : float
        Width of the buffer ring around the area that displaced events move to (metres).
    """

    area_lsoa11: tuple[str, ...] = ()
    start_index: int | None = None
    reduction: float = 0.3
    displaced_share: float = 0.5
    buffer_m: float = 400.0


INTERVENTION_SALT = 18
"""Second seed word of the intervention's own generator: ``default_rng([seed, INTERVENTION_SALT])``."""


@dataclass(frozen=True)
class DemoProcess:
    """Parameters of the demo borough's generating process (see the module docstring).

    The defaults give about 300 serious-violence events and 1,750 rows of all types
    a month in a borough of 120 LSOAs.
    """

    borough_centre: tuple[float, float] = (530000.0, 190000.0)
    borough_size_m: tuple[float, float] = (8000.0, 6000.0)
    n_splits: int = 5
    n_wards: int = 20
    n_stations: int = 7
    n_schools: int = 45
    n_closed_schools: int = 2
    n_bus_stops: int = 300
    n_street_points: int = 3000
    n_street_lights: int = 2500
    n_parks: int = 12
    n_deprived_areas: int = 3
    lattice_m: float = 50.0
    sv_background_per_month: float = 225.0
    b_dep: float = 0.45
    b_foot: float = 0.6
    b_school: float = 0.4
    footfall_decay_m: float = 300.0
    school_decay_m: float = 250.0
    hotspots_near_stations: int = 2
    hotspots_near_deprivation: int = 2
    hotspot_radius_m: float = 200.0
    hotspot_amplitude: float = 2.0
    hotspot_min_separation_m: float = 1200.0
    emerging_amplitude: float = 2.3
    emerging_radius_m: float = 200.0
    emerging_start_index: int | None = None  # None: two thirds of the way through
    branching_ratio: float = 0.25
    contagion_sigma_m: float = 150.0
    contagion_lag_weights: tuple[float, ...] = (0.7, 0.3)
    burn_in_months: int = 3
    seasonal_amplitude: float = 0.12
    seasonal_peak_month: int = 7
    robbery_share: float = 0.09
    robbery_foot_coef: float = 0.8
    other_types: tuple[CrimeTypeRate, ...] = field(default_factory=default_other_types)
    stop_search: CrimeTypeRate = field(
        default_factory=lambda: CrimeTypeRate(
            "stop and search", 160, {"dep": 0.5, "foot": 0.5, "hot": 1.0}
        )
    )
    stop_search_blank_share: float = 0.08
    stop_search_sparse_share: float = 0.9
    intervention: DemoIntervention | None = None


@dataclass
class _Places:
    """Everything placed in the borough before any crime is drawn."""

    borough: shapely.Geometry
    lsoa11: gpd.GeoDataFrame
    lsoa21: gpd.GeoDataFrame
    lookup11_21: pd.DataFrame
    wards: gpd.GeoDataFrame
    lookup21_ward: pd.DataFrame
    imd: pd.DataFrame
    mye: pd.DataFrame
    ts007a: pd.DataFrame
    stations: pd.DataFrame
    footfall: pd.DataFrame
    station_weight: np.ndarray  # mean annual entries+exits / 1e6, per station row
    schools: pd.DataFrame
    exclusions: pd.DataFrame
    bus_stops: pd.DataFrame
    lights: pd.DataFrame
    parks: gpd.GeoDataFrame
    street_xy: np.ndarray
    street_location: list[str]
    street_lsoa: np.ndarray  # index into lsoa11
    dep_z: np.ndarray  # per LSOA 2011
    resid_z: np.ndarray  # per LSOA 2011
    split_codes: list[str]


# --------------------------------------------------------------------------- public


def generate_demo(
    out_dir: str | Path,
    seed: int = 7,
    months: int = 36,
    start: str = "2016-01",
    n_lsoa: int = 120,
    *,
    process: DemoProcess | None = None,
) -> Path:
    """Write the synthetic demo borough to ``out_dir`` in the real public formats.

    Parameters
    ----------
    out_dir : path
        Folder to write (created if needed). Files the generator owns are replaced;
        other files are left alone.
    seed : int
        Seed of the single ``numpy.random.Generator`` everything is drawn from.
    months : int
        Number of monthly police.uk files, starting at ``start``.
    start : str
        First month, ``"YYYY-MM"``.
    n_lsoa : int
        Number of LSOAs (2011 edition) in the borough.
    process : DemoProcess, optional
        Parameters of the generating process; defaults to ``DemoProcess()``.

    Returns
    -------
    Path
        ``out_dir``, holding ``catalogue.toml`` and ``truth.json``.

    Examples
    --------
    >>> root = generate_demo("out/demo-data", seed=7)  # doctest: +SKIP
    >>> sorted(p.name for p in root.iterdir())  # doctest: +SKIP
    ['boundaries', 'catalogue.toml', 'crime', 'deprivation', ...]
    """
    proc = process if process is not None else DemoProcess()
    _check_arguments(seed, months, start, n_lsoa, proc)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    month_labels = [_month_label(start, i) for i in range(months)]
    years = sorted({int(m[:4]) for m in month_labels})

    places = _build_places(rng, n_lsoa, years, proc)
    lattice = _Lattice.build(places, proc)
    hotspots, emerging = _plant_hotspots(rng, places, months, month_labels, proc)
    crimes, sv_truth = _simulate_crime(rng, places, lattice, hotspots, emerging, month_labels, proc)
    stops, sparse_month = _simulate_stop_search(rng, places, lattice, hotspots, month_labels, proc)
    planted = None
    if proc.intervention is not None:
        crimes, planted = _plant_intervention(
            np.random.default_rng([seed, INTERVENTION_SALT]), places, crimes, hotspots, month_labels,
            proc.intervention,
        )
        sv_truth["monthly_counts"] = [
            int(((crimes["month"] == m) & crimes["crime_type"].isin(sv_truth["types"])).sum())
            for m in month_labels
        ]

    catalogue = _write_sources(out, places, month_labels, start)
    _write_crime(rng, out, seed, places, crimes, stops, month_labels)
    truth = {
        "generator": "sources.demo.borough.generate_demo",
        "seed": seed,
        "start": start,
        "months": months,
        "month_labels": month_labels,
        "n_lsoa": n_lsoa,
        "crs": "EPSG:27700",
        "borough": {
            "NAME": "Demoborough",
            "GSS_CODE": "E09900001",
            "area_m2": round(places.borough.area, 1),
        },
        "process": _process_truth(proc),
        "serious_violence": sv_truth,
        "hotspots": hotspots + [emerging],
        "hot_lsoa11": sorted({h["lsoa11cd"] for h in hotspots}),
        "emerging_lsoa11": emerging["lsoa11cd"],
        "stations": [
            {
                "station": s,
                "x": float(x),
                "y": float(y),
                "mean_annual_entries_exits": round(float(w) * 1e6, 1),
            }
            for s, x, y, w in zip(
                places.stations["Station"],
                places.stations["EASTING"],
                places.stations["NORTHING"],
                places.station_weight,
                strict=True,
            )
        ],
        "split_lsoa11": places.split_codes,
        "closed_school_urns": [
            int(u)
            for u, s in zip(
                places.schools["URN"], places.schools["EstablishmentStatus (name)"], strict=True
            )
            if s == "Closed"
        ],
        "stop_search_sparse_month": sparse_month,
        "monthly_rows": {
            "street": [int((crimes["month"] == m).sum()) for m in month_labels],
            "stop_and_search": [int((stops["month"] == m).sum()) for m in month_labels],
        },
    }
    if planted is not None:
        truth["intervention"] = planted
    (out / "truth.json").write_text(
        json.dumps(truth, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    (out / "catalogue.toml").write_text(
        _catalogue_toml(catalogue, seed, start, months), encoding="utf-8"
    )
    return out


# --------------------------------------------------------------------------- checks and months


def _check_arguments(seed, months, start, n_lsoa, proc: DemoProcess) -> None:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    if not isinstance(months, (int, np.integer)) or months < 1:
        raise ValueError(f"months must be a positive integer, got {months!r}")
    if not isinstance(start, str) or not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", start):
        raise ValueError(f"start must be a month 'YYYY-MM', got {start!r}")
    if not isinstance(n_lsoa, (int, np.integer)) or not 30 <= n_lsoa <= 999 - 2 * proc.n_splits:
        raise ValueError(
            f"n_lsoa must be an integer from 30 to {999 - 2 * proc.n_splits} "
            f"(codes E01900001..E01900999 include the split LSOAs), got {n_lsoa!r}"
        )
    if proc.n_wards > n_lsoa:
        raise ValueError(f"n_wards={proc.n_wards} exceeds n_lsoa={n_lsoa}")
    if not 0 <= proc.branching_ratio < 1:
        raise ValueError(f"branching_ratio must be in [0, 1), got {proc.branching_ratio!r}")
    if abs(sum(proc.contagion_lag_weights) - 1) > 1e-9:
        raise ValueError(f"contagion_lag_weights must sum to 1, got {proc.contagion_lag_weights!r}")
    iv = proc.intervention
    if iv is not None:
        for name in ("reduction", "displaced_share"):
            value = getattr(iv, name)
            if not 0 <= value <= 1:
                raise ValueError(f"intervention.{name} must be in [0, 1], got {value!r}")
        if not iv.buffer_m > 0:
            raise ValueError(f"intervention.buffer_m must be > 0 metres, got {iv.buffer_m!r}")
        if iv.start_index is not None and not 1 <= iv.start_index < months:
            raise ValueError(
                f"intervention.start_index must be a month index from 1 to {months - 1}, got {iv.start_index!r}"
            )


def _process_truth(proc: DemoProcess) -> dict:
    """The process parameters for ``truth.json``.

    Without an intervention the key is left out, so the default borough's ``truth.json`` is
    byte-for-byte what it was before interventions could be planted.
    """
    out = asdict(proc)
    if proc.intervention is None:
        out.pop("intervention")
    return out


def _month_label(start: str, i: int) -> str:
    y, m = int(start[:4]), int(start[5:7])
    k = m - 1 + i
    return f"{y + k // 12:04d}-{k % 12 + 1:02d}"


# --------------------------------------------------------------------------- places


def _build_places(rng, n_lsoa: int, years: list[int], proc: DemoProcess) -> _Places:
    borough = dp.borough_polygon(rng, proc.borough_centre, proc.borough_size_m)
    cells = dp.lsoa_cells(rng, borough, n_lsoa)
    borough = shapely.union_all(cells, grid_size=0.1)  # the exact union of its LSOAs
    lad = ("E09900001", "Demoborough")

    codes = [f"E01900{i + 1:03d}" for i in range(n_lsoa)]
    msoa_no = [i // 5 + 1 for i in range(n_lsoa)]
    names = [f"Demoborough {m:03d}{'ABCDE'[i % 5]}" for i, m in enumerate(msoa_no)]
    msoa = [(f"E02900{m:03d}", f"Demoborough {m:03d}") for m in msoa_no]
    rep = shapely.get_coordinates(shapely.point_on_surface(np.asarray(cells, dtype=object)))
    area = shapely.area(np.asarray(cells, dtype=object))

    # deprivation: a few smooth "deprived areas" read at each LSOA, plus noise
    centres = dp.random_points_in(rng, borough.buffer(-800), proc.n_deprived_areas)
    latent = np.zeros(n_lsoa)
    for c in centres:
        latent += np.exp(-np.sum((rep - c) ** 2, axis=1) / (2 * 1300.0**2))
    imd_score = np.clip(7 + 30 * latent + rng.normal(0, 3.5, n_lsoa), 2.0, None)
    dep_z = (imd_score - imd_score.mean()) / imd_score.std()

    pop2011 = np.clip(np.round(rng.normal(1550, 180, n_lsoa)), 1000, 2500).astype(int)
    pop2015 = np.round(pop2011 * rng.normal(1.03, 0.02, n_lsoa)).astype(int)
    pop2019 = np.round(pop2011 * rng.normal(1.06, 0.03, n_lsoa)).astype(int)
    resid = np.log(pop2019 / area)
    resid_z = (resid - resid.mean()) / resid.std()

    lsoa11 = gpd.GeoDataFrame(
        {
            "LSOA11CD": codes,
            "LSOA11NM": names,
            "LAD11CD": lad[0],
            "LAD11NM": lad[1],
            "USUALRES": pop2011,
        },
        geometry=cells,
        crs="EPSG:27700",
    )

    # LSOA 2021: the 2011 set with the fastest-growing few split in two
    growth = rng.normal(1.08, 0.03, n_lsoa)
    split_idx = sorted(int(i) for i in rng.choice(n_lsoa, size=proc.n_splits, replace=False))
    growth[split_idx] *= 1.5
    rows21, lookup_rows, geoms21, pop21 = [], [], [], []
    next_code = n_lsoa + 1
    used_letters: dict[int, int] = {m: 5 for m in set(msoa_no)}
    split_set = set(split_idx)
    for i in range(n_lsoa):
        if i in split_set:
            parts = dp.split_in_two(cells[i])
            for part in parts:
                letter = "ABCDEFGHIJ"[used_letters[msoa_no[i]]]
                used_letters[msoa_no[i]] += 1
                code21, name21 = f"E01900{next_code:03d}", f"Demoborough {msoa_no[i]:03d}{letter}"
                next_code += 1
                rows21.append((code21, name21))
                geoms21.append(part)
                pop21.append(pop2011[i] * growth[i] * part.area / cells[i].area)
                lookup_rows.append((codes[i], names[i], code21, name21, "S"))
        else:
            rows21.append((codes[i], names[i]))
            geoms21.append(cells[i])
            pop21.append(pop2011[i] * growth[i])
            lookup_rows.append((codes[i], names[i], codes[i], names[i], "U"))
    lsoa21 = gpd.GeoDataFrame(
        {"LSOA21CD": [r[0] for r in rows21], "LSOA21NM": [r[1] for r in rows21]},
        geometry=geoms21,
        crs="EPSG:27700",
    )
    lookup11_21 = pd.DataFrame(
        lookup_rows, columns=["LSOA11CD", "LSOA11NM", "LSOA21CD", "LSOA21NM", "CHGIND"]
    )

    # wards 2022: contiguous groups of LSOAs (2021)
    cent21 = shapely.get_coordinates(shapely.point_on_surface(np.asarray(geoms21, dtype=object)))
    label = dp.grow_regions(rng, cent21, dp.rook_neighbours(geoms21), proc.n_wards)
    # number wards north to south like the LSOAs
    wc = np.array([cent21[label == r].mean(axis=0) for r in range(proc.n_wards)])
    ward_order = np.lexsort((wc[:, 0], -np.floor(wc[:, 1] / 1500.0)))
    rank_of = np.empty(proc.n_wards, dtype=int)
    rank_of[ward_order] = np.arange(proc.n_wards)
    ward_no = rank_of[label]
    ward_names = dp.place_names(rng, proc.n_wards)
    ward_codes = [f"E05900{i + 1:03d}" for i in range(proc.n_wards)]
    wards = gpd.GeoDataFrame(
        {"WD22CD": ward_codes, "WD22NM": ward_names},
        geometry=[
            dp.as_multi(shapely.union_all(np.asarray(geoms21, dtype=object)[ward_no == w]))
            for w in range(proc.n_wards)
        ],
        crs="EPSG:27700",
    )
    lookup21_ward = pd.DataFrame(
        {
            "LSOA21CD": lsoa21["LSOA21CD"],
            "LSOA21NM": lsoa21["LSOA21NM"],
            "WD22CD": [ward_codes[w] for w in ward_no],
            "WD22NM": [ward_names[w] for w in ward_no],
            "LTLA22CD": lad[0],
            "LTLA22NM": lad[1],
        }
    )

    imd = dp.iod_table(rng, codes, names, lad, imd_score, pop2015)
    mye = dp.broad_age_table(rng, codes, names, msoa, lad, pop2019, dep_z)
    ts007a = dp.ts007a_table(
        rng, list(lsoa21["LSOA21CD"]), list(lsoa21["LSOA21NM"]), np.round(pop21).astype(int)
    )

    inner = borough.buffer(-300)
    stations, footfall, station_weight = _stations(rng, inner, years, proc)
    schools, exclusions = _schools(rng, borough, cells, dep_z, years, proc)

    # street points: where police.uk would snap a crime to
    street_xy = np.round(dp.random_points_in(rng, borough.buffer(-15), proc.n_street_points), 0)
    n_streets = max(proc.n_street_points // 8, 1)
    street_centres = dp.random_points_in(rng, borough, n_streets)
    street_of_point = cKDTree(street_centres).query(street_xy)[1]
    street_nm = dp.street_names(rng, n_streets)
    places_of_interest = [
        "Parking Area",
        "Supermarket",
        "Petrol Station",
        "Shopping Area",
        "Sports/Recreation Area",
        "Nightclub",
        "Further/Higher Educational Building",
    ]
    poi = rng.random(len(street_xy)) < 0.05
    poi_pick = rng.integers(len(places_of_interest), size=len(street_xy))
    street_location = [
        "On or near " + (places_of_interest[k] if p else street_nm[s])
        for s, p, k in zip(street_of_point, poi, poi_pick, strict=True)
    ]
    street_lsoa = dp.locate(street_xy[:, 0], street_xy[:, 1], cells)

    bus_stops = _bus_stops(rng, street_xy, [street_nm[s] for s in street_of_point], proc)
    lights = _street_lights(rng, borough, street_xy, proc)
    parks = _parks(rng, borough, proc)

    return _Places(
        borough=borough,
        lsoa11=lsoa11,
        lsoa21=lsoa21,
        lookup11_21=lookup11_21,
        wards=wards,
        lookup21_ward=lookup21_ward,
        imd=imd,
        mye=mye,
        ts007a=ts007a,
        stations=stations,
        footfall=footfall,
        station_weight=station_weight,
        schools=schools,
        exclusions=exclusions,
        bus_stops=bus_stops,
        lights=lights,
        parks=parks,
        street_xy=street_xy,
        street_location=street_location,
        street_lsoa=street_lsoa,
        dep_z=dep_z,
        resid_z=resid_z,
        split_codes=[codes[i] for i in split_idx],
    )


def _stations(rng, inner, years: list[int], proc: DemoProcess):
    xy = dp.spaced_points(rng, inner, proc.n_stations, 1000.0)
    names = dp.place_names(rng, proc.n_stations)
    suffix = ["", " Central", " Park", " Broadway", "", " Town", ""]
    station = [f"{n}{suffix[i % len(suffix)]}" for i, n in enumerate(names)]
    lines = ["Northern", "Jubilee", "Piccadilly", "Metropolitan", "Overground"]
    line = [lines[int(k)] for k in rng.integers(len(lines), size=proc.n_stations)]
    stations = pd.DataFrame(
        {
            "FID": np.arange(1, proc.n_stations + 1),
            "OBJECTID": 900 + np.arange(1, proc.n_stations + 1) * 3,
            "Station": station,
            "EASTING": xy[:, 0].astype(int),
            "NORTHING": xy[:, 1].astype(int),
            "LINES": line,
            "NETWORK": [
                "London Overground" if ln == "Overground" else "London Underground" for ln in line
            ],
            "Zone": rng.integers(3, 6, size=proc.n_stations),
        }
    )
    level = np.exp(rng.normal(15.2, 0.6, proc.n_stations))  # about 4 million a year
    rows, per_station = [], np.zeros(proc.n_stations)
    trend = np.ones(proc.n_stations)
    for y in years:
        trend = trend * rng.normal(1.01, 0.04, proc.n_stations)
        for s in range(proc.n_stations):
            v = round(float(level[s] * trend[s]), 6)
            per_station[s] += v
            rows.append(
                (
                    y,
                    "LO" if line[s] == "Overground" else "LU",
                    9000 + s + 1,
                    station[s].replace(" ", "")[:3].upper() + "u",
                    station[s],
                    "Station entry / exit",
                    "Gateline" if s % 2 else "Relate",
                    v,
                )
            )
    footfall = pd.DataFrame(
        rows,
        columns=[
            "year",
            "mode",
            "nlc",
            "asc",
            "station",
            "coverage",
            "source",
            "annualised_entries_exits",
        ],
    )
    return stations, footfall, per_station / len(years) / 1e6


def _schools(rng, borough, cells, dep_z, years: list[int], proc: DemoProcess):
    n = proc.n_schools
    xy = np.round(dp.random_points_in(rng, borough.buffer(-50), n), 0)
    phase = np.where(np.arange(n) % 6 == 5, "Secondary", "Primary").astype(object)
    phase[np.arange(n) % 15 == 14] = "All-through"
    names = dp.place_names(rng, n)
    kinds = ["Community school", "Academy converter", "Voluntary aided school", "Free schools"]
    type_ = [kinds[int(k)] for k in rng.integers(len(kinds), size=n)]
    est = [
        f"{nm} {'Primary School' if p == 'Primary' else 'Academy' if t.startswith('Academy') else 'High School' if p == 'Secondary' else 'School'}"
        for nm, p, t in zip(names, phase, type_, strict=True)
    ]
    status = np.array(["Open"] * n, dtype=object)
    status[rng.choice(n, size=proc.n_closed_schools, replace=False)] = "Closed"
    schools = pd.DataFrame(
        {
            "URN": 900001 + np.arange(n) * 7,
            "EstablishmentName": est,
            "TypeOfEstablishment (name)": type_,
            "PhaseOfEducation (name)": phase,
            "EstablishmentStatus (name)": status,
            "Easting": xy[:, 0].astype(int),
            "Northing": xy[:, 1].astype(int),
            "Postcode": [dp.postcode(rng) for _ in range(n)],
        }
    )
    lsoa = dp.locate(xy[:, 0], xy[:, 1], cells)
    rows = []
    for y in years[:1] + [years[0] + 1, years[0] + 2]:
        period = f"{y}{(y + 1) % 100:02d}"
        for i in np.flatnonzero(status == "Open"):
            big = phase[i] != "Primary"
            head = int(rng.integers(800, 1600) if big else rng.integers(200, 600))
            scale = math.exp(0.4 * dep_z[lsoa[i]])
            perm = int(rng.poisson(head * (0.0015 if big else 0.0002) * scale))
            susp = int(rng.poisson(head * (0.06 if big else 0.01) * scale))
            rows.append(
                (
                    period,
                    "Academic year",
                    "School",
                    int(schools["URN"][i]),
                    est[i],
                    head,
                    perm,
                    round(100 * perm / head, 2),
                    susp,
                    round(100 * susp / head, 2),
                )
            )
    exclusions = pd.DataFrame(
        rows,
        columns=[
            "time_period",
            "time_identifier",
            "geographic_level",
            "school_urn",
            "school_name",
            "headcount",
            "perm_excl",
            "perm_excl_rate",
            "susp",
            "susp_rate",
        ],
    )
    return schools, exclusions


def _bus_stops(rng, street_xy, street_of_point_names, proc: DemoProcess) -> pd.DataFrame:
    n = min(proc.n_bus_stops, len(street_xy))
    pick = np.sort(rng.choice(len(street_xy), size=n, replace=False))
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    return pd.DataFrame(
        {
            "Stop_Code_LBSL": [str(90000 + 11 * i) for i in range(n)],
            "Bus_Stop_Code": [int(v) for v in 70000 + rng.choice(20000, size=n, replace=False)],
            "Naptan_Atco": [
                f"49099{i:05d}{letters[int(k)]}"
                for i, k in enumerate(rng.integers(len(letters), size=n))
            ],
            "Stop_Name": [street_of_point_names[p].upper() for p in pick],
            "Location_Easting": street_xy[pick, 0].astype(int),
            "Location_Northing": street_xy[pick, 1].astype(int),
            "Heading": rng.integers(0, 360, size=n),
            "Stop_Area": [f"D{int(v):03d}" for v in rng.integers(1, 200, size=n)],
            "Virtual_Bus_Stop": 0,
        }
    )


def _street_lights(rng, borough, street_xy, proc: DemoProcess) -> pd.DataFrame:
    pick = rng.integers(len(street_xy), size=proc.n_street_lights)
    xy = np.round(street_xy[pick] + rng.normal(0, 10, (len(pick), 2)), 0)
    outside = ~shapely.contains_xy(borough, xy[:, 0], xy[:, 1])
    xy[outside] = street_xy[pick[outside]]
    return pd.DataFrame(
        {
            "Asset_ID": np.arange(1, len(xy) + 1),
            "Asset_XCords": xy[:, 0].astype(int),
            "Asset_YCords": xy[:, 1].astype(int),
        }
    )


def _parks(rng, borough, proc: DemoProcess) -> gpd.GeoDataFrame:
    functions = [
        "Public Park Or Garden",
        "Playing Field",
        "Play Space",
        "Allotments Or Community Growing Spaces",
        "Cemetery",
    ]
    names = dp.place_names(rng, proc.n_parks)
    kinds = {
        "Public Park Or Garden": "Park",
        "Playing Field": "Playing Fields",
        "Play Space": "Play Area",
        "Allotments Or Community Growing Spaces": "Allotments",
        "Cemetery": "Cemetery",
    }
    taken = shapely.Polygon()
    rows, geoms = [], []
    centres = dp.random_points_in(rng, borough.buffer(-200), proc.n_parks)
    for i, c in enumerate(centres):
        func = functions[0] if i % 2 == 0 else functions[int(rng.integers(1, len(functions)))]
        size = rng.uniform(60, 260) if func != "Play Space" else rng.uniform(20, 40)
        blob = shapely.convex_hull(shapely.multipoints(c + rng.normal(0, size, (7, 2))))
        geom = shapely.difference(
            shapely.intersection(blob.buffer(size / 3), borough), taken, grid_size=0.1
        )
        if geom.is_empty:
            continue
        # Overlays can leave line slivers (a GeometryCollection); later overlays refuse
        # mixed dimensions, so keep only the polygonal part of what is taken.
        taken = dp.as_multi(shapely.union(taken, geom, grid_size=0.1))
        rows.append((f"DEMOGS{i + 1:04d}", f"{names[i]} {kinds[func]}", func))
        geoms.append(dp.as_multi(geom))
    return gpd.GeoDataFrame(
        pd.DataFrame(rows, columns=["id", "name", "function"]), geometry=geoms, crs="EPSG:27700"
    )


# --------------------------------------------------------------------------- lattice and hot spots


@dataclass
class _Lattice:
    xy: np.ndarray  # cell centres, (n, 2)
    half: float
    lsoa: np.ndarray  # LSOA 2011 index per cell
    cov: dict[str, np.ndarray]  # dep, foot, school, resid per cell
    foot_mean: float
    foot_sd: float

    @classmethod
    def build(cls, places: _Places, proc: DemoProcess) -> _Lattice:
        x0, y0, x1, y1 = places.borough.bounds
        h = proc.lattice_m / 2
        gx, gy = np.meshgrid(
            np.arange(x0 + h, x1, proc.lattice_m), np.arange(y0 + h, y1, proc.lattice_m)
        )
        xy = np.c_[gx.ravel(), gy.ravel()]
        xy = xy[shapely.contains_xy(places.borough, xy[:, 0], xy[:, 1])]
        lsoa = dp.locate(xy[:, 0], xy[:, 1], list(places.lsoa11.geometry))
        foot = footfall_field(xy, places, proc)
        open_sec = places.schools[
            (places.schools["EstablishmentStatus (name)"] == "Open")
            & (places.schools["PhaseOfEducation (name)"] != "Primary")
        ]
        sxy = open_sec[["Easting", "Northing"]].to_numpy(dtype=float)
        d = np.min(
            np.hypot(xy[:, None, 0] - sxy[None, :, 0], xy[:, None, 1] - sxy[None, :, 1]), axis=1
        )
        cov = {
            "dep": places.dep_z[lsoa],
            "foot": foot,
            "school": np.exp(-d / proc.school_decay_m),
            "resid": places.resid_z[lsoa],
        }
        return cls(xy, h, lsoa, cov, float(foot.mean()), float(foot.std()))


def footfall_field(xy: np.ndarray, places: _Places, proc: DemoProcess) -> np.ndarray:
    """``log(1 + sum_s F_s/1e6 * exp(-d_s / footfall_decay_m))`` at points ``xy``."""
    sxy = places.stations[["EASTING", "NORTHING"]].to_numpy(dtype=float)
    d = np.hypot(xy[:, None, 0] - sxy[None, :, 0], xy[:, None, 1] - sxy[None, :, 1])
    return np.log1p(
        (places.station_weight[None, :] * np.exp(-d / proc.footfall_decay_m)).sum(axis=1)
    )


def _bump(xy: np.ndarray, h: dict) -> np.ndarray:
    d2 = (xy[:, 0] - h["x"]) ** 2 + (xy[:, 1] - h["y"]) ** 2
    return h["amplitude"] * np.exp(-d2 / (2 * h["radius_m"] ** 2))


def _plant_hotspots(rng, places: _Places, months: int, month_labels: list[str], proc: DemoProcess):
    lsoa_geoms = list(places.lsoa11.geometry)
    rep = shapely.get_coordinates(shapely.point_on_surface(np.asarray(lsoa_geoms, dtype=object)))
    imd = places.imd["Index of Multiple Deprivation (IMD) Score"].to_numpy()
    centres: list[tuple[np.ndarray, str]] = []
    order = np.argsort(-places.station_weight, kind="stable")
    sxy = places.stations[["EASTING", "NORTHING"]].to_numpy(dtype=float)
    inner = places.borough.buffer(-100)
    for s in order[: proc.hotspots_near_stations]:
        for _ in range(100):
            ang, dist = rng.uniform(0, 2 * np.pi), rng.uniform(60, 150)
            c = sxy[s] + dist * np.array([math.cos(ang), math.sin(ang)])
            if inner.contains(shapely.Point(c)):
                break
        centres.append((np.round(c, 0), f"station {places.stations['Station'][s]}"))
    for i in np.argsort(-imd, kind="stable"):
        if (
            sum(1 for _, why in centres if why.startswith("deprived"))
            >= proc.hotspots_near_deprivation
        ):
            break
        if all(np.hypot(*(rep[i] - c)) >= proc.hotspot_min_separation_m for c, _ in centres):
            centres.append((np.round(rep[i], 0), f"deprived LSOA {places.lsoa11['LSOA11CD'][i]}"))

    def describe(k, c, why, kind, amplitude, radius, start):
        disk = shapely.Point(c).buffer(radius)
        within = [
            cd
            for cd, g in zip(places.lsoa11["LSOA11CD"], lsoa_geoms, strict=True)
            if g.intersects(disk)
        ]
        holder = places.lsoa11["LSOA11CD"][
            int(dp.locate(np.array([c[0]]), np.array([c[1]]), lsoa_geoms)[0])
        ]
        return {
            "id": k,
            "kind": kind,
            "near": why,
            "x": float(c[0]),
            "y": float(c[1]),
            "radius_m": radius,
            "amplitude": amplitude,
            "start_month": start,
            "lsoa11cd": holder,
            "lsoa11_within_radius": within,
        }

    hotspots = [
        describe(k, c, why, "persistent", proc.hotspot_amplitude, proc.hotspot_radius_m, None)
        for k, (c, why) in enumerate(centres)
    ]
    # emerging: a fairly deprived place away from stations and the persistent spots
    start_idx = (
        proc.emerging_start_index if proc.emerging_start_index is not None else (2 * months) // 3
    )
    start_idx = min(max(start_idx, 0), months - 1)
    far = [c for c, _ in centres] + list(sxy)
    candidates = [
        i
        for i in rng.permutation(len(rep))
        if imd[i] >= np.median(imd) and all(np.hypot(*(rep[i] - c)) >= 1500 for c in far)
    ]
    if not candidates:
        candidates = [int(np.argmax([min(np.hypot(*(r - c)) for c in far) for r in rep]))]
    e = candidates[0]
    emerging = describe(
        len(hotspots),
        np.round(rep[e], 0),
        f"LSOA {places.lsoa11['LSOA11CD'][e]}",
        "emerging",
        proc.emerging_amplitude,
        proc.emerging_radius_m,
        month_labels[start_idx],
    )
    emerging["start_index"] = start_idx
    return hotspots, emerging


# --------------------------------------------------------------------------- crime


def _season(label: str, proc: DemoProcess) -> float:
    m = int(label[5:7])
    return 1 + proc.seasonal_amplitude * math.cos(2 * math.pi * (m - proc.seasonal_peak_month) / 12)


def _lattice_events(rng, lattice: _Lattice, loglam: np.ndarray) -> np.ndarray:
    counts = rng.poisson(np.exp(loglam))
    idx = np.repeat(np.arange(len(counts)), counts)
    return lattice.xy[idx] + rng.uniform(-lattice.half, lattice.half, (len(idx), 2))


def _simulate_crime(
    rng, places, lattice: _Lattice, hotspots, emerging, month_labels, proc: DemoProcess
):
    hot = sum(_bump(lattice.xy, h) for h in hotspots) if hotspots else np.zeros(len(lattice.xy))
    linear = (
        proc.b_dep * lattice.cov["dep"]
        + proc.b_foot * lattice.cov["foot"]
        + proc.b_school * lattice.cov["school"]
        + hot
    )
    intercept = math.log(proc.sv_background_per_month / np.exp(linear).sum())
    emerging_bump = _bump(lattice.xy, emerging)
    start_e = emerging["start_index"]
    lags = np.arange(1, len(proc.contagion_lag_weights) + 1)
    n_months = len(month_labels)
    covs = {**lattice.cov, "hot": hot / proc.hotspot_amplitude if proc.hotspot_amplitude else hot}
    pending: dict[int, list[np.ndarray]] = {}
    frames, sv_counts, sv_offspring = [], [], []
    for t in range(-proc.burn_in_months, n_months):
        label = _month_label(month_labels[0], t)
        season = _season(label, proc)
        loglam = intercept + linear + math.log(season) + (emerging_bump if t >= start_e else 0.0)
        background = _lattice_events(rng, lattice, loglam)
        kids = pending.pop(t, [])
        xy = np.vstack([background, *kids]) if kids else background
        n_kids = len(xy) - len(background)
        # near-repeat offspring of every event this month
        k = rng.poisson(proc.branching_ratio, len(xy))
        child = np.repeat(xy, k, axis=0) + rng.normal(0, proc.contagion_sigma_m, (int(k.sum()), 2))
        lag = rng.choice(lags, size=len(child), p=list(proc.contagion_lag_weights))
        keep = shapely.contains_xy(places.borough, child[:, 0], child[:, 1]) & (t + lag < n_months)
        for L in lags:
            sel = child[keep & (lag == L)]
            if len(sel):
                pending.setdefault(t + int(L), []).append(sel)
        if t < 0:
            continue
        foot = footfall_field(xy, places, proc)
        z = (foot - lattice.foot_mean) / lattice.foot_sd
        logit = math.log(proc.robbery_share / (1 - proc.robbery_share)) + proc.robbery_foot_coef * z
        robbery = rng.random(len(xy)) < 1 / (1 + np.exp(-logit))
        types = np.where(robbery, SV_TYPES[1], SV_TYPES[0])
        frames.append((label, types, xy))
        sv_counts.append(len(xy))
        sv_offspring.append(n_kids)

        for ct in proc.other_types:
            frames.append((label, ct.crime_type, _type_events(rng, lattice, covs, ct, season)))

    crimes = _events_frame(frames)
    sv_lsoa = np.bincount(
        lattice.lsoa, weights=np.exp(intercept + linear), minlength=len(places.lsoa11)
    )
    truth = {
        "types": list(SV_TYPES),
        "intercept": intercept,
        "intercept_unit": f"log expected events per {proc.lattice_m:g} m cell per month",
        "coefficients": {"b_dep": proc.b_dep, "b_foot": proc.b_foot, "b_school": proc.b_school},
        "covariates": {
            "dep": "standardised (z over LSOAs 2011) IMD 2019 score of the cell's LSOA",
            "foot": f"log(1 + sum_s F_s/1e6 * exp(-d_s/{proc.footfall_decay_m:g})), F_s mean annualised entries+exits",
            "school": f"max over open secondary/all-through schools of exp(-d/{proc.school_decay_m:g})",
        },
        "monthly_counts": sv_counts,
        "monthly_offspring": sv_offspring,
        "expected_background_per_lsoa11_per_month": {
            code: round(float(v), 4)
            for code, v in zip(places.lsoa11["LSOA11CD"], sv_lsoa, strict=True)
        },
    }
    return crimes, truth


def _events_frame(chunks: list[tuple[str, object, np.ndarray]]) -> pd.DataFrame:
    """One frame (month, crime_type, x, y) from (month, type or types, xy) chunks."""
    sizes = [len(xy) for _, _, xy in chunks]
    xy = np.vstack([c[2] for c in chunks]) if chunks else np.empty((0, 2))
    types = (
        np.concatenate(
            [
                np.asarray(t, dtype=object)
                if not isinstance(t, str)
                else np.full(n, t, dtype=object)
                for (_, t, _), n in zip(chunks, sizes, strict=True)
            ]
        )
        if chunks
        else np.empty(0, dtype=object)
    )
    month = np.repeat(np.array([m for m, _, _ in chunks], dtype=object), sizes)
    return pd.DataFrame({"month": month, "crime_type": types, "x": xy[:, 0], "y": xy[:, 1]})


def _type_events(rng, lattice: _Lattice, covs, ct: CrimeTypeRate, season: float) -> np.ndarray:
    lin = np.zeros(len(lattice.xy))
    for name, coef in ct.coefs.items():
        if name not in covs:
            raise ValueError(
                f"{ct.crime_type}: unknown covariate {name!r}; expected one of {sorted(covs)}"
            )
        lin = lin + coef * covs[name]
    base = math.log(ct.per_month / np.exp(lin).sum())
    return _lattice_events(rng, lattice, base + lin + math.log(season))


def _simulate_stop_search(
    rng, places, lattice: _Lattice, hotspots, month_labels, proc: DemoProcess
):
    hot = sum(_bump(lattice.xy, h) for h in hotspots) / proc.hotspot_amplitude
    covs = {**lattice.cov, "hot": hot}
    sparse_idx = len(month_labels) // 2
    chunks, blank = [], []
    for t, label in enumerate(month_labels):
        xy = _type_events(rng, lattice, covs, proc.stop_search, _season(label, proc))
        share = proc.stop_search_sparse_share if t == sparse_idx else proc.stop_search_blank_share
        blank.append(rng.random(len(xy)) < share)
        chunks.append((label, proc.stop_search.crime_type, xy))
    stops = _events_frame(chunks)
    stops["blank"] = np.concatenate(blank)
    return stops, month_labels[sparse_idx]


# --------------------------------------------------------------------------- intervention


def _plant_intervention(rng, places: _Places, crimes: pd.DataFrame, hotspots, month_labels,
                        iv: DemoIntervention) -> tuple[pd.DataFrame, dict]:
    """Thin the area's serious violence from the start month and move a share to the buffer ring.

    Membership is decided on the street point an event snaps to (as police.uk places it), so
    the written files carry exactly the planted change. Returns the new crimes and the truth.
    """
    codes = places.lsoa11["LSOA11CD"].to_numpy(dtype=object)
    area = tuple(iv.area_lsoa11) or tuple(sorted(hotspots[0]["lsoa11_within_radius"]))
    unknown = sorted(set(area) - set(codes))
    if unknown:
        raise ValueError(f"intervention.area_lsoa11: {unknown} are not LSOAs of the demo borough")
    months = len(month_labels)
    start = iv.start_index if iv.start_index is not None else months // 2
    in_area_lsoa = np.isin(codes, list(area))
    area_geom = shapely.union_all(places.lsoa11.geometry[in_area_lsoa].to_numpy())
    street_in_area = in_area_lsoa[places.street_lsoa]
    near = shapely.dwithin(area_geom, shapely.points(places.street_xy), iv.buffer_m)
    ring = np.flatnonzero(near & ~street_in_area)
    if len(ring) == 0:
        raise ValueError(f"intervention: no street point within {iv.buffer_m:g} m of the area {list(area)}")

    sv = crimes["crime_type"].isin(SV_TYPES).to_numpy()
    snap = cKDTree(places.street_xy).query(crimes[["x", "y"]].to_numpy())[1]
    t = crimes["month"].map({m: i for i, m in enumerate(month_labels)}).to_numpy(dtype=int)
    in_area = sv & street_in_area[snap]
    in_ring = sv & np.isin(snap, ring)
    after = in_area & (t >= start)
    removed = after & (rng.random(len(crimes)) < iv.reduction)
    moved = removed & (rng.random(len(crimes)) < iv.displaced_share)
    out = crimes.copy()
    target = places.street_xy[ring[rng.integers(len(ring), size=int(moved.sum()))]]
    out.loc[moved, ["x", "y"]] = target
    out = out[~(removed & ~moved)].reset_index(drop=True)

    def per_month(mask) -> list[int]:
        return np.bincount(t[mask], minlength=months).astype(int).tolist()

    truth = {
        **asdict(iv),
        "area_lsoa11": list(area),
        "start_index": start,
        "start_month": month_labels[start],
        "rate_ratio": 1.0 - iv.reduction,
        "ring_street_points": int(len(ring)),
        "ring_lsoa11": sorted({str(codes[places.street_lsoa[i]]) for i in ring}),
        "area_counts_without": per_month(in_area),
        "area_counts": per_month(in_area & ~removed),
        "removed": per_month(removed),
        "displaced": per_month(moved),
        "ring_counts_without": per_month(in_ring),
        "ring_counts": [a + b for a, b in zip(per_month(in_ring), per_month(moved), strict=True)],
    }
    return out, truth


# --------------------------------------------------------------------------- writing


@contextmanager
def _fixed_gpkg_timestamp(stamp: str) -> Iterator[None]:
    """GDAL stamps GeoPackages with the current time; fix it so files are reproducible."""
    import pyogrio

    old = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": stamp})
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": old})


def _write_gpkg(frame: gpd.GeoDataFrame, path: Path, layer: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # a rewritten GeoPackage keeps old pages: start clean
    frame.to_file(path, layer=layer, driver="GPKG", engine="pyogrio")


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, lineterminator="\n")


def _write_sources(
    out: Path, places: _Places, month_labels: list[str], start: str,
    boroughs: gpd.GeoDataFrame | None = None,
) -> list[dict]:
    """Write every non-crime source; return the catalogue entries (crime ones included).

    ``boroughs`` (columns ``NAME``, ``GSS_CODE``, geometry) replaces the single
    Demoborough row of ``boundaries/borough.gpkg`` (the scaled generator's many boroughs).
    """
    cat: list[dict] = []
    if boroughs is None:
        boroughs = gpd.GeoDataFrame(
            {"NAME": ["Demoborough"], "GSS_CODE": ["E09900001"]},
            geometry=[dp.as_multi(places.borough)],
            crs="EPSG:27700",
        )

    def add(name, kind, path, fmt):
        cat.append({"name": name, "kind": kind, "path": path, "format": fmt})

    with _fixed_gpkg_timestamp(f"{start}-01T00:00:00.000Z"):
        for frame, rel, layer, name, kind in [
            (
                places.lsoa11,
                "boundaries/lsoa2011.gpkg",
                "lsoa2011",
                "lsoa2011",
                "boundary_lsoa2011",
            ),
            (
                places.lsoa21,
                "boundaries/lsoa2021.gpkg",
                "lsoa2021",
                "lsoa2021",
                "boundary_lsoa2021",
            ),
            (
                places.wards,
                "boundaries/wards2022.gpkg",
                "wards2022",
                "wards2022",
                "boundary_ward2022",
            ),
            (
                boroughs,
                "boundaries/borough.gpkg",
                "borough",
                "borough",
                "boundary_borough",
            ),
            (places.parks, "other/parks.gpkg", "parks", "parks", "parks"),
        ]:
            _write_gpkg(frame, out / rel, layer)
            add(name, kind, rel, "gpkg")
    for frame, rel, name, kind in [
        (
            places.lookup11_21,
            "boundaries/lookup_lsoa11_lsoa21.csv",
            "lookup_lsoa11_lsoa21",
            "lookup_lsoa11_lsoa21",
        ),
        (
            places.lookup21_ward,
            "boundaries/lookup_lsoa21_ward22.csv",
            "lookup_lsoa21_ward22",
            "lookup_lsoa21_ward22",
        ),
        (places.imd, "deprivation/imd2019_lsoa11.csv", "imd2019", "imd"),
        (places.mye, "population/mye2019_lsoa11.csv", "population_mye2019", "population_mye"),
        (
            places.ts007a,
            "population/census2021_ts007a_lsoa21.csv",
            "census2021_ts007a",
            "population_census_ts007a",
        ),
        (places.stations, "transport/stations.csv", "stations", "stations"),
        (
            places.footfall,
            "transport/station_entries_exits.csv",
            "station_entries_exits",
            "station_footfall",
        ),
        (places.bus_stops, "transport/bus_stops.csv", "bus_stops", "bus_stops"),
        (places.schools, "schools/schools.csv", "schools", "schools_gias"),
        (places.exclusions, "schools/exclusions.csv", "school_exclusions", "school_exclusions"),
        (places.lights, "other/street_lighting.csv", "street_lighting", "street_lighting"),
    ]:
        _write_csv(frame, out / rel)
        add(name, kind, rel, "csv")
    add("policeuk_street", "policeuk_street", "crime", "folder")
    add("policeuk_stop_search", "policeuk_stop_search", "crime", "folder")
    return cat


def _write_crime(
    rng, out: Path, seed, places: _Places, crimes, stops, month_labels,
    force: str = "Demo Constabulary", clean: bool = True,
) -> None:
    """Write the monthly police.uk files ``crime/YYYY-MM/YYYY-MM-<force slug>-*.csv``.

    ``force`` names the police force (its slug names the files); ``clean`` first
    removes this generator's monthly files of an earlier run. The scaled generator
    (:mod:`sources.demo.scale`) writes one force per borough with ``clean=False``.
    """
    folder = out / "crime"
    slug = re.sub(r"[^a-z0-9]+", "-", force.lower()).strip("-")
    if clean and folder.is_dir():  # drop our own files from an earlier run (a different month range)
        for p in sorted(folder.glob("????-??/????-??-demo-constabulary-*.csv")):
            p.unlink()
        for d in sorted(folder.glob("????-??")):
            if d.is_dir() and not any(d.iterdir()):
                shutil.rmtree(d)
    to_wgs = Transformer.from_crs("EPSG:27700", "EPSG:4326", always_xy=True)
    lon, lat = to_wgs.transform(places.street_xy[:, 0], places.street_xy[:, 1])
    lon_s = np.array([f"{v:.6f}" for v in lon], dtype=object)
    lat_s = np.array([f"{v:.6f}" for v in lat], dtype=object)
    tree = cKDTree(places.street_xy)
    codes = places.lsoa11["LSOA11CD"].to_numpy(dtype=object)
    names = places.lsoa11["LSOA11NM"].to_numpy(dtype=object)
    location = np.array(places.street_location, dtype=object)
    outcomes = [
        "Investigation complete; no suspect identified",
        "Unable to prosecute suspect",
        "Status update unavailable",
        "Awaiting court outcome",
        "Offender given a caution",
        "Local resolution",
        "Court result unavailable",
        "Further investigation is not in the public interest",
    ]
    out_p = np.array([0.36, 0.30, 0.1, 0.06, 0.04, 0.05, 0.05, 0.04])
    for t, label in enumerate(month_labels):
        m = crimes[crimes["month"] == label]
        m = m.iloc[rng.permutation(len(m))]
        snap = tree.query(np.c_[m["x"].to_numpy(), m["y"].to_numpy()])[1]
        ctype = m["crime_type"].to_numpy(dtype=object)
        asb = ctype == "Anti-social behaviour"
        ids = np.array(
            [
                "" if a else hashlib.sha256(f"demo|{seed}|{label}|{i}|{c}|{s}".encode()).hexdigest()
                for i, (a, c, s) in enumerate(zip(asb, ctype, snap, strict=True))
            ],
            dtype=object,
        )
        recent = len(month_labels) - t <= 2
        oc = np.array(outcomes, dtype=object)[rng.choice(len(outcomes), size=len(m), p=out_p)]
        if recent:
            oc[rng.random(len(m)) < 0.6] = "Under investigation"
        oc[asb] = ""
        lsoa = places.street_lsoa[snap]
        frame = pd.DataFrame(
            {
                "Crime ID": ids,
                "Month": label,
                "Reported by": force,
                "Falls within": force,
                "Longitude": lon_s[snap],
                "Latitude": lat_s[snap],
                "Location": location[snap],
                "LSOA code": codes[lsoa],
                "LSOA name": names[lsoa],
                "Crime type": ctype,
                "Last outcome category": oc,
                "Context": "",
            }
        )
        _write_csv(frame, folder / label / f"{label}-{slug}-street.csv")

        s = stops[stops["month"] == label]
        _write_csv(
            _stop_search_frame(rng, s, label, tree, lon_s, lat_s),
            folder / label / f"{label}-{slug}-stop-and-search.csv",
        )


def _stop_search_frame(rng, s: pd.DataFrame, label: str, tree, lon_s, lat_s) -> pd.DataFrame:
    n = len(s)
    snap = (
        tree.query(np.c_[s["x"].to_numpy(), s["y"].to_numpy()])[1] if n else np.array([], dtype=int)
    )
    blank = s["blank"].to_numpy(dtype=bool)
    y, mo = int(label[:4]), int(label[5:7])
    days = (pd.Timestamp(year=y, month=mo, day=1) + pd.offsets.MonthEnd(0)).day
    when = np.sort(rng.integers(0, days * 24 * 60, size=n))
    dates = [
        f"{label}-{w // 1440 + 1:02d}T{(w % 1440) // 60:02d}:{(w % 60) // 5 * 5:02d}:00+00:00"
        for w in when
    ]
    legislation = [
        ("Misuse of Drugs Act 1971 (section 23)", "Controlled drugs", 0.6),
        ("Police and Criminal Evidence Act 1984 (section 1)", "Offensive weapons", 0.15),
        ("Police and Criminal Evidence Act 1984 (section 1)", "Stolen goods", 0.12),
        (
            "Police and Criminal Evidence Act 1984 (section 1)",
            "Articles for use in criminal damage",
            0.08,
        ),
        ("Criminal Justice and Public Order Act 1994 (section 60)", "Offensive weapons", 0.05),
    ]
    leg = rng.choice(len(legislation), size=n, p=[p for *_, p in legislation])
    ethnic = [
        ("White - English/Welsh/Scottish/Northern Irish/British", "White"),
        ("White - Any other White background", "White"),
        (
            "Black/African/Caribbean/Black British - Any other Black/African/Caribbean background",
            "Black",
        ),
        ("Asian/Asian British - Any other Asian background", "Asian"),
        ("Mixed/Multiple ethnic groups - Any other Mixed/Multiple ethnic background", "Other"),
        ("Other ethnic group - Not stated", "Other"),
    ]
    eth = rng.choice(len(ethnic), size=n, p=[0.3, 0.15, 0.25, 0.15, 0.05, 0.1])
    outcome = np.array(
        [
            "A no further action disposal",
            "Arrest",
            "Community resolution",
            "Penalty Notice for Disorder",
            "Khat or Cannabis warning",
            "Summons / charged by post",
        ],
        dtype=object,
    )[rng.choice(6, size=n, p=[0.7, 0.14, 0.08, 0.02, 0.04, 0.02])]
    linked = np.where(
        outcome == "A no further action disposal",
        "",
        np.where(rng.random(n) < 0.7, "True", "False"),
    )
    return pd.DataFrame(
        {
            "Type": np.array(
                ["Person search", "Person and Vehicle search", "Vehicle search"], dtype=object
            )[rng.choice(3, size=n, p=[0.8, 0.15, 0.05])],
            "Date": dates,
            "Part of a policing operation": "",
            "Policing operation": "",
            "Latitude": np.where(blank, "", lat_s[snap]),
            "Longitude": np.where(blank, "", lon_s[snap]),
            "Gender": np.array(["Male", "Female", "Other"], dtype=object)[
                rng.choice(3, size=n, p=[0.88, 0.11, 0.01])
            ],
            "Age range": np.array(["10-17", "18-24", "25-34", "over 34"], dtype=object)[
                rng.choice(4, size=n, p=[0.2, 0.38, 0.24, 0.18])
            ],
            "Self-defined ethnicity": [ethnic[e][0] for e in eth],
            "Officer-defined ethnicity": [ethnic[e][1] for e in eth],
            "Legislation": [legislation[k][0] for k in leg],
            "Object of search": [legislation[k][1] for k in leg],
            "Outcome": outcome,
            "Outcome linked to object of search": linked,
            "Removal of more than just outer clothing": np.where(
                rng.random(n) < 0.03, "True", "False"
            ),
        }
    )


def _catalogue_toml(entries: list[dict], seed: int, start: str, months: int) -> str:
    def q(s: str) -> str:
        return json.dumps(s)  # a JSON string is a valid TOML basic string

    lines = [
        "# The demo borough's sources. Written by sources.demo.borough.generate_demo; do not edit.",
        "[catalogue]",
        f"name = {q('Demoborough (synthetic)')}",
        f"generator = {q('sources.demo.borough.generate_demo')}",
        f"seed = {seed}",
        f"start = {q(start)}",
        f"months = {months}",
        'crs = "EPSG:27700"',
        "",
    ]
    for e in entries:
        lines += [
            "[[source]]",
            f"name = {q(e['name'])}",
            f"kind = {q(e['kind'])}",
            f"path = {q(e['path'])}",
            f"format = {q(e['format'])}",
            "",
        ]
    return "\n".join(lines)
