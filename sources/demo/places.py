"""Places for the demo borough: boundaries, hubs and the tables that describe areas.

Helpers of :func:`sources.demo.borough.generate_demo`; see that module for the whole
generating process. Every function takes the ``numpy.random.Generator`` it may draw
from and returns plain numpy / shapely / pandas objects; nothing here writes files
except the ``write_*`` functions, and nothing is drawn at import time.

All geometry is EPSG:27700 (metres). Codes use ranges that ONS never issued
(``E01900xxx`` LSOAs, ``E02900xxx`` MSOAs, ``E05900xxx`` wards, ``E09900001`` the
borough) so demo output cannot be mistaken for a real place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely
from scipy.special import ndtr
from shapely.geometry import MultiPolygon, Polygon

# --------------------------------------------------------------------------- names


def place_names(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct invented place names ("Ashford", "Thornmead", ...)."""
    first = (
        "Ash Bram Cal Dun Elm Fern Glen Hol Ivy Kes Lark Mar Nor Oak Pen Quen Ros Sel "
        "Thorn Up Wil Yar Bar Cor Dal Har Lin Mor Red Stan Wal Whit"
    ).split()
    second = (
        "ton field ley wood brook bury combe dale ford gate ham hurst mead stead well wick"
    ).split()
    if n > len(first) * len(second):
        raise ValueError(
            f"cannot invent {n} distinct place names (at most {len(first) * len(second)})"
        )
    picks = rng.choice(len(first) * len(second), size=n, replace=False)
    return [first[p // len(second)] + second[p % len(second)] for p in picks]


def street_names(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct invented street names ("Oakfield Road", ...)."""
    kinds = "Road Street Avenue Close Lane Gardens Way Crescent Drive Grove".split()
    bases = place_names(rng, min(n, 512))
    out: list[str] = []
    for i in range(n):
        out.append(f"{bases[i % len(bases)]} {kinds[(i // len(bases) + i) % len(kinds)]}")
    return out


# --------------------------------------------------------------------------- geometry


def as_multi(geom: shapely.Geometry) -> MultiPolygon:
    """The polygonal part of ``geom`` as a MultiPolygon (slivers of lower dimension dropped)."""
    if isinstance(geom, MultiPolygon):
        return geom
    if isinstance(geom, Polygon):
        return MultiPolygon([geom])
    parts = [g for g in getattr(geom, "geoms", []) if isinstance(g, Polygon)]
    for g in getattr(geom, "geoms", []):
        if isinstance(g, MultiPolygon):
            parts.extend(g.geoms)
    return MultiPolygon(parts)


def borough_polygon(
    rng: np.random.Generator, centre: tuple[float, float], size_m: tuple[float, float]
) -> Polygon:
    """An irregular, star-shaped borough about ``size_m`` (width, height) across."""
    theta = np.linspace(0.0, 2 * np.pi, 96, endpoint=False)
    a, b = size_m[0] / 2, size_m[1] / 2
    r = a * b / np.sqrt((b * np.cos(theta)) ** 2 + (a * np.sin(theta)) ** 2)
    wobble = np.zeros_like(theta)
    for k in range(2, 10):  # a few smooth harmonics make a believable outline
        wobble += (
            rng.uniform(0.01, 0.06) / (1 + k / 4) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
        )
    r = r * (1 + wobble)
    xy = np.round(np.c_[centre[0] + r * np.cos(theta), centre[1] + r * np.sin(theta)], 1)
    return shapely.make_valid(Polygon(xy))


def random_points_in(rng: np.random.Generator, polygon: shapely.Geometry, n: int) -> np.ndarray:
    """``n`` uniform random points inside ``polygon`` (rejection sampling), shape (n, 2)."""
    x0, y0, x1, y1 = polygon.bounds
    out = np.empty((0, 2))
    shapely.prepare(polygon)
    while len(out) < n:
        cand = rng.uniform((x0, y0), (x1, y1), size=(max(2 * (n - len(out)), 16), 2))
        out = np.vstack([out, cand[shapely.contains_xy(polygon, cand[:, 0], cand[:, 1])]])
    return out[:n]


def spaced_points(
    rng: np.random.Generator, polygon: shapely.Geometry, n: int, min_dist: float
) -> np.ndarray:
    """``n`` random points in ``polygon`` at least ``min_dist`` apart (relaxed if crowded)."""
    pts: list[np.ndarray] = []
    dist = min_dist
    while len(pts) < n:
        for _ in range(200):
            p = random_points_in(rng, polygon, 1)[0]
            if all(np.hypot(*(p - q)) >= dist for q in pts):
                pts.append(p)
                break
        else:
            dist *= 0.8
    return np.round(np.array(pts), 0)


def lsoa_cells(
    rng: np.random.Generator,
    borough: Polygon,
    n: int,
    lloyd_iterations: int = 2,
    grid_size: float = 0.1,
) -> list[MultiPolygon]:
    """A Voronoi tessellation of ``borough`` into ``n`` cells, ordered north to south.

    Cells are snap-rounded to ``grid_size`` metres so neighbours share exact vertices.
    """
    seeds = random_points_in(rng, borough, n)
    extent = shapely.box(*borough.buffer(2000).bounds)
    for it in range(lloyd_iterations + 1):
        cells = shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=extent, ordered=True)
        cells = shapely.intersection(np.asarray(cells.geoms), borough, grid_size=grid_size)
        if it < lloyd_iterations:  # Lloyd relaxation evens out cell sizes
            seeds = shapely.get_coordinates(shapely.centroid(cells))
    cx, cy = shapely.get_coordinates(shapely.centroid(cells)).T
    order = np.lexsort((cx, -np.floor(cy / 700.0)))  # bands of 700 m, north first
    return [as_multi(cells[i]) for i in order]


def split_in_two(geom: MultiPolygon) -> tuple[MultiPolygon, MultiPolygon]:
    """Cut ``geom`` through its centroid across its longer side.

    Exact overlay (no snap rounding), so the outline shared with neighbours is untouched.
    """
    x0, y0, x1, y1 = geom.bounds
    c = geom.centroid
    if x1 - x0 >= y1 - y0:
        half = shapely.box(x0 - 1, y0 - 1, c.x, y1 + 1)
    else:
        half = shapely.box(x0 - 1, c.y, x1 + 1, y1 + 1)
    a = shapely.intersection(geom, half)
    b = shapely.difference(geom, half)
    return as_multi(a), as_multi(b)


def rook_neighbours(geoms: list[shapely.Geometry], min_shared_m: float = 1.0) -> list[set[int]]:
    """For each polygon, the polygons sharing at least ``min_shared_m`` of boundary."""
    arr = np.asarray(geoms, dtype=object)
    tree = shapely.STRtree(arr)
    left, right = tree.query(arr, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    shared = shapely.length(
        shapely.intersection(shapely.boundary(arr[left]), shapely.boundary(arr[right]))
    )
    nb: list[set[int]] = [set() for _ in geoms]
    for i, j, s in zip(left, right, shared, strict=True):
        if s >= min_shared_m:
            nb[i].add(int(j))
            nb[j].add(int(i))
    return nb


def grow_regions(
    rng: np.random.Generator, centroids: np.ndarray, neighbours: list[set[int]], k: int
) -> np.ndarray:
    """Contiguous regions grown from ``k`` spread-out seeds; returns a label per unit.

    The smallest region (ties: lowest label) repeatedly takes its unassigned
    neighbour nearest its seed, so every region stays contiguous and sizes stay even.
    """
    n = len(centroids)
    seeds = [int(rng.integers(n))]
    for _ in range(1, k):  # farthest-point sampling spreads the seeds
        d = np.min(
            np.hypot(*(centroids[:, None, :] - centroids[seeds][None, :, :]).transpose(2, 0, 1)),
            axis=1,
        )
        seeds.append(int(np.argmax(d)))
    label = np.full(n, -1)
    for r, s in enumerate(seeds):
        label[s] = r
    size = np.ones(k, dtype=int)
    stuck = np.zeros(k, dtype=bool)
    while (label < 0).any():
        open_regions = np.flatnonzero(~stuck)
        if len(open_regions) == 0:  # disconnected leftovers join their nearest labelled unit
            for i in np.flatnonzero(label < 0):
                done = np.flatnonzero(label >= 0)
                label[i] = label[done[np.argmin(np.hypot(*(centroids[done] - centroids[i]).T))]]
            break
        r = open_regions[np.argmin(size[open_regions])]
        members = np.flatnonzero(label == r)
        frontier = sorted({j for m in members for j in neighbours[m] if label[j] < 0})
        if not frontier:
            stuck[r] = True
            continue
        f = np.array(frontier)
        pick = f[np.argmin(np.hypot(*(centroids[f] - centroids[seeds[r]]).T))]
        label[pick] = r
        size[r] += 1
    return label


def locate(x: np.ndarray, y: np.ndarray, polygons: list[shapely.Geometry]) -> np.ndarray:
    """Index of the polygon holding each point (nearest polygon when on no polygon)."""
    arr = np.asarray(polygons, dtype=object)
    tree = shapely.STRtree(arr)
    pts = shapely.points(x, y)
    idx = np.full(len(pts), -1)
    p, g = tree.query(pts, predicate="within")
    order = np.argsort(p, kind="stable")[::-1]  # first match wins after reversal
    idx[p[order]] = g[order]
    missing = np.flatnonzero(idx < 0)
    if len(missing):
        mp, mg = tree.query_nearest(pts[missing], all_matches=False)
        idx[missing[mp]] = mg
    return idx


# --------------------------------------------------------------------------- area tables


def national_rank(score: np.ndarray, mean: float, sd: float, n_areas: int = 32844) -> np.ndarray:
    """Rank (1 = most deprived) a score would get in a national normal-ish distribution.

    Ranks are made strictly increasing with decreasing score within the borough,
    as ranks in the real IoD files are unique.
    """
    rank = np.ceil(ndtr(-(score - mean) / sd) * n_areas).astype(int).clip(1, n_areas)
    order = np.argsort(-score, kind="stable")
    r = rank[order]
    for i in range(1, len(r)):
        r[i] = max(r[i], r[i - 1] + 1)
    r = np.minimum(r, n_areas - (len(r) - 1 - np.arange(len(r))))
    out = np.empty_like(rank)
    out[order] = r
    return out


def decile(rank: np.ndarray, n_areas: int = 32844) -> np.ndarray:
    return np.ceil(rank / (n_areas / 10)).astype(int).clip(1, 10)


@dataclass(frozen=True)
class Domain:
    column: str  # score column name as in the IoD2019 file
    label: str  # stem of the Rank/Decile column names
    loading: float  # change of the score per unit of standardised deprivation
    centre: float  # borough mean score
    noise: float
    national_mean: float
    national_sd: float
    digits: int


def iod_table(
    rng: np.random.Generator,
    codes: list[str],
    names: list[str],
    lad: tuple[str, str],
    imd_score: np.ndarray,
    population: np.ndarray,
) -> pd.DataFrame:
    """An IoD2019-style LSOA table (MHCLG/GLA column names) consistent with ``imd_score``."""
    z = (imd_score - imd_score.mean()) / imd_score.std()
    domains = [
        Domain("Income Score (rate)", "Income", 0.05, 0.11, 0.012, 0.13, 0.08, 3),
        Domain("Employment Score (rate)", "Employment", 0.035, 0.08, 0.01, 0.10, 0.06, 3),
        Domain(
            "Education, Skills and Training Score",
            "Education, Skills and Training",
            7.0,
            14.0,
            2.0,
            21.0,
            16.0,
            3,
        ),
        Domain(
            "Health Deprivation and Disability Score",
            "Health Deprivation and Disability",
            0.45,
            -0.6,
            0.15,
            0.0,
            0.85,
            3,
        ),
        Domain("Crime Score", "Crime", 0.45, 0.1, 0.2, 0.0, 0.8, 3),
        Domain(
            "Barriers to Housing and Services Score",
            "Barriers to Housing and Services",
            6.0,
            30.0,
            3.0,
            22.0,
            10.0,
            3,
        ),
        Domain("Living Environment Score", "Living Environment", 6.0, 28.0, 3.0, 21.0, 14.0, 3),
        Domain(
            "Income Deprivation Affecting Children Index (IDACI) Score (rate)",
            "Income Deprivation Affecting Children Index (IDACI)",
            0.07,
            0.15,
            0.02,
            0.17,
            0.11,
            3,
        ),
        Domain(
            "Income Deprivation Affecting Older People (IDAOPI) Score (rate)",
            "Income Deprivation Affecting Older People (IDAOPI)",
            0.06,
            0.16,
            0.02,
            0.15,
            0.09,
            3,
        ),
    ]
    imd_rank = national_rank(imd_score, 21.7, 14.0)
    cols: dict[str, object] = {
        "LSOA code (2011)": codes,
        "LSOA name (2011)": names,
        "Local Authority District code (2019)": lad[0],
        "Local Authority District name (2019)": lad[1],
        "Index of Multiple Deprivation (IMD) Score": np.round(imd_score, 3),
        "Index of Multiple Deprivation (IMD) Rank (where 1 is most deprived)": imd_rank,
        "Index of Multiple Deprivation (IMD) Decile (where 1 is most deprived 10% of LSOAs)": decile(
            imd_rank
        ),
    }
    for d in domains:
        score = d.centre + d.loading * z + rng.normal(0, d.noise, len(z))
        if "(rate)" in d.column:
            score = score.clip(0.005, 0.9)
        rank = national_rank(score, d.national_mean, d.national_sd)
        cols[d.column] = np.round(score, d.digits)
        cols[f"{d.label} Rank (where 1 is most deprived)"] = rank
        cols[f"{d.label} Decile (where 1 is most deprived 10% of LSOAs)"] = decile(rank)
    cols["Total population: mid 2015 (excluding prisoners)"] = population
    return pd.DataFrame(cols)


def broad_age_table(
    rng: np.random.Generator,
    codes: list[str],
    names: list[str],
    msoa: list[tuple[str, str]],
    lad: tuple[str, str],
    total: np.ndarray,
    youth: np.ndarray,
) -> pd.DataFrame:
    """ONS mid-year estimates in the broad-age layout (Persons/Males/Females x 5 bands).

    ``youth`` (about -2..2) shifts the age mix towards the young where deprivation is high.
    """
    bands = ["0-15", "16-29", "30-44", "45-64", "65+"]
    base = np.array([0.20, 0.18, 0.23, 0.24, 0.15])
    tilt = np.array([0.02, 0.02, 0.0, -0.015, -0.025])
    out: dict[str, object] = {
        "LSOA11CD": codes,
        "LSOA11NM": names,
        "MSOA11CD": [m[0] for m in msoa],
        "MSOA11NM": [m[1] for m in msoa],
        "LAD11CD": lad[0],
        "LAD11NM": lad[1],
    }
    persons = np.zeros((len(codes), 5), dtype=int)
    males = np.zeros_like(persons)
    for i, (n, y) in enumerate(zip(total, youth, strict=True)):
        share = rng.dirichlet(300 * np.clip(base + tilt * y, 0.03, None))
        persons[i] = rng.multinomial(int(n), share)
        males[i] = rng.binomial(persons[i], 0.49)
    females = persons - males
    for label, arr in (("Persons", persons), ("Males", males), ("Females", females)):
        out[f"{label}_All-Ages"] = arr.sum(axis=1)
        for j, b in enumerate(bands):
            out[f"{label}_{b}"] = arr[:, j]
    return pd.DataFrame(out)


def ts007a_table(
    rng: np.random.Generator, codes: list[str], names: list[str], total: np.ndarray
) -> pd.DataFrame:
    """Census 2021 TS007A (age by five-year bands) for LSOA 2021, ONS column names."""
    bands = (
        ["Aged 4 years and under"]
        + [f"Aged {a} to {a + 4} years" for a in range(5, 85, 5)]
        + ["Aged 85 years and over"]
    )
    base = np.array(
        [6.0, 6.2, 6.0, 5.6, 6.3, 7.4, 8.0, 7.8, 7.2, 6.8, 6.4, 5.8, 4.9, 4.1, 3.6, 2.7, 2.0, 2.2]
    )
    counts = np.array(
        [rng.multinomial(int(n), rng.dirichlet(400 * base / base.sum())) for n in total]
    )
    frame = pd.DataFrame(
        {"date": 2021, "LSOA21NM": names, "LSOA21CD": codes, "Total": counts.sum(axis=1)}
    )
    return pd.concat([frame, pd.DataFrame(counts, columns=bands)], axis=1)


def postcode(rng: np.random.Generator) -> str:
    """An invented postcode in the unused ``DB`` area."""
    letters = "ABDEFGHJLNPQRSTUWXYZ"
    return (
        f"DB{rng.integers(1, 20)} {rng.integers(1, 10)}"
        f"{letters[rng.integers(len(letters))]}{letters[rng.integers(len(letters))]}"
    )
