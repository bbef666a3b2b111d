"""A real browser (Debian's headless Chromium via Playwright) logs in, then opens the map and briefing."""

import re
from pathlib import Path

import pytest
from live_server import free_port, thread_server, with_public_url

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def server(api_settings):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium package to run the browser test")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    from reports.outputs import write_outputs
    from service.api import create_app

    write_outputs(api_settings.runs_dir / "run-2024-01")
    port = free_port()
    settings = with_public_url(api_settings, port)  # the session cookie stays Secure
    with thread_server(create_app(settings), settings, port) as base:
        yield base


@pytest.fixture(scope="module")
def page(server, api_keys):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = browser.new_context(viewport={"width": 1200, "height": 850})
        pg = context.new_page()
        pg.problems = []
        pg.on("pageerror", lambda e: pg.problems.append(f"error: {e}"))
        # anything fetched from outside the service means the page is not self-contained
        pg.on("request", lambda r: None if r.url.startswith((server, "data:", "about:"))
              else pg.problems.append(f"external request: {r.url}"))
        yield pg
        browser.close()


def ensure_logged_in(page, server, key):
    """Log in through the form unless the context already has a session (tests run alone too)."""
    if not any(c["name"] == "svrisk_session" for c in page.context.cookies()):
        page.goto(f"{server}/login")
        page.fill("#key", key)
        page.click("#login button[type=submit]")
        page.wait_for_load_state()


def test_login_page_sets_a_session_and_lands_on_the_map(server, page, api_keys):
    page.goto(f"{server}/runs/latest/map")
    assert page.url == f"{server}/login?next=%2Fruns%2Flatest%2Fmap"  # sent to log in first
    page.fill("#key", api_keys["viewer"][:-3] + "abc")
    page.click("#login button[type=submit]")
    assert "not recognised" in page.locator("#login-error").inner_text()
    page.fill("#key", api_keys["viewer"])
    page.click("#login button[type=submit]")
    page.wait_for_selector("path.leaflet-interactive")
    assert page.url == f"{server}/runs/latest/map"
    cookie = next(c for c in page.context.cookies() if c["name"] == "svrisk_session")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    assert api_keys["viewer"].split("_", 2)[2] not in cookie["value"]
    assert page.evaluate("document.cookie") == ""  # scripts cannot read the session


def _shots(api_settings) -> Path:
    """Screenshots are CI artifacts kept in the test's run folder (a tmp folder), never in the repo."""
    folder = api_settings.runs_dir / "run-2024-01" / "screenshots"
    folder.mkdir(exist_ok=True)
    return folder


