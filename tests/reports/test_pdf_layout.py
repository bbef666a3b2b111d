"""The printed briefing and evidence pack, page by page (``tests/_support/pdf_layout.py``).

Pages are rendered to PNG in the test's temporary folder (the artefacts), never in the repository.
Tests that print or read PDFs skip with a message when Chromium or poppler-utils is absent
(CI installs both with apt in ``.ci/run``).
"""

from __future__ import annotations

import json
import shutil

import pytest
from consistency import briefing_soup, briefing_top_rows
from pdf_layout import (
    check_area_order,
    check_distinct_rows,
    check_footers,
    check_fullness,
    render_pages,
)


@pytest.fixture(scope="module")
def poppler():
    missing = [t for t in ("pdftoppm", "pdftotext") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not found: install Debian's poppler-utils to check PDF pages")


def _print(tmp_path, body: str, browser) -> object:
    from reports.pdf import html_to_pdf

    page = tmp_path / "doc.html"
    page.write_text("<html><head><style>@page{size:A4;margin:15mm} .b{break-before:page} p{font:11pt sans-serif}"
                    f"</style></head><body>{body}</body></html>", encoding="utf-8")
    return html_to_pdf(page, tmp_path / "doc.pdf", browser=browser)


# ----------------------------------------------------------------------------- the checks can fail

def test_a_page_holding_two_lines_is_flagged_and_a_full_one_is_not(tmp_path, poppler, browser):
    full = "".join(f"<p>Line {i} of a full page of text.</p>" for i in range(25))
    two = "<p class='b'>Only line one.</p><p>And two.</p>"
    pdf = _print(tmp_path, full + two + f"<div class='b'>{full}</div>" + two, browser)
    problems = check_fullness(render_pages(pdf, tmp_path / "pages"))
    # page 2 is a gap; page 4, as short, ends the document
    assert len(problems) == 1 and problems[0].startswith("page 2 of 4 is "), problems


def test_a_clipped_footer_is_flagged_with_what_survived(tmp_path, poppler, browser):
    footer = "Source: census 2021 | Period: 2025-04..2026-03 | Population base: census 2021 residents"
    pdf = _print(tmp_path, f"<p>{footer[:70]}</p>", browser)  # cut as the issue saw it: "Population base: c"
    assert check_footers(pdf, {"whole": footer[:70]}) == []
    problems = check_footers(pdf, {"age": footer})
    assert problems == [f"figure age: footer clipped after 'Source: census 2021 | Period: 2025-04..2026-03 | "
                        f"Population base:' (of {footer!r})"]


def test_areas_out_of_order_are_flagged(tmp_path, poppler, browser):
    rows = "".join(f"<tr><td>A{i}</td><td>{i * 3} places</td></tr>" for i in (4, 6, 5))
    pdf = _print(tmp_path, f"<table>{rows}</table>", browser)
    assert check_area_order(pdf) == ["areas listed as A4, A6, A5"]


def test_two_identical_rows_of_a_top_list_are_flagged():
    rows = ["Burnt Oak, by Burnt Oak station", "Edgware, by Edgware station", "Burnt Oak, by Burnt Oak station"]
    assert check_distinct_rows({"top": rows}) == ["top: 2 identical rows 'Burnt Oak, by Burnt Oak station'"]
    assert check_distinct_rows({"top": rows[:2]}) == []


# ----------------------------------------------------------------------------- the documents pass

def test_the_briefing_of_the_hand_made_run_lays_out_cleanly(make_run, tmp_path, poppler, browser):
    from reports.outputs import write_outputs

    run = make_run(tmp_path / "runs", "run-2024-01")
    paths = write_outputs(run, browser=browser)
    pages = render_pages(paths["briefing_pdf"], tmp_path / "pages")
    assert len(pages) >= 2
    problems = (check_fullness(pages) + check_area_order(paths["briefing_pdf"])
                + check_distinct_rows(briefing_top_rows(briefing_soup(run))))
    assert problems == []


def _pack_problems(folder, tmp_path) -> list[str]:
    pdf = folder / "evidence_pack.pdf"
    footers = {k: v["footer"] for k, v in json.loads((folder / "pack.json").read_text())["figures"].items()}
    assert footers, "the pack has no figures"
    return check_fullness(render_pages(pdf, tmp_path / "pack-pages")) + check_footers(pdf, footers)


def test_the_demo_evidence_pack_lays_out_cleanly(demo_pack, tmp_path, poppler, browser):
    folder, paths = demo_pack
    assert "pdf" in paths, paths.get("pdf_error")
    assert _pack_problems(folder, tmp_path) == []


@pytest.mark.slow
@pytest.mark.realdata
def test_the_barnet_briefing_and_pack_lay_out_cleanly(real_run, real_pack, tmp_path, poppler, browser):
    pdf = real_run / "briefing.pdf"
    pages = render_pages(pdf, tmp_path / "briefing-pages")
    problems = (check_fullness(pages) + check_area_order(pdf)
                + check_distinct_rows(briefing_top_rows(briefing_soup(real_run)))
                + _pack_problems(real_pack[0], tmp_path))
    assert problems == []


def test_panel_titles_of_the_region_figure_do_not_run_into_each_other(tmp_path, monkeypatch):
    """Figure 4.1 of the Barnet pack: the broad measure's long name ran into the next panel's title."""
    import pandas as pd

    from features.figures import SV_MEASURE
    from reports import needs_figures as nf

    drawn = {}
    monkeypatch.setattr(nf, "save", lambda fig, spec, folder: drawn.setdefault("fig", fig))
    rates = pd.DataFrame([{"measure": m, "area_code": f"E0900000{i}", "name": f"Kensington and Chelsea {i}", "rate_per_1000": 10.0 + i,
                           "count": 100 + i, "population": 10_000} for m in (SV_MEASURE, "violence") for i in range(5)])
    spec = nf.FigureFile("region", "Rates across the region", "", "test", "2025-04..2026-03", "residents")
    nf.region_ranks(rates, "E09000001", ["E09000002"], [SV_MEASURE, "violence"], spec, tmp_path)
    fig = drawn["fig"]
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    # the panels' titles are left-aligned (matplotlib keeps those in ``_left_title``)
    assert [ax.get_title(loc="left").replace("\n", " ") for ax in fig.axes[:2]] == [
        "Serious violence, broad (all violence against the person, robbery, sexual offences)",
        "Violence against the person"]
    left, right = (ax._left_title.get_window_extent(renderer) for ax in fig.axes[:2])
    assert left.x1 < right.x0, (left, right)
