"""The printed risk map (``reports.briefing.static_figure``): names never cover each other, a
place's number, an area's label, a station's dot, the scale or the legend."""

from __future__ import annotations

import itertools

import geopandas as gpd
import numpy as np
import pytest
from matplotlib.transforms import Bbox
from shapely.geometry import Point, box

from reports.briefing import GAP_PT, _extent, place_labels, static_figure

X0, Y0 = 520_000.0, 180_000.0


def _layers():
    """A 12 x 12 grid of 400 m cells; wards whose centres crowd the ranked cells; stations 60 m apart."""
    cells = [box(X0 + i * 400, Y0 + j * 400, X0 + (i + 1) * 400, Y0 + (j + 1) * 400) for j in range(12) for i in range(12)]
    expected = np.linspace(20, 0.1, len(cells))
    ranked = gpd.GeoDataFrame({"unit_id": [f"c{i}" for i in range(len(cells))], "expected": expected,
                               "rank": np.arange(1, len(cells) + 1)}, geometry=cells, crs=27700)
    wards = gpd.GeoDataFrame(
        {"name": [f"Long Ward Name Number {i}" for i in range(16)]},
        geometry=[box(X0 + (i % 4) * 1200, Y0 + (i // 4) * 1200, X0 + (i % 4 + 1) * 1200, Y0 + (i // 4 + 1) * 1200)
                  for i in range(16)], crs=27700)
    borough = gpd.GeoDataFrame(geometry=[box(X0, Y0, X0 + 4800, Y0 + 4800)], crs=27700)
    stations = [Point(X0 + 3300 + k * 60, Y0 + 4100) for k in range(4)] + [Point(X0 + 2600, Y0 + 3000)]
    unnamed = wards.geometry.iloc[9].representative_point()  # a dot right where ward 9's name would go
    hubs = gpd.GeoDataFrame({"kind": ["station"] * (len(stations) + 1),
                             "name": [f"Crowded Central {k}" for k in range(len(stations))] + [None]},
                            geometry=[*stations, unnamed], crs=27700)
    areas = gpd.GeoDataFrame({"area_id": ["A1"]}, geometry=[box(X0 + 400, Y0 + 400, X0 + 1200, Y0 + 1200)], crs=27700)
    return {"ranked_units": ranked, "hubs": hubs, "areas": areas}, {"wards": wards, "borough": borough}


def _boxes(fig):
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    shown = [t for t in ax.texts if t.get_visible()]
    boxes = [(t.get_text(), _extent(t, renderer)) for t in shown]
    if ax.get_legend() is not None:
        boxes.append(("legend", ax.get_legend().get_window_extent(renderer)))
    return boxes


@pytest.mark.parametrize("legend_inside", [False, True])
def test_no_name_covers_another_label_a_number_or_the_legend(legend_inside):
    layers, context = _layers()
    fig, _ = static_figure(layers, {"horizon": 1}, context=context, legend_inside=legend_inside)
    fig.canvas.draw()
    boxes = _boxes(fig)

    def named(text: str) -> bool:  # the names placed around their point (numbers, A1, scale, legend stay put)
        return text.startswith(("Crowded Central", "Long Ward"))

    gap = 0.9 * GAP_PT * fig.dpi / 72  # a name keeps GAP_PT clear all round (0.9: rounding)
    boxes = [(n, Bbox.from_extents(b.x0 - gap, b.y0 - gap, b.x1 + gap, b.y1 + gap) if named(n) else b)
             for n, b in boxes]
    clashes = [(a, b) for (a, ba), (b, bb) in itertools.combinations(boxes, 2)
               if (named(a) or named(b)) and ba.overlaps(bb)]
    assert clashes == []
    ax = fig.axes[0]
    dots = ax.transData.transform([(p.x, p.y) for p in layers["hubs"].geometry])
    covered = [(n, tuple(d)) for n, b in boxes if named(n) for d in dots
               if b.x0 - 2 < d[0] < b.x1 + 2 and b.y0 - 2 < d[1] < b.y1 + 2]
    assert covered == []  # a name leaves every station's dot in view, with 2 pixels to spare
    texts = ax.texts
    names = {t.get_text(): t.get_visible() for t in texts}
    assert [str(r) for r in range(1, 11)] == [t for t in names if t.isdigit()] and all(
        names[str(r)] for r in range(1, 11))  # every number stays
    assert names["A1"]
    # the stations 60 m apart: their names had to move from the first spot or give way
    crowded = [t for t in texts if t.get_text().startswith("Crowded Central")]
    assert crowded[0].get_visible()  # the first placed always finds a spot
    assert any(not t.get_visible() or t.xyann != (3, 2) for t in crowded[:4])
    assert crowded[4].get_visible() and crowded[4].xyann == (3, 2)  # alone: where a name goes first
    assert sum(v for n, v in names.items() if n.startswith("Long Ward")) >= 8  # most wards keep their name


def test_a_name_goes_to_its_next_free_spot_and_hides_when_none_is_free():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    block = ax.annotate("BLOCK", (50, 50), ha="left", va="bottom", xytext=(3, 2), textcoords="offset points")
    moved = ax.annotate("name", (50, 50), xytext=(0, 0), textcoords="offset points")
    spots = [(3, 2, "left", "bottom"), (-3, -2, "right", "top")]
    edge = ax.annotate("edge", (99, 99), xytext=(0, 0), textcoords="offset points")  # no spot inside the frame
    hidden = place_labels(fig, ax, [block], [(moved, spots), (edge, spots[:1])])
    assert moved.get_visible() and moved.xyann == (-3, -2) and moved.get_horizontalalignment() == "right"
    assert hidden == [edge] and not edge.get_visible()


@pytest.mark.parametrize("text", ["Edgware", "Mill Hill Broadway", "Two\nlines"])
def test_a_spot_s_box_is_the_box_matplotlib_draws_there(text):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from reports.briefing import STATION_SPOTS, WARD_SPOTS, spot_boxes

    fig = Figure(figsize=(3, 3), dpi=170)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ann = ax.annotate(text, (37.3, 61.9), xytext=(0, 0), textcoords="offset points", fontsize=5.6, style="italic")
    renderer = fig.canvas.get_renderer()
    spots = STATION_SPOTS + WARD_SPOTS
    computed = spot_boxes(ann, spots, renderer)
    for (dx, dy, ha, va), box in zip(spots, computed, strict=True):
        ann.xyann = (dx, dy)
        ann.set_horizontalalignment(ha)
        ann.set_verticalalignment(va)
        assert np.allclose(box, ann.get_window_extent(renderer).extents, atol=1e-6), (dx, dy, ha, va)
