"""HTML printed to PDF by headless Chromium."""

from __future__ import annotations

import re

import pytest

from reports.pdf import PdfError, html_to_pdf


def test_a_page_prints_to_a_pdf_of_two_a4_pages(tmp_path, browser):
    page = tmp_path / "r.html"
    page.write_text("<html><head><style>@page{size:A4} .b{page-break-before:always}</style></head>"
                    "<body><h1>One</h1><p class='b'>Two</p></body></html>", encoding="utf-8")
    pdf = html_to_pdf(page, tmp_path / "out" / "r.pdf", browser=browser)
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    assert re.findall(rb"/Count\s+(\d+)", data) == [b"2"]  # two pages
    width, height = map(float, re.search(rb"/MediaBox\s*\[0 0 ([\d.]+) ([\d.]+)\]", data).groups())
    assert round(width / 72 * 25.4) == 210 and round(height / 72 * 25.4) == 297  # A4 in mm
    assert not list((tmp_path / "out").glob(".*.part"))


def test_a_missing_browser_is_one_clear_error(tmp_path):
    page = tmp_path / "r.html"
    page.write_text("<html></html>")
    with pytest.raises(PdfError, match="Chromium not found"):
        html_to_pdf(page, tmp_path / "r.pdf", browser="no-such-browser-xyz")
    assert not (tmp_path / "r.pdf").exists()
