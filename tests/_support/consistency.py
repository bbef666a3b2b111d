"""Cross-output checks of one run: every output read through its own format and compared.

Each ``check_*`` function returns a list of problems (empty: the outputs agree), so a test can
show the check failing on a doctored output. The outputs are read as a user's tools read them:
the briefing and the map as HTML, the briefing PDF as text (``pdftotext``), the GeoPackage with
pyogrio, the CSV with pandas, the API and OGC API through a FastAPI TestClient.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
from bs4 import BeautifulSoup

from features.figures import MEASURE_NAMES, SV_MEASURE
from reports.layers import area_class_names

TOP_N = 10
LEAD, BESIDE = "ranked_units", "current_ranked_units"


# ----------------------------------------------------------------------------- readers

def run_meta(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "run.json").read_text())


def layer_record(meta: dict, layer: str) -> dict:
    """The run record a layer is stamped from: the beside forecast's own for ``current_*``."""
    if layer.startswith("current_") and meta.get("current"):
        return {**meta, **{k: v for k, v in meta["current"].items() if v is not None}}
    return meta


def period_of(record: dict) -> str:
    return f"{record['data_period']['start']}/{record['data_period']['end']}"


def layers_present(run_dir: Path) -> list[str]:
    names = [n for n, _ in pyogrio.list_layers(Path(run_dir) / "layers.gpkg")]
    return [n for n in (LEAD, BESIDE) if n in names]


def briefing_soup(run_dir: Path) -> BeautifulSoup:
    return BeautifulSoup((Path(run_dir) / "briefing.html").read_text(encoding="utf-8"), "html.parser")


def briefing_tops(soup: BeautifulSoup) -> dict[str, list[tuple[int, str]]]:
    """``(rank, unit id)`` of the briefing's top lists: the lead's (``#top-places``) and the beside one's
    (``#current``)."""
    out = {}
    for layer, sel in ((LEAD, "#top-places tr[data-unit]"), (BESIDE, "#current tr[data-unit]")):
        rows = soup.select(sel)
        if rows:
            out[layer] = [(int(r.select_one("td.rank").get_text(strip=True)), r["data-unit"]) for r in rows]
    return out


def briefing_top_rows(soup: BeautifulSoup) -> dict[str, list[str]]:
    """The text of every row of the briefing's top lists (place cells), by section id."""
    out = {}
    for sec in ("top-places", "current", "why"):
        rows = soup.select(f"#{sec} tr[data-unit]")
        if rows:
            out[sec] = [" ".join(r.find_all("td")[1].get_text(" ", strip=True).split()) for r in rows]
    return out


_MARKER = re.compile(r"var (marker_\w+) = L\.marker\(\s*\[([-\d.e]+),\s*([-\d.e]+)\]")
_ICON = re.compile(r"var (div_icon_\w+) = L\.divIcon\((\{.*?\})\);", re.S)
_SET = re.compile(r"(marker_\w+)\.setIcon\((div_icon_\w+)\)")


def map_markers(map_html: str) -> dict[str, list[tuple[int, str, float, float]]]:
    """The map's numbered places by layer: ``(number, unit id, lon, lat)`` in number order."""
    where = {m: (float(lat), float(lon)) for m, lat, lon in _MARKER.findall(map_html)}
    icons = {}
    for name, body in _ICON.findall(map_html):
        icons[name] = json.loads(re.sub(r",\s*}", "}", body))["html"]
    out: dict[str, list] = {}
    for marker, icon in _SET.findall(map_html):
        m = re.search(r'data-layer="([^"]+)" data-unit="([^"]+)">(\d+)<', icons.get(icon, ""))
        if m and marker in where:
            lat, lon = where[marker]
            out.setdefault(m.group(1), []).append((int(m.group(3)), m.group(2), lon, lat))
    return {k: sorted(v) for k, v in out.items()}


def map_colours(map_html: str) -> dict[str, str]:
    """The choropleth colour of rank 1 in each ranked layer of the map (from its embedded GeoJSON)."""
    out = {}
    for blob in re.findall(r'"type": "FeatureCollection".*?(?=\);)', map_html, re.S):
        try:
            fc = json.loads("{" + blob.rstrip().rstrip(",") if not blob.startswith("{") else blob)
        except json.JSONDecodeError:
            continue
        out.update(_rank1_colour(fc))
    if not out:  # folium writes each layer as one JSON object literal passed to a function
        for m in re.finditer(r"\(\s*(\{\"bbox\".*?\"type\": \"FeatureCollection\"\})\s*\)", map_html, re.S):
            out.update(_rank1_colour(json.loads(m.group(1))))
    return out


def _rank1_colour(fc: dict) -> dict[str, str]:
    for f in fc.get("features", []):
        p = f.get("properties", {})
        if str(p.get("rank_txt", "")).startswith("1 of ") and "_colour" in p:
            layer = BESIDE if "unit_txt" not in p else LEAD
            return {layer: p["_colour"]}
    return {}


