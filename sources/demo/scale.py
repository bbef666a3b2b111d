"""London- and national-scale synthetic inputs: many demo boroughs side by side.

:func:`generate_scaled` lays ``boroughs`` copies of the demo borough's generating
process (:mod:`sources.demo.borough`, one independent draw each) on a grid and writes them
as one data folder in the same public formats: one boundary file per edition with
every borough's areas, one IoD/population/stations/schools/... table, and police.uk
monthly files with one "force" per borough (``YYYY-MM/YYYY-MM-<force>-street.csv``,
as the national bulk download has one file per force and month). Nothing is copied
from :mod:`sources.demo.borough`; its functions draw each borough.

Sizes. A demo borough has 120 LSOAs (2011) and about 1,750 police.uk rows a month
(21,000 a year), so ``boroughs=32`` is London-sized (3,840 LSOAs, about 670,000 rows a
year; the real London has 4,835 LSOAs and about 1M rows) and England and Wales
(35,000 LSOAs, 6M rows a year) would be about 290 boroughs. Codes are in ONS ranges
never issued: borough ``b`` (0-based) has LSOAs ``E01{900+b}xxx``, wards
``E05{900+b}xxx``, MSOAs ``E02{900+b}xxx`` and borough code ``E09{900+b}001``, so at
most 100 boroughs fit (:data:`MAX_BOROUGHS`); a national-sized run uses a slice.

Determinism. Borough 0 is drawn from ``numpy.random.default_rng(seed)`` at the demo
borough's place, so its areas, hubs and crimes are exactly those of
``generate_demo(seed=seed, months=12 * years)``; borough ``b > 0`` is drawn from
``default_rng([seed, b])``. The same arguments give byte-identical files.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from sources.demo import borough as demo
from sources.demo import places as dp

MAX_BOROUGHS = 100
"""Borough blocks E0x900..E0x999: codes stay in ranges ONS never issued."""
GRID_SPACING_M = (9800.0, 7400.0)
"""Distance between borough centres; a demo borough is at most about 9.6 km x 7.2 km."""
_PLACE_FRAMES = (
    "lsoa11", "lsoa21", "lookup11_21", "wards", "lookup21_ward", "imd", "mye", "ts007a",
    "stations", "footfall", "schools", "exclusions", "bus_stops", "lights", "parks",
)
_CODE = re.compile(r"\b(E0[1259])900(\d{3})\b")


def borough_name(block: int) -> str:
    """``"Demoborough"`` for block 0, ``"Demoborough 02"``... for the others."""
    return "Demoborough" if block == 0 else f"Demoborough {block + 1:02d}"


def force_name(block: int) -> str:
    """The police force whose monthly files hold borough ``block``'s crimes."""
    return "Demo Constabulary" if block == 0 else f"Demo Constabulary {block + 1:02d}"


def borough_centre(block: int, boroughs: int, origin=(530000.0, 190000.0)) -> tuple[float, float]:
    """Centre of borough ``block`` on a near-square grid of ``boroughs`` (block 0 at ``origin``)."""
    cols = math.ceil(math.sqrt(boroughs))
    row, col = divmod(block, cols)
    return (origin[0] + col * GRID_SPACING_M[0], origin[1] + row * GRID_SPACING_M[1])


