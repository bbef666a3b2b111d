"""Fixtures of the report tests: the browser that prints PDFs."""

from __future__ import annotations

import pytest

from reports.pdf import find_browser


@pytest.fixture(scope="session")
def browser():
    """Chromium's path, or the test skipped with how to install it."""
    exe = find_browser()
    if exe is None:
        pytest.skip("Chromium not found: install Debian's chromium package to print PDFs")
    return exe