def pdf_text(pdf: Path, *, layout: bool = False) -> str:
    """The text of a PDF by ``pdftotext`` (poppler-utils)."""
    exe = shutil.which("pdftotext")
    if exe is None:
        raise FileNotFoundError("pdftotext not found: install Debian's poppler-utils")
    args = [exe, *(["-layout"] if layout else []), str(pdf), "-"]
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


# ----------------------------------------------------------------------------- checks

def _sv_row(rows) -> dict | None:
    return next((r for r in rows or [] if r.get("group") == SV_MEASURE), None)


def _number(text: str) -> int | None:
    text = text.replace(",", "").strip()
    return int(text) if re.fullmatch(r"-?\d+", text) else None


def check_totals(run_dir: Path, *, client=None, headers=None, pack_dir: Path | None = None) -> list[str]:
    """The serious-violence total of the 12 months is one number in figures.json, the briefing (HTML
    and PDF), the API's ``/runs/{id}/figures`` and the needs-assessment pack's headline table."""
    run_dir = Path(run_dir)
    figures = json.loads((run_dir / "figures.json").read_text())
    row = _sv_row(figures.get("rows"))
    if row is None or row.get("count_12m") is None:
        return [f"figures.json has no 12-month {SV_MEASURE!r} count"]
    total, problems = int(row["count_12m"]), []
    name = MEASURE_NAMES[SV_MEASURE]
    cells = [tr.find_all("td") for tr in briefing_soup(run_dir).select("#figures tbody tr")]
    shown = [_number(td[1].get_text()) for td in cells if td and td[0].get_text(strip=True) == name]
    if shown != [total]:
        problems.append(f"briefing.html shows {name!r} as {shown}, figures.json {total:,}")
    if (run_dir / "briefing.pdf").is_file() and shutil.which("pdftotext"):
        flat = " ".join(pdf_text(run_dir / "briefing.pdf").split())
        if f"{total:,}" not in flat:
            problems.append(f"briefing.pdf does not show the serious-violence total {total:,}")
    if client is not None:
        meta = run_meta(run_dir)
        got = client.get(f"/runs/{meta['run_id']}/figures", headers=headers)
        api_row = _sv_row(got.json().get("rows")) if got.status_code == 200 else None
        if api_row is None or api_row.get("count_12m") != total:
            problems.append(f"API /runs/{meta['run_id']}/figures gives {api_row and api_row.get('count_12m')} "
                            f"(HTTP {got.status_code}), figures.json {total:,}")
    if pack_dir is not None:
        head = pd.read_csv(Path(pack_dir) / "tables" / "headline_rolling_12m.csv")
        hit = head[(head["measure"] == SV_MEASURE)]
        if "period_end" in head:
            hit = hit[hit["period_end"].astype(str) == str(figures["period_end"])]
        counts = sorted({int(round(c)) for c in hit["count"]}) if len(hit) else []
        if counts != [total]:
            problems.append(f"pack headline_rolling_12m gives {SV_MEASURE!r} to {figures['period_end']} as "
                            f"{counts}, figures.json {total:,}")
    return problems


def _class_order_problems(where: str, frame: pd.DataFrame) -> list[str]:
    """Rank 1 in the top class and classes never lighter for a better rank."""
    order = {c: i for i, c in enumerate(area_class_names())}
    f = frame.assign(rank=pd.to_numeric(frame["rank"])).sort_values("rank")
    idx = f["risk_class"].map(order)
    problems = []
    if f["risk_class"].iloc[0] != area_class_names()[0]:
        problems.append(f"{where}: rank 1 is in {f['risk_class'].iloc[0]!r}, not {area_class_names()[0]!r}")
    worse = np.flatnonzero(np.diff(idx.to_numpy(dtype=float)) < 0)
    if len(worse):
        i = worse[0]
        problems.append(f"{where}: rank {int(f['rank'].iloc[i])} is in {f['risk_class'].iloc[i]!r} but rank "
                        f"{int(f['rank'].iloc[i + 1])} in {f['risk_class'].iloc[i + 1]!r}")
    return problems


def ogc_base(run_id: str | None) -> str:
    """The OGC API of one run (``/ogc/runs/<id>``), or of the published run (``/ogc``) when None."""
    return "/ogc" if run_id is None else f"/ogc/runs/{run_id}"


def ogc_features(client, headers, layer: str, run_id: str | None = None) -> list[dict]:
    got = client.get(f"{ogc_base(run_id)}/collections/{layer}/items", params={"limit": 10000}, headers=headers)
    if got.status_code != 200:
        raise AssertionError(f"/ogc/collections/{layer}/items: HTTP {got.status_code} {got.text[:200]}")
    return got.json()["features"]


