"""A local stand-in for the London Datastore (CKAN) and the police.uk API, on 127.0.0.1 only.

It answers the publishers' real response shapes: CKAN ``package_show`` JSON whose
resources point back at this server (CSV and zip files, with ``Range`` support),
and police.uk's ``crimes-street-dates``, ``crimes-street/all-crime``, ``stops-street``
and ``stops-force`` JSON, including police.uk's 503 for a polygon holding more than
``max_per_polygon`` records and a 429 with ``Retry-After``. Faults are switched on per
test: a file cut short after some bytes (``cut``), a file that stalls mid-body
(``stall``), malformed JSON for a path (``malformed``). Every request is logged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ingest_fixtures import write_boundaries
from shapely import Point, Polygon

WARD_CODES = ("E05000001", "E05000002")
CATALOGUE = """
[catalogue]
name = "fixture"

[[source]]
name = "lsoa boundaries"
kind = "boundary_lsoa2011"
path = "boundaries/lsoa2011.gpkg"

[[source]]
name = "Met ward crime"
kind = "met_ward_monthly"
path = "crime/met-ward"
update = "london-datastore"
dataset = "mps-ward-crime"
resource_pattern = "Ward Level Crime"
"""


@dataclass
class Publishers:
    packages: dict[str, dict] = field(default_factory=dict)  # CKAN dataset id -> package_show "result"
    files: dict[str, bytes] = field(default_factory=dict)  # /files/<name> -> body
    crimes: list[dict] = field(default_factory=list)  # police.uk crimes-street records (all months)
    stops: list[dict] = field(default_factory=list)  # police.uk stops records (all months)
    months: list[str] = field(default_factory=list)  # crimes-street-dates
    force: str = "metropolitan"
    max_per_polygon: int = 10_000
    ranges: bool = True  # honour Range requests
    cut: dict[str, int] = field(default_factory=dict)  # file -> bytes sent before the connection is dropped
    cut_times: dict[str, int] = field(default_factory=dict)  # file -> how many answers are cut (absent: always)
    stall: set[str] = field(default_factory=set)  # files that stop sending half-way and hang
    malformed: set[str] = field(default_factory=set)  # paths answered with broken JSON
    too_many: int = 0  # the next N police.uk requests are answered 429
    retry_after: str = "1"
    log: list[dict] = field(default_factory=list)
    base: str = ""

    def resource(self, name: str, modified: str, rid: str | None = None, **extra) -> dict:
        """A CKAN resource entry for ``/files/<name>``."""
        return {"id": rid or name, "name": name, "url": f"{self.base}/files/{urllib.parse.quote(name)}",
                "format": name.rsplit(".", 1)[-1].upper(), "last_modified": modified, "created": modified, **extra}

    def package(self, dataset: str, resources: list[dict]) -> None:
        self.packages[dataset] = {"name": dataset, "title": dataset, "license_title": "UK Open Government Licence (OGL v3)",
                                  "organization": {"title": "Metropolitan Police Service"}, "resources": resources}

    def requests_to(self, prefix: str) -> list[dict]:
        return [r for r in self.log if r["path"].startswith(prefix)]


def _poly(text: str) -> Polygon:
    pts = [tuple(float(v) for v in p.split(",")) for p in text.split(":")]
    return Polygon([(lng, lat) for lat, lng in pts])


def _handler(state: Publishers):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def _send(self, status: int, body: bytes, ctype: str = "application/json", headers: dict | None = None):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, path: str, value) -> None:
            body = b'{"result": [1, 2' if path in state.malformed else json.dumps(value).encode()
            self._send(200, body)

        def do_GET(self):  # noqa: N802 - http.server's name
            url = urllib.parse.urlparse(self.path)
            q = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
            state.log.append({"path": urllib.parse.unquote(url.path), "query": q, "range": self.headers.get("Range"),
                              "time": time.monotonic()})
            if url.path == "/ckan/package_show":
                pkg = state.packages.get(q.get("id", ""))
                if pkg is None:
                    return self._send(404, json.dumps({"success": False, "error": {"message": "Not found"}}).encode())
                return self._json(url.path, {"success": True, "result": pkg})
            if url.path.startswith("/files/"):
                return self._file(urllib.parse.unquote(url.path[len("/files/"):]))
            if url.path.startswith("/police/"):
                return self._police(url.path[len("/police"):], q)
            self._send(404, b'{"error": "not found"}')

        def _file(self, name: str):
            body = state.files.get(name)
            if body is None:
                return self._send(404, b"not found", "text/plain")
            start = 0
            rng = self.headers.get("Range")
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            if self.headers.get("If-Range") not in (None, etag):
                rng = None  # the file changed since the client began: the whole of it
            if rng and state.ranges and rng.startswith("bytes="):
                start = int(rng[6:].split("-")[0])
                if start >= len(body):
                    return self._send(416, b"", "text/plain", {"Content-Range": f"bytes */{len(body)}"})
            chunk = body[start:]
            self.send_response(206 if start else 200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(chunk)))
            self.send_header("Accept-Ranges", "bytes" if state.ranges else "none")
            self.send_header("ETag", etag)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.end_headers()
            if name in state.stall:
                self.wfile.write(chunk[: len(chunk) // 2])
                self.wfile.flush()
                time.sleep(60)
                return
            if name in state.cut and state.cut_times.get(name, 1) > 0:
                if name in state.cut_times:
                    state.cut_times[name] -= 1
                self.wfile.write(chunk[: state.cut[name]])
                self.wfile.flush()
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(2)
                return
            self.wfile.write(chunk)

        def _police(self, path: str, q: dict):
            if state.too_many > 0:
                state.too_many -= 1
                return self._send(429, b"Too Many Requests", "text/plain", {"Retry-After": state.retry_after})
            if path == "/crimes-street-dates":
                return self._json(path, [{"date": m, "stop-and-search": [state.force]} for m in reversed(state.months)])
            month = q.get("date")
            if path in ("/crimes-street/all-crime", "/stops-street"):
                records = state.crimes if path.startswith("/crimes") else state.stops
                area = _poly(q["poly"])
                inside = [r for r in records if _month(r) == month and area.covers(
                    Point(float(r["location"]["longitude"]), float(r["location"]["latitude"])))]
                if len(inside) > state.max_per_polygon:
                    return self._send(503, b"", "text/html")
                return self._json(path, inside)
            if path == "/stops-force":
                if q.get("force") != state.force:
                    return self._send(404, b"", "text/html")
                return self._json(path, [r for r in state.stops if _month(r) == month])
            self._send(404, b'{"error": "not found"}')

    return Handler


def _month(record: dict) -> str:
    return str(record.get("month") or record.get("datetime", ""))[:7]


@contextlib.contextmanager
def serve(state: Publishers | None = None):
    """Run the publishers on a free port of 127.0.0.1; yields the state (``state.base`` is the URL)."""
    state = state or Publishers()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def crime_record(rid: int, month: str, lon: float, lat: float, category: str = "violent-crime") -> dict:
    """One crimes-street record in police.uk's shape."""
    return {"category": category, "location_type": "Force", "context": "", "persistent_id": f"{rid:064x}",
            "id": rid, "location_subtype": "", "month": month,
            "location": {"latitude": f"{lat:.6f}", "longitude": f"{lon:.6f}",
                         "street": {"id": 1000 + rid, "name": "On or near Fixture Street"}},
            "outcome_status": {"category": "Under investigation", "date": month}}


