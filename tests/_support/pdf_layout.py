"""Page-layout checks of a printed PDF (briefing, evidence pack), read as a person reads it.

Pages are rendered to PNG with ``pdftoppm`` and their text read with ``pdftotext`` (both from
Debian's poppler-utils). Each ``check_*`` returns a list of problems, so a test can show it
failing on a doctored document:

- :func:`check_fullness`: no page but the last whose ink spans less than a quarter of its height;
- :func:`check_footers`: each figure's footer text appears whole in the PDF (not clipped);
- :func:`check_area_order`: Clear Hold Build areas listed A1, A2, ... in order;
- :func:`check_distinct_rows`: no two identical rows in a top-10 table.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np

MIN_FULL = 0.25
"""The least share of a page's height its ink may span."""


def poppler(tool: str) -> str:
    """The path of a poppler-utils tool, or FileNotFoundError saying what to install."""
    exe = shutil.which(tool)
    if exe is None:
        raise FileNotFoundError(f"{tool} not found: install Debian's poppler-utils")
    return exe


def render_pages(pdf: Path, folder: Path, dpi: int = 40) -> list[Path]:
    """Every page of ``pdf`` as ``folder/page-<n>.png`` (``pdftoppm``), in page order."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([poppler("pdftoppm"), "-r", str(dpi), "-png", str(pdf), str(folder / "page")], check=True,
                   capture_output=True)
    return sorted(folder.glob("page-*.png"), key=lambda p: int(re.search(r"(\d+)\.png$", p.name).group(1)))


def ink_span(png: Path, white: int = 245) -> float:
    """The share of the page's height between its first and last row holding any ink."""
    from PIL import Image

    grey = np.asarray(Image.open(png).convert("L"))
    rows = np.flatnonzero((grey < white).any(axis=1))
    return 0.0 if not len(rows) else float(rows[-1] - rows[0] + 1) / grey.shape[0]


def check_fullness(pages: list[Path], minimum: float = MIN_FULL) -> list[str]:
    """Pages, but the last, whose ink spans less than ``minimum`` of their height: a gap in the
    document (a forced break before a short chapter, a few lines spilt over). The last page may be
    short, as the end of any document may."""
    return [f"page {i} of {len(pages)} is {span:.0%} full (its ink spans less than {minimum:.0%} of its height)"
            for i, span in ((i, ink_span(p)) for i, p in enumerate(pages[:-1], start=1)) if span < minimum]


def pdf_text(pdf: Path) -> str:
    return subprocess.run([poppler("pdftotext"), str(pdf), "-"], check=True, capture_output=True,
                          text=True).stdout


def _flat(text: str) -> str:
    """Text with every run of white space one space and hyphenation at line ends undone."""
    return " ".join(re.sub(r"-\n", "-", text).split())


def check_footers(pdf: Path, footers: dict[str, str]) -> list[str]:
    """Footers (figure name -> its source text) that the PDF does not show whole."""
    text = _flat(pdf_text(pdf))
    out = []
    for name, footer in footers.items():
        want = _flat(footer)
        if want and want not in text:
            # how much of it made it: the longest prefix present
            words = want.split(" ")
            k = max((n for n in range(len(words) + 1) if " ".join(words[:n]) in text), default=0)
            out.append(f"figure {name}: footer clipped after {' '.join(words[:k])!r} (of {want!r})")
    return out


def check_area_order(pdf: Path) -> list[str]:
    """Clear Hold Build area ids (A1, A2, ...) as rows of the areas table, in order."""
    text = pdf_text(pdf)
    ids = [int(m) for m in re.findall(r"^A(\d+)\b", text, flags=re.M)]
    if ids != sorted(ids):
        return [f"areas listed as {', '.join(f'A{i}' for i in ids)}"]
    return []


def check_distinct_rows(rows_by_table: dict[str, list[str]]) -> list[str]:
    """Tables (name -> the text of each row) in which two rows read the same."""
    out = []
    for name, rows in rows_by_table.items():
        seen = {}
        for r in rows:
            seen[r] = seen.get(r, 0) + 1
        out += [f"{name}: {n} identical rows {r!r}" for r, n in seen.items() if n > 1]
    return out