def check_classes(run_dir: Path, *, client=None, headers=None, run_id: str | None = None) -> list[str]:
    """Classes follow the ranks: rank 1 in the top class on the map, in the GeoPackage, the CSV and
    the OGC API, and no better-ranked place in a lighter class (lead and beside rankings)."""
    run_dir = Path(run_dir)
    problems = []
    colours = map_colours((run_dir / "map.html").read_text(encoding="utf-8"))
    from reports.layers import TOP_AREA_COLOURS

    for layer in layers_present(run_dir):
        gpkg = pyogrio.read_dataframe(run_dir / "layers.gpkg", layer=layer, read_geometry=False)
        problems += _class_order_problems(f"layers.gpkg {layer}", gpkg)
        csv = run_dir / "csv" / f"{layer}.csv"
        if csv.is_file():
            problems += _class_order_problems(f"csv/{layer}.csv", pd.read_csv(csv))
        if client is not None:
            props = pd.DataFrame([f["properties"] for f in ogc_features(client, headers, layer, run_id)])
            problems += _class_order_problems(f"OGC {layer}", props)
        if layer in colours and colours[layer].lower() != TOP_AREA_COLOURS[0].lower():
            problems.append(f"map.html {layer}: rank 1 is coloured {colours[layer]}, not the top class "
                            f"{TOP_AREA_COLOURS[0]}")
        elif layer not in colours:
            problems.append(f"map.html: no choropleth of {layer} with a rank 1 found")
    return problems


def check_tops(run_dir: Path) -> list[str]:
    """The map's numbered places == the briefing's top 10 == the ranked layer's top 10, for the lead
    and the beside ranking, and each number sits inside its place."""
    run_dir = Path(run_dir)
    markers = map_markers((run_dir / "map.html").read_text(encoding="utf-8"))
    tops = briefing_tops(briefing_soup(run_dir))
    problems = []
    for layer in layers_present(run_dir):
        gdf = pyogrio.read_dataframe(run_dir / "layers.gpkg", layer=layer).to_crs(4326)
        gdf = gdf.assign(rank=pd.to_numeric(gdf["rank"])).sort_values(["rank", "unit_id"])
        want = [(int(r), str(u)) for r, u in zip(gdf["rank"].head(TOP_N), gdf["unit_id"].head(TOP_N), strict=True)]
        got_map = [(n, u) for n, u, _, _ in markers.get(layer, [])]
        if got_map != want:
            problems.append(f"map.html numbers of {layer} {got_map} != layers.gpkg top {TOP_N} {want}")
        if tops.get(layer) != want:
            problems.append(f"briefing top list of {layer} {tops.get(layer)} != layers.gpkg top {TOP_N} {want}")
        shape = dict(zip(gdf["unit_id"].astype(str), gdf.geometry, strict=True))
        from shapely.geometry import Point

        for n, unit, lon, lat in markers.get(layer, []):
            if unit in shape and not shape[unit].buffer(1e-6).contains(Point(lon, lat)):
                problems.append(f"map.html number {n} of {layer} is not inside {unit}")
    return problems


