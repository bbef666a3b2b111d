"""Benchmark: the printed risk map (:func:`reports.briefing.static_figure`) at a force's scale.

Input (synthetic, seed 0): 729 wards with names over 40 x 40 km, 1,600 ranked cells of 1 km,
300 named stations at random. Three timings in one process, each the median of ``--repeat``:

* ``no_names_placed``: the figure with :func:`reports.briefing.place_labels` replaced by a
  no-op, then drawn once (the draw that placing names does itself), the baseline;
* ``placed``: the figure as the briefing makes it (every name placed or left out);
* ``placed_per_pair``: the same with the placement of the first version (a ``Bbox.overlaps``
  per pair and a text layout per spot), kept here for the comparison.

Prints one JSON object with the seconds, the ratios to the baseline and how many names were
left out (the same count for both placements: they make the same choices).

Run: ``.venv/bin/python -P benchmarks/static_map.py [--repeat 3]`` (under a minute).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import geopandas as gpd
import numpy as np
from shapely.geometry import Point, box

X0, Y0, SIDE_M = 500_000.0, 160_000.0, 40_000.0


def layers():
    n = 27
    size = SIDE_M / n
    wards = gpd.GeoDataFrame(
        {"name": [f"Ward number {i}" for i in range(n * n)]},
        geometry=[box(X0 + (i % n) * size, Y0 + (i // n) * size, X0 + (i % n + 1) * size, Y0 + (i // n + 1) * size)
                  for i in range(n * n)], crs=27700)
    cells = [box(X0 + i * 1000, Y0 + j * 1000, X0 + (i + 1) * 1000, Y0 + (j + 1) * 1000)
             for j in range(40) for i in range(40)]
    ranked = gpd.GeoDataFrame({"unit_id": [f"c{i}" for i in range(len(cells))],
                               "expected": np.linspace(20, 0.1, len(cells)), "rank": np.arange(1, len(cells) + 1)},
                              geometry=cells, crs=27700)
    rng = np.random.default_rng(0)
    hubs = gpd.GeoDataFrame({"kind": "station", "name": [f"Station {k}" for k in range(300)]},
                            geometry=[Point(X0 + x, Y0 + y) for x, y in rng.uniform(0, SIDE_M, (300, 2))], crs=27700)
    borough = gpd.GeoDataFrame(geometry=[box(X0, Y0, X0 + SIDE_M, Y0 + SIDE_M)], crs=27700)
    return {"ranked_units": ranked, "hubs": hubs}, {"wards": wards, "borough": borough}


def per_pair(fig, ax, fixed, movable, dots=()):
    """The first placement: the same rule, one Bbox.overlaps per pair and a text layout per spot."""
    from matplotlib.transforms import Bbox

    from reports.briefing import DOT_PT, GAP_PT, _extent

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    taken = [_extent(a, renderer) for a in fixed if a.get_visible()]
    half, gap = DOT_PT * fig.dpi / 72.0, GAP_PT * fig.dpi / 72.0
    for x, y in ax.transData.transform(np.asarray(list(dots), dtype=float).reshape(-1, 2)):
        taken.append(Bbox.from_extents(x - half, y - half, x + half, y + half))
    frame = ax.get_window_extent(renderer)
    hidden = []
    for ann, spots in movable:
        for dx, dy, ha, va in spots:
            ann.xyann = (dx, dy)
            ann.set_horizontalalignment(ha)
            ann.set_verticalalignment(va)
            b = ann.get_window_extent(renderer)
            b = Bbox.from_extents(b.x0 - gap, b.y0 - gap, b.x1 + gap, b.y1 + gap)
            inside = b.x0 >= frame.x0 and b.x1 <= frame.x1 and b.y0 >= frame.y0 and b.y1 <= frame.y1
            if inside and not any(b.overlaps(t) for t in taken):
                taken.append(b)
                break
        else:
            ann.set_visible(False)
            hidden.append(ann)
    return hidden


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import reports.briefing as briefing

    data, context = layers()
    placer = briefing.place_labels
    variants = {"no_names_placed": lambda *a, **k: [], "placed": placer, "placed_per_pair": per_pair}
    seconds: dict[str, list[float]] = {k: [] for k in variants}
    hidden: dict[str, int] = {}
    for _ in range(max(1, args.repeat)):
        for name, fn in variants.items():  # interleaved, so drift on a busy machine hits all alike
            briefing.place_labels = fn
            t0 = time.perf_counter()
            fig, _ = briefing.static_figure(data, {"horizon": 1}, context=context)
            if name == "no_names_placed":
                fig.canvas.draw()
            seconds[name].append(time.perf_counter() - t0)
            hidden[name] = sum(not t.get_visible() for t in fig.axes[0].texts)
    briefing.place_labels = placer
    med = {k: round(statistics.median(v), 2) for k, v in seconds.items()}
    base = med["no_names_placed"]
    print(json.dumps({"benchmark": "static_map", "names": len(context["wards"]) + len(data["hubs"]),
                      "seconds": med, "vs_baseline": {k: round(v / base, 2) for k, v in med.items()},
                      "left_out": {k: v for k, v in hidden.items() if k != "no_names_placed"}}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
