"""Load and abuse on the HTTP service: concurrent clients, a full job queue, hostile clients; prints JSON.

Starts the service in a child process with the same uvicorn settings as ``svrisk serve``
(:func:`service.api.server.uvicorn_config`) over an existing runs folder (default: the
settings' ``out/runs``; run ``svrisk run`` first) with throw-away API keys, then measures:

1. **load**: at each ``--concurrency`` (default 200 and 1,000), that many requests at once,
   each on its own connection (asyncio + httpx), at each endpoint: ``/health`` (the
   baseline), the published ranking as a JSON page and as CSV, small layers as GeoJSON,
   and OGC API items in CRS84 and in EPSG:27700. Errors, p50/p95/p99 and the ratio of each
   endpoint's p99 to ``/health``'s at the same concurrency; the server's CPU time per
   request (independent of the client and of other load on the machine) and its ratio to
   ``/health``'s; the server's resident memory before and after each level.
2. **hostile**: the server's memory before and after a 50 MB chunked body without a key,
   ``/health`` latency while 200 clients trickle request heads (slowloris) against idle,
   and how long the slow clients were left connected.
3. **jobs**: 60 rank jobs posted at once while one job keeps a core busy (a stand-in run as
   real jobs are, in its own process): how many are accepted (202) and refused (429), and
   ``/health`` latency meanwhile against ``/health`` idle.

Usage::

    .venv/bin/python -P benchmarks/api_load.py [--runs-dir out/runs] [--concurrency 200 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

# the live-server helpers the tests use (a chunked upload that reads the answer while sending)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "_support"))
from live_server import send_chunked  # noqa: E402

SERVER = """
import functools
from service.api import create_app
from service.api.server import serve
from service.jobs import run_apart
from service.settings import get_settings

# stands in for a rank job, run as real jobs are (service.jobs.job_runners: its own process):
# pure Python for {busy_s} s, keeping one of the machine's cores busy
BUSY = "import time\\nend = time.monotonic() + {busy_s}\\nwhile time.monotonic() < end: sum(i * i for i in range(1000))"
settings = get_settings()
serve(create_app(settings, jobs={{"rank": functools.partial(run_apart, exec, BUSY)}}), settings,
      port={port}, log_level="warning")