def check_records(run_dir: Path, *, client=None, headers=None, run_id: str | None = None) -> list[str]:
    """Each output's data period, model version and source are run.json's (the beside forecast's own
    for its layer and section)."""
    run_dir = Path(run_dir)
    meta = run_meta(run_dir)
    problems = []
    soup = briefing_soup(run_dir)
    head = " ".join(soup.select_one("#header .meta").get_text(" ", strip=True).split())
    for want in (f"data {period_of(meta).replace('/', ' to ')}", f"model {meta['model_version']}"):
        if want not in head:
            problems.append(f"briefing header {head!r} lacks {want!r}")
    caveat = " ".join(soup.select_one("#caveats").get_text(" ", strip=True).split()) if soup.select_one("#caveats") \
        else ""
    for m in re.finditer(r"Data period (\d{4}-\d{2}) to (\d{4}-\d{2})", caveat):
        if f"{m.group(1)}/{m.group(2)}" != period_of(meta):
            problems.append(f"briefing caveat says data period {m.group(1)} to {m.group(2)}, run.json "
                            f"{period_of(meta)}")
    title = BeautifulSoup((run_dir / "map.html").read_text(encoding="utf-8"), "html.parser").select_one(
        "#svrisk-title")
    title_text = " ".join(title.get_text(" ", strip=True).split()) if title else ""
    for layer in layers_present(run_dir):
        rec = layer_record(meta, layer)
        gpkg = pyogrio.read_dataframe(run_dir / "layers.gpkg", layer=layer, read_geometry=False)
        for col, want in (("model_version", str(rec["model_version"])), ("data_period", period_of(rec)),
                          ("run_id", meta["run_id"])):
            got = sorted(set(gpkg[col].astype(str)))
            if got != [want]:
                problems.append(f"layers.gpkg {layer}.{col} is {got}, run.json says {want!r}")
            csv = run_dir / "csv" / f"{layer}.csv"
            if csv.is_file():
                got = sorted(set(pd.read_csv(csv, usecols=[col])[col].astype(str)))
                if got != [want]:
                    problems.append(f"csv/{layer}.csv {col} is {got}, run.json says {want!r}")
        period = period_of(rec).replace("/", " to ")
        for want in (f"data {period}", f"model {rec['model_version']}"):
            if want.lower() not in title_text.lower():
                problems.append(f"map.html title lacks {want!r} ({layer}): {title_text!r}")
        if layer == BESIDE:
            sec = soup.select_one("#current")
            text = " ".join(sec.get_text(" ", strip=True).split()) if sec else ""
            for want in (f"{rec['data_period']['start']} to {rec['data_period']['end']}",
                         f"model {rec['model_version']}", f"forecast for {rec['cutoff']}"):
                if want not in text:
                    problems.append(f"briefing #current lacks {want!r}")
        if client is not None:
            props = pd.DataFrame([f["properties"] for f in ogc_features(client, headers, layer, run_id)])
            for col, want in (("model_version", str(rec["model_version"])), ("data_period", period_of(rec))):
                got = sorted(set(props[col].astype(str)))
                if got != [want]:
                    problems.append(f"OGC {layer}.{col} is {got}, run.json says {want!r}")
    figures = json.loads((run_dir / "figures.json").read_text()) if (run_dir / "figures.json").is_file() else None
    if figures and "source" in figures:
        rec = layer_record(meta, BESIDE if figures.get("units") == (meta.get("current") or {}).get("units")
                           and figures.get("units") != meta.get("units") else LEAD)
        if figures["source"] != rec["data_period"].get("source", figures["source"]):
            problems.append(f"figures.json source {figures['source']!r}, run.json "
                            f"{rec['data_period'].get('source')!r}")
        if figures.get("units") != rec.get("units"):
            problems.append(f"figures.json units {figures.get('units')!r}, run.json {rec.get('units')!r}")
    if client is not None:
        got = client.get(f"/runs/{meta['run_id']}", headers=headers)
        if got.status_code == 200:
            body = got.json()
            api_meta = body.get("meta", body)
            for key in ("model_version", "cutoff"):
                if key in api_meta and str(api_meta[key]) != str(meta[key]):
                    problems.append(f"API /runs/{meta['run_id']} {key} {api_meta[key]!r}, run.json {meta[key]!r}")
    return problems


def check_ogc_metadata(client, headers=None, layers=(LEAD, BESIDE), run_id: str | None = None) -> list[str]:
    """Each OGC collection's title, temporal extent and model version match its features' properties."""
    problems = []
    base = ogc_base(run_id)
    listed = {c["id"]: c for c in client.get(f"{base}/collections", headers=headers).json()["collections"]}
    for layer in layers:
        if layer not in listed:
            continue
        doc = client.get(f"{base}/collections/{layer}", headers=headers).json()
        props = pd.DataFrame([f["properties"] for f in ogc_features(client, headers, layer, run_id)])
        models = sorted(set(props["model_version"].astype(str)))
        periods = sorted(set(props["data_period"].astype(str)))
        if doc.get("title") in (None, "", layer):
            problems.append(f"OGC {layer}: title is {doc.get('title')!r}, the raw id")
        if len(models) != 1 or f"model {models[0]}" not in doc.get("description", ""):
            problems.append(f"OGC {layer}: description {doc.get('description')!r} vs features' model {models}")
        start, end = doc["extent"]["temporal"]["interval"][0]
        if len(periods) != 1 or f"{start[:7]}/{end[:7]}" != periods[0]:
            problems.append(f"OGC {layer}: temporal extent {start}..{end} vs features' data period {periods}")
        if "units" in props and props["units"].nunique() == 1 and str(props["units"].iloc[0]) not in doc["title"]:
            problems.append(f"OGC {layer}: title {doc['title']!r} does not name its units {props['units'].iloc[0]}")
    return problems


def check_all(run_dir: Path, *, client=None, headers=None, pack_dir: Path | None = None,
              published: bool = False) -> list[str]:
    """Every check above on one run; the API and OGC ones when a ``client`` is given (over the run's
    ``out`` folder: the run by its id, or as the published run when ``published``)."""
    run_id = None if published else run_meta(run_dir)["run_id"]
    problems = (check_totals(run_dir, client=client, headers=headers, pack_dir=pack_dir)
                + check_classes(run_dir, client=client, headers=headers, run_id=run_id) + check_tops(run_dir)
                + check_records(run_dir, client=client, headers=headers, run_id=run_id))
    if client is not None:
        problems += check_ogc_metadata(client, headers, run_id=run_id)
    return problems