def _legend_sections(page) -> dict[str, bool]:
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('#svrisk-legend [data-layer]')]
        .map(el => [el.dataset.layer, el.offsetParent !== null]))""")


def test_map_orients_numbers_the_top_10_and_shows_legends_only_for_visible_layers(server, page, api_settings,
                                                                                   api_keys):
    ensure_logged_in(page, server, api_keys["viewer"])
    page.goto(f"{server}/runs/latest/map")
    page.wait_for_selector("path.leaflet-interactive")
    overlays = [t.strip() for t in page.locator(".leaflet-control-layers-overlays label").all_inner_texts()]
    assert overlays == ["Risk: expected events next month", "Gi* hot and cold spots", "Emerging hot spots",
                        "Clear Hold Build areas", "Top 10 numbered", "Wards", "Borough boundary",
                        "Stations", "Schools"]
    # 36 cells + 2 area outlines take clicks; wards, outline, stations and labels do not
    assert page.locator("path.leaflet-interactive").count() == 38
    assert page.locator(".svrisk-ward-label span", has_text="Colindale North").first.is_visible()
    assert page.locator(".svrisk-ward-label span", has_text="Burnt Oak").first.is_visible()
    assert page.locator(".svrisk-station-label span", has_text="Colindale").first.is_visible()
    numbers = page.locator(".svrisk-num span").all_inner_texts()
    assert sorted(int(n) for n in numbers) == list(range(1, 11))
    credits = page.locator(".leaflet-control-attribution").inner_text()
    assert "Open Government Licence" in credits and "police.uk" in credits and "Crown copyright" in credits
    assert "Data 2021-01 to 2023-12" in page.locator("#svrisk-title").inner_text()
    # legends: one per layer shown, none for hidden ones, none empty
    assert _legend_sections(page) == {"risk": True, "gi": False, "emerging": False, "areas": True, "top": True,
                                      "wards": True, "borough": True, "hubs_station": True, "hubs_school": False}
    for section in page.locator("#svrisk-legend [data-layer]").all():
        if section.is_visible():
            assert section.locator(".svrisk-legend-row").count() >= 1
    page.screenshot(path=str(_shots(api_settings) / "map.png"))
    # the top cell's number sits on it, and a click there still opens the place's popup
    page.locator('path.leaflet-interactive[fill="#800026"]').first.click(force=True)
    text = page.wait_for_selector(".leaflet-popup-content", timeout=5000).inner_text()
    assert "Colindale North, by Colindale station" in text and "Cell 1-1" in text
    assert "12.0 expected events next month" in text and "Rank change" in text
    page.locator(".leaflet-popup-close-button").click()
    # turning layers on and off shows and hides their legends
    page.locator(".leaflet-control-layers-overlays label", has_text="Emerging hot spots").click()
    page.locator(".leaflet-control-layers-overlays label", has_text="Wards").click()
    assert page.locator("path.leaflet-interactive").count() == 41
    shown = _legend_sections(page)
    assert shown["emerging"] and not shown["wards"] and not shown["gi"]
    assert page.locator(".svrisk-ward-label").count() == 0  # the labels went with their layer
    page.screenshot(path=str(_shots(api_settings) / "map-emerging-no-wards.png"))
    assert (_shots(api_settings) / "map.png").stat().st_size > 10_000
    assert page.problems == []


def test_briefing_prints_map_and_top_10_on_page_one(server, page, api_settings, api_keys):
    ensure_logged_in(page, server, api_keys["viewer"])
    page.goto(f"{server}/briefing")  # the published run's (run-2024-01), as a partner opens it
    img = page.locator("#map img")
    assert page.evaluate("(el) => el.complete && el.naturalWidth > 1000", img.element_handle())
    rows = page.locator("#top-places tbody tr")
    assert rows.count() == 10
    assert rows.first.locator("td").nth(1).inner_text().startswith("Colindale North, by Colindale station")
    legend = page.locator("#legend .legend-row").all_inner_texts()
    assert legend[0].startswith("Top 1% of area") and any("Ward boundary" in t for t in legend)
    assert "places, never people" in page.locator("#caveats").inner_text()
    assert "Open Government Licence" in page.locator("#credits").inner_text()
    assert "raises risk" not in page.locator("#why").inner_text().lower()
    shot = _shots(api_settings) / "briefing.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    # printed at A4 (190 mm of text width), the map and the whole top 10 fit on page 1 (277 mm)
    page.emulate_media(media="print")
    page.set_viewport_size({"width": 718, "height": 1047})
    bottom_mm = page.evaluate("document.querySelector('#top-places').getBoundingClientRect().bottom") * 25.4 / 96
    assert bottom_mm < 277, f"the top 10 ends {bottom_mm:.0f} mm down page 1"
    page.emulate_media(media="screen")
    page.set_viewport_size({"width": 1200, "height": 850})
    # the PDF written beside the HTML is A4, and a copy is kept with the screenshots
    pdf = api_settings.runs_dir / "run-2024-01" / "briefing.pdf"
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and int(re.findall(rb"/Count\s+(\d+)", data)[0]) >= 2
    for width, height in re.findall(rb"/MediaBox\s*\[0 0 ([\d.]+) ([\d.]+)\]", data):
        assert (round(float(width) / 72 * 25.4), round(float(height) / 72 * 25.4)) == (210, 297)  # A4
    (_shots(api_settings) / "briefing.pdf").write_bytes(data)
    # the briefing's link to the interactive map works when served
    page.locator("#map a").click()
    page.wait_for_selector("path.leaflet-interactive")
    assert page.problems == []


def test_gis_layers_as_html_pages(server, page, api_keys):
    ensure_logged_in(page, server, api_keys["viewer"])
    page.goto(f"{server}/ogc/collections/ranked_units/items?limit=5")  # a browser asks for HTML
    rows = page.locator("#features tbody tr")
    assert rows.count() == 5 and rows.first.locator("td").first.inner_text() == "G11"
    rows.first.locator("a").click()
    assert "Cell 1-1" in page.locator("table").inner_text()
    assert page.problems == []