"""


HEADER_TIMEOUT_S = 5


def memory(pid: int) -> dict:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = round(int(value.split()[0]) / 1024, 1)
    return {"rss_mb": fields.get("VmRSS"), "peak_mb": fields.get("VmHWM")}


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summary(lat_s: list[float]) -> dict:
    lat = np.asarray(lat_s) * 1000
    return {"p50_ms": round(float(np.percentile(lat, 50)), 1), "p95_ms": round(float(np.percentile(lat, 95)), 1),
            "p99_ms": round(float(np.percentile(lat, 99)), 1), "max_ms": round(float(lat.max()), 1)}


async def _fire(url: str, n: int, headers: dict, timeout: float) -> dict:
    import httpx

    limits = httpx.Limits(max_connections=n, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=timeout, headers=headers) as client:
        async def one() -> tuple[float, bool, int]:
            t0 = time.perf_counter()
            try:
                r = await client.get(url)
                ok = r.status_code == 200 and len(r.content) > 0
                return time.perf_counter() - t0, ok, len(r.content)
            except httpx.HTTPError:
                return time.perf_counter() - t0, False, 0

        t0 = time.perf_counter()
        results = await asyncio.gather(*(one() for _ in range(n)))
        wall = time.perf_counter() - t0
    return {"requests": n, "errors": int(sum(not r[1] for r in results)),
            "bytes_per_response": int(max(r[2] for r in results)), **summary([r[0] for r in results]),
            "wall_s": round(wall, 3), "throughput_rps": round(n / wall, 1)}


def health_series(base: str, n: int, pause: float = 0.02) -> list[float]:
    import httpx

    out = []
    with httpx.Client(timeout=30) as client:
        for _ in range(n):
            t0 = time.perf_counter()
            client.get(f"{base}/health").raise_for_status()
            out.append(time.perf_counter() - t0)
            time.sleep(pause)
    return out


def jobs_phase(base: str, analyst: str, busy_s: float) -> dict:
    import concurrent.futures as cf

    import httpx

    idle = summary(health_series(base, 50))
    with cf.ThreadPoolExecutor(30) as pool:
        posts = list(pool.map(lambda _: httpx.post(f"{base}/jobs/rank", json={}, timeout=30,
                                                   headers={"X-API-Key": analyst}).status_code, range(60)))
    busy = summary(health_series(base, 100))
    return {"jobs_posted": 60, "accepted_202": posts.count(202), "refused_429": posts.count(429),
            "other": len(posts) - posts.count(202) - posts.count(429),
            "health_idle": idle, "health_with_full_queue": busy,
            "ratio_p99_full_over_idle": round(busy["p99_ms"] / max(idle["p99_ms"], 1e-3), 2),
            "job_stand_in": f"pure-Python loop for {busy_s:g} s per job, in its own process as real jobs"}


def slowloris(port: int, clients: int, seconds: float) -> list[float]:
    """Open ``clients`` connections that send a header line every 0.5 s; seconds each stayed open."""
    socks = []
    for _ in range(clients):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        socks.append([s, time.monotonic(), None])
    end = time.monotonic() + seconds
    while time.monotonic() < end and any(e[2] is None for e in socks):
        time.sleep(0.5)
        for entry in socks:
            s, t0, closed = entry
            if closed is not None:
                continue
            try:
                s.sendall(b"X-Slow: 1\r\n")
                readable, _, _ = select.select([s], [], [], 0)
                if readable and s.recv(100) == b"":
                    entry[2] = time.monotonic() - t0
            except OSError:
                entry[2] = time.monotonic() - t0
    for entry in socks:
        entry[0].close()
    return [e[2] if e[2] is not None else seconds for e in socks]


def hostile_phase(base: str, pid: int) -> dict:
    port = int(base.rsplit(":", 1)[1])
    before = memory(pid)
    sent, answer = send_chunked(port, "/jobs/rank", 50 * 2**20)
    time.sleep(0.3)
    after = memory(pid)
    idle = summary(health_series(base, 30))
    stayed: list[float] = []
    slow = threading.Thread(target=lambda: stayed.extend(slowloris(port, 200, 15)))
    slow.start()
    time.sleep(1)
    during = health_series(base, 50)
    slow.join()
    under = summary(during)
    return {
        "chunked_50mb_without_key": {"status": answer.split(b"\r\n", 1)[0].decode("latin-1"),
                                     "mb_accepted_before_close": round(sent / 2**20, 1),
                                     "server_before": before, "server_after": after,
                                     "rss_growth_mb": round(after["rss_mb"] - before["rss_mb"], 1)},
        "slowloris_200_clients": {"health_idle": idle, "health_during": under,
                                  "ratio_p99_during_over_idle": round(under["p99_ms"] / max(idle["p99_ms"], 1e-3), 2),
                                  "longest_connected_s": round(max(stayed), 1),
                                  "header_timeout_s": HEADER_TIMEOUT_S},
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs-dir", type=Path, default=None, help="folder of run folders")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[200, 1000],
                    help="concurrent connections per endpoint (each at most 2,000)")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    ap.add_argument("--busy-s", type=float, default=20.0, help="seconds the stand-in job keeps a worker busy")
    args = ap.parse_args(argv)
    if not all(1 <= c <= 2000 for c in args.concurrency):
        ap.error(f"--concurrency {args.concurrency}: each must be between 1 and 2000")

    import httpx

    from service.keys import KeyStore
    from service.settings import get_settings

    runs_dir = args.runs_dir or get_settings().runs_dir
    if not any(p.is_dir() and not p.name.startswith(".") and (p / "run.json").is_file() for p in
               (runs_dir.iterdir() if runs_dir.is_dir() else [])):
        print(json.dumps({"error": f"no runs in {runs_dir}: run `svrisk run` first or pass --runs-dir"}))
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        keys = Path(tmp) / "keys.json"
        viewer = KeyStore(keys).create("api_load benchmark", "viewer", days=1)
        analyst = KeyStore(keys).create("api_load benchmark jobs", "analyst", days=1)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "SVRISK_OUT_DIR": str(runs_dir.resolve().parent), "SVRISK_SERVICE__KEYS_FILE": str(keys),
               "SVRISK_SERVICE__PUBLIC_URL": base, "SVRISK_SERVICE__HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S)}
        proc = subprocess.Popen([sys.executable, "-c", SERVER.format(port=port, busy_s=args.busy_s)], env=env)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    print(json.dumps({"error": "the service did not start"}))
                    return 1
                time.sleep(0.2)
            headers = {"X-API-Key": viewer}
            published = httpx.get(f"{base}/health").json()["published_run"]
            run = "published" if published else "latest"
            meta = httpx.get(f"{base}/runs/{run}", headers=headers).json()
            ogc = f"/ogc/runs/{meta['run_id']}"
            small = [n for n in meta["layers"] if n in ("hubs", "areas")]
            urls = {"health (baseline)": "/health",
                    "ranking_json_100": f"/runs/{run}/ranking?limit=100",
                    "ranking_csv": f"/runs/{run}/ranking?format=csv",
                    **{f"layer_{n}": f"/runs/{run}/layers/{n}" for n in small},
                    "ogc_items_100": f"{ogc}/collections/ranked_units/items?limit=100",
                    "ogc_items_100_bng": f"{ogc}/collections/ranked_units/items?limit=100"
                                         "&crs=http://www.opengis.net/def/crs/EPSG/0/27700"}
            out: dict = {"benchmark": "api_load", "run_id": meta["run_id"], "area_name": meta.get("area_name"),
                         "units": meta.get("units"), "load": {}}
            start_mem = memory(proc.pid)
            for c in args.concurrency:
                level = {"server_before": memory(proc.pid), "endpoints": {}}
                for name, path in urls.items():
                    asyncio.run(_fire(base + path, 10, headers, args.timeout))  # warm caches
                    used = cpu_s(proc.pid)
                    r = asyncio.run(_fire(base + path, c, headers, args.timeout))
                    # what the server spent per request, whatever the client and the machine's load
                    r["server_cpu_ms_per_request"] = round((cpu_s(proc.pid) - used) / c * 1000, 2)
                    level["endpoints"][name] = r
                base_p99 = max(level["endpoints"]["health (baseline)"]["p99_ms"], 1e-3)
                base_p50 = max(level["endpoints"]["health (baseline)"]["p50_ms"], 1e-3)
                base_cpu = max(level["endpoints"]["health (baseline)"]["server_cpu_ms_per_request"], 1e-3)
                for r in level["endpoints"].values():
                    r["ratio_p99"] = round(r["p99_ms"] / base_p99, 2)
                    r["ratio_p50"] = round(r["p50_ms"] / base_p50, 2)
                    r["ratio_server_cpu"] = round(r["server_cpu_ms_per_request"] / base_cpu, 2)
                level["server_after"] = memory(proc.pid)
                level["errors"] = sum(r["errors"] for r in level["endpoints"].values())
                out["load"][f"concurrency_{c}"] = level
            out["total_errors"] = sum(v["errors"] for v in out["load"].values())
            out["server_memory"] = {"start": start_mem, "after_load": memory(proc.pid)}
            out["hostile"] = hostile_phase(base, proc.pid)
            out["jobs"] = jobs_phase(base, analyst, args.busy_s)  # last: its jobs keep a core busy
            out["server_memory"]["end"] = memory(proc.pid)
            print(json.dumps(out, indent=2))
            return 0 if out["total_errors"] == 0 else 1
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


if __name__ == "__main__":
    sys.exit(main())
