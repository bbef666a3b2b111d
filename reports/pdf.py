"""HTML reports printed to PDF by a headless Chromium, as a reader would print them (A4, CSS ``@page``).

Chromium is the browser people already have; the page's own print stylesheet decides the
layout, so the PDF and the browser's print preview agree. Nothing is fetched from the
network (the reports are self-contained).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
"""Executables tried, in order, when no browser is named."""
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-pdf-header-footer")


class PdfError(RuntimeError):
    """The PDF could not be written (no browser, or the browser failed); the HTML is still there."""


def find_browser(browser: str | Path | None = None) -> Path | None:
    """The Chromium executable: ``browser`` if given (a path or a name on PATH), else the first of
    :data:`BROWSERS` found on PATH; None when there is none."""
    names = [str(browser)] if browser else list(BROWSERS)
    for name in names:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def html_to_pdf(html_path: str | Path, pdf_path: str | Path, *, browser: str | Path | None = None,
                timeout_s: float = 120.0) -> Path:
    """Print ``html_path`` to ``pdf_path`` with headless Chromium and return ``pdf_path``.

    Raises
    ------
    PdfError
        No Chromium was found, it failed, timed out, or wrote no PDF.
    """
    html_path, pdf_path = Path(html_path).resolve(), Path(pdf_path)
    exe = find_browser(browser)
    if exe is None:
        wanted = browser or " or ".join(BROWSERS)
        raise PdfError(f"no PDF written beside {html_path.name}: Chromium not found ({wanted}); "
                       "install Debian's chromium package or name the browser in the settings")
    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = pdf_path.with_name(f".{pdf_path.name}.part")
    with tempfile.TemporaryDirectory(prefix="svrisk-chromium-") as profile:
        cmd = [str(exe), *FLAGS, f"--user-data-dir={profile}", f"--print-to-pdf={tmp}", html_path.as_uri()]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            tmp.unlink(missing_ok=True)
            raise PdfError(f"Chromium took more than {timeout_s:.0f} s to print {html_path.name}") from exc
    if done.returncode != 0 or not tmp.is_file() or tmp.stat().st_size == 0:
        tmp.unlink(missing_ok=True)
        tail = (done.stderr or "").strip().splitlines()[-1:] or ["no message"]
        raise PdfError(f"Chromium could not print {html_path.name} (exit {done.returncode}): {tail[0]}")
    tmp.replace(pdf_path)
    return pdf_path