def relabel_places(places, block: int):
    """Give borough ``block``'s places codes, names and keys of their own (block 0 unchanged).

    GSS codes ``E0x900nnn`` become ``E0x{900+block}nnn``, "Demoborough" its own name,
    station names get the borough number (station keys are names), and school URNs,
    bus stop codes, street light and park ids move to a block of their own.
    """
    if block == 0:
        return places
    name = borough_name(block)
    tag = f"{block + 1:02d}"
    code = rf"\g<1>{900 + block}\g<2>"

    def text(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        for col in frame.columns:
            if col == "geometry" or not (frame[col].dtype == object or pd.api.types.is_string_dtype(frame[col])):
                continue
            s = frame[col].astype(object)
            frame[col] = s.map(
                lambda v: _CODE.sub(code, v).replace("Demoborough", name) if isinstance(v, str) else v
            ).astype(frame[col].dtype)
        return frame

    new = {f: text(getattr(places, f)) for f in _PLACE_FRAMES}
    new["stations"]["Station"] = new["stations"]["Station"] + f" {tag}"
    new["footfall"]["station"] = new["footfall"]["station"] + f" {tag}"
    new["schools"]["URN"] = new["schools"]["URN"] + 1000 * block
    new["exclusions"]["school_urn"] = new["exclusions"]["school_urn"] + 1000 * block
    new["bus_stops"]["Stop_Code_LBSL"] = (new["bus_stops"]["Stop_Code_LBSL"].astype(int) + 4000 * block).astype(str)
    new["lights"]["Asset_ID"] = new["lights"]["Asset_ID"] + 10000 * block
    new["parks"]["id"] = new["parks"]["id"].str.replace("DEMOGS", f"DEMOGS{tag}-", regex=False)
    split = [_CODE.sub(code, c) for c in places.split_codes]
    return dataclasses.replace(places, **new, split_codes=split)


def generate_scaled(
    out_dir: str | Path,
    boroughs: int = 32,
    years: int = 3,
    seed: int = 7,
    *,
    start: str = "2016-01",
    n_lsoa: int = 120,
    process: demo.DemoProcess | None = None,
    progress=None,
) -> Path:
    """Write ``boroughs`` synthetic boroughs x ``years`` of crime as one data folder.

    Parameters
    ----------
    out_dir : path
        Folder to write (created; keep it outside the repository, e.g. under /tmp).
    boroughs : int
        Number of boroughs, 1..100. 32 is London-sized.
    years : int
        Years of monthly police.uk files from ``start``.
    seed : int
        Seed of borough 0; borough ``b`` uses ``default_rng([seed, b])``.
    start : str
        First month ``"YYYY-MM"``.
    n_lsoa : int
        LSOAs (2011) per borough.
    process : sources.demo.borough.DemoProcess, optional
        The generating process of every borough (its ``borough_centre`` is replaced
        by each borough's place on the grid).
    progress : callable, optional
        Called with a line of text per borough.

    Returns
    -------
    Path
        ``out_dir``, holding ``catalogue.toml`` and ``truth.json`` like the demo.

    Examples
    --------
    >>> generate_scaled("/tmp/london", boroughs=32, years=3)  # doctest: +SKIP
    """
    if not isinstance(boroughs, (int, np.integer)) or not 1 <= boroughs <= MAX_BOROUGHS:
        raise ValueError(f"boroughs must be an integer from 1 to {MAX_BOROUGHS}, got {boroughs!r}")
    if not isinstance(years, (int, np.integer)) or years < 1:
        raise ValueError(f"years must be a positive integer, got {years!r}")
    proc0 = process if process is not None else demo.DemoProcess()
    months = 12 * int(years)
    demo._check_arguments(seed, months, start, n_lsoa, proc0)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    folder = out / "crime"
    if folder.is_dir():  # our monthly files of an earlier run (other sizes leave other forces)
        for p in sorted(folder.glob("????-??/????-??-demo-constabulary*.csv")):
            p.unlink()
    labels = [demo._month_label(start, i) for i in range(months)]
    year_list = sorted({int(m[:4]) for m in labels})

    frames: dict[str, list] = {f: [] for f in _PLACE_FRAMES}
    outlines, summaries = [], []
    for b in range(int(boroughs)):
        rng = np.random.default_rng(seed if b == 0 else [seed, b])
        proc = dataclasses.replace(proc0, borough_centre=borough_centre(b, boroughs, proc0.borough_centre))
        places = relabel_places(demo._build_places(rng, n_lsoa, year_list, proc), b)
        lattice = demo._Lattice.build(places, proc)
        hotspots, emerging = demo._plant_hotspots(rng, places, months, labels, proc)
        crimes, sv_truth = demo._simulate_crime(rng, places, lattice, hotspots, emerging, labels, proc)
        stops, _ = demo._simulate_stop_search(rng, places, lattice, hotspots, labels, proc)
        demo._write_crime(rng, out, seed if b == 0 else f"{seed}/{b}", places, crimes, stops, labels,
                          force=force_name(b), clean=False)
        for f in _PLACE_FRAMES:
            frames[f].append(getattr(places, f))
        gss = str(places.lsoa11["LAD11CD"].iloc[0])
        outlines.append((borough_name(b), gss, dp.as_multi(places.borough)))
        summaries.append({
            "block": b, "name": borough_name(b), "gss_code": gss, "force": force_name(b),
            "centre": list(proc.borough_centre),
            "hot_lsoa11": sorted({h["lsoa11cd"] for h in hotspots}),
            "emerging_lsoa11": emerging["lsoa11cd"], "emerging_start": emerging["start_month"],
            "street_rows": int(len(crimes)), "serious_violence": int(sum(sv_truth["monthly_counts"])),
        })
        if progress:
            progress(f"borough {b + 1}/{boroughs} {borough_name(b)}: {len(crimes)} street rows")
        del crimes, stops, lattice

    combined = {}
    for f, parts in frames.items():
        cat = pd.concat(parts, ignore_index=True)
        combined[f] = gpd.GeoDataFrame(cat, geometry="geometry", crs="EPSG:27700") if "geometry" in cat else cat
    base = dataclasses.replace(places, **combined)
    outline = gpd.GeoDataFrame(
        {"NAME": [o[0] for o in outlines], "GSS_CODE": [o[1] for o in outlines]},
        geometry=[o[2] for o in outlines], crs="EPSG:27700",
    )
    catalogue = demo._write_sources(out, base, labels, start, boroughs=outline)
    toml = demo._catalogue_toml(catalogue, seed, start, months)
    toml = toml.replace('"Demoborough (synthetic)"', json.dumps(f"{boroughs} demo boroughs (synthetic)"))
    toml = toml.replace('"sources.demo.borough.generate_demo"', '"sources.demo.scale.generate_scaled"')
    (out / "catalogue.toml").write_text(toml, encoding="utf-8")
    truth = {
        "generator": "sources.demo.scale.generate_scaled", "seed": seed, "boroughs": int(boroughs),
        "years": int(years), "start": start, "months": months, "month_labels": labels, "n_lsoa": n_lsoa,
        "crs": "EPSG:27700", "process": dataclasses.asdict(proc0), "borough": summaries,
        "street_rows": int(sum(s["street_rows"] for s in summaries)),
    }
    (out / "truth.json").write_text(json.dumps(truth, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return out


def main(argv=None) -> None:
    """``python -m sources.demo.scale OUT --boroughs N --years Y [--seed S]``."""
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--boroughs", type=int, default=32)
    ap.add_argument("--years", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--start", default="2016-01")
    args = ap.parse_args(argv)
    generate_scaled(args.out_dir, args.boroughs, args.years, args.seed, start=args.start, progress=print)


if __name__ == "__main__":
    main()