def stop_record(month: str, lon: float | None, lat: float | None, day: int = 1) -> dict:
    """One stops-street / stops-force record in police.uk's shape."""
    location = None if lon is None else {"latitude": f"{lat:.6f}", "longitude": f"{lon:.6f}",
                                         "street": {"id": 1, "name": "On or near Fixture Street"}}
    return {"age_range": "18-24", "outcome": "A no further action disposal", "involved_person": True,
            "self_defined_ethnicity": "Other ethnic group - Not stated", "gender": "Male",
            "legislation": "Misuse of Drugs Act 1971 (section 23)", "outcome_linked_to_object_of_search": None,
            "datetime": f"{month}-{day:02d}T12:00:00+00:00", "outcome_object": {"id": "", "name": ""},
            "location": location, "object_of_search": "Controlled drugs", "operation": None,
            "officer_defined_ethnicity": "White", "type": "Person search", "operation_name": None,
            "removal_of_more_than_outer_clothing": False}


def ward_release(months: list[str], base: int = 3) -> bytes:
    """A London Datastore ward table (wide layout): two wards, two violence categories, one column a month."""
    header = ["WardCode", "WardName", "MajorText", "MinorText"] + [m.replace("-", "") for m in months]
    lines = [",".join(header)]
    for w, code in enumerate(WARD_CODES):
        for c, minor in enumerate(("Violence with Injury", "Violence without Injury")):
            counts = [str(base + w + c + i) for i in range(len(months))]
            lines.append(",".join([code, f"Ward {w}", "Violence Against the Person", minor, *counts]))
    return ("\n".join(lines) + "\n").encode()


def folder(tmp_path, extra: str = "", old: bytes | None = None):
    data = tmp_path / "data"
    write_boundaries(data / "boundaries")
    (data / "catalogue.toml").write_text(CATALOGUE + extra)
    if old is not None:
        (data / "crime" / "met-ward").mkdir(parents=True)
        (data / "crime" / "met-ward" / "MPS Ward Level Crime 2024-01-15.csv").write_bytes(old)
    return data


def publish_ward(pubs: Publishers, body: bytes, modified: str, name: str = "MPS Ward Level Crime (most recent 24 months).csv"):
    pubs.files[name] = body
    pubs.package("mps-ward-crime", [pubs.resource("MPS Ward Level Crime (Historical).csv", "2023-01-01T00:00:00"),
                                    pubs.resource(name, modified, rid="ward-24m")])
    pubs.files.setdefault("MPS Ward Level Crime (Historical).csv", ward_release(["2020-01"]))


def catalogue_from_discovery(data, updatable: dict[str, dict]) -> str:
    """A ``catalogue.toml`` listing every source ``discover`` finds in ``data``, except that a source
    whose path is a key of ``updatable`` becomes the folder source those keys describe
    (``{"crime/met-lsoa/x.csv": {"path": "crime/met-lsoa", "update": ...}}``)."""
    from sources.catalogue import discover

    lines = ["[catalogue]", f'name = "{data.name}"', ""]
    done = set()
    for s in discover(data).sources:
        rel = s.path.relative_to(data).as_posix()
        entry = {"name": s.name, "kind": s.kind, "path": rel, **s.options}
        if rel in updatable:
            entry = {"name": s.name, "kind": s.kind, **updatable[rel]}
        key = (entry["path"], entry.get("layer"), entry.get("member"), entry["kind"])
        if key in done:
            continue
        done.add(key)
        lines.append("[[source]]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in entry.items()]
        lines.append("")
    return "\n".join(lines)
