"""A real browser (Debian's headless Chromium via Playwright) opens the served map and briefing."""

import socket
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def server(api_settings):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium package to run the browser test")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    import uvicorn

    from reports.outputs import write_outputs
    from service.api import create_app

    write_outputs(api_settings.runs_dir / "run-2024-01")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(api_settings), host="127.0.0.1", port=port,
                                        log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start within 20 s")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def page(server, api_keys):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = browser.new_context(viewport={"width": 1200, "height": 850},
                                      extra_http_headers={"X-API-Key": api_keys["viewer"]})
        pg = context.new_page()
        pg.problems = []
        pg.on("pageerror", lambda e: pg.problems.append(f"error: {e}"))
        # anything fetched from outside the service means the page is not self-contained
        pg.on("request", lambda r: None if r.url.startswith((server, "data:", "about:"))
              else pg.problems.append(f"external request: {r.url}"))
        yield pg
        browser.close()


def test_map_renders_layers_legend_and_a_popup(server, page, tmp_path):
    page.goto(f"{server}/runs/latest/map")
    page.wait_for_selector("path.leaflet-interactive")
    overlays = [t.strip() for t in page.locator(".leaflet-control-layers-overlays label").all_inner_texts()]
    assert overlays == ["Risk: Expected count", "Gi* hot and cold spots", "Emerging hot spots",
                        "Clear Hold Build areas", "Stations and schools"]
    # 36 cells + 2 area outlines + 4 hubs drawn (Gi* and emerging start hidden)
    assert page.locator("path.leaflet-interactive").count() == 42
    legend = page.locator("#svrisk-legend")
    assert legend.is_visible()
    assert "Clear Hold Build areas" in legend.inner_text()
    assert "Data 2021-01 to 2023-12" in page.locator("#svrisk-title").inner_text()
    # click the centre of the map's highest-risk cell (G11): its popup names it
    page.locator('path.leaflet-interactive[fill="#800026"]').first.click(force=True)
    popup = page.wait_for_selector(".leaflet-popup-content", timeout=5000)
    text = popup.inner_text()
    assert "Cell 1-1" in text and "12.0" in text
    # turning a hidden overlay on draws its polygons
    page.locator(".leaflet-control-layers-overlays label", has_text="Emerging hot spots").click()
    assert page.locator("path.leaflet-interactive").count() == 45
    shot = tmp_path / "map.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    assert page.problems == []


def test_briefing_renders_map_image_and_tables(server, page, tmp_path):
    page.goto(f"{server}/runs/run-2024-01/briefing")
    img = page.locator("#map img")
    assert page.evaluate("(el) => el.complete && el.naturalWidth > 400", img.element_handle())
    rows = page.locator("#top-places tbody tr")
    assert rows.count() == 10
    assert rows.first.locator("td").nth(1).inner_text().startswith("Cell 1-1")
    assert "places, never people" in page.locator("#caveats").inner_text()
    shot = tmp_path / "briefing.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    # the briefing's link to the interactive map works when served
    page.locator("#map a").click()
    page.wait_for_selector("path.leaflet-interactive")
    assert page.problems == []
