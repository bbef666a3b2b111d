"""Load on the HTTP service: 200 concurrent requests per endpoint on loopback; prints JSON.

Starts ``uvicorn`` with ``create_app`` in a child process over an existing runs folder
(default: the settings' ``out/runs``; run ``svrisk run`` first) with a throw-away API key,
then fires ``--requests`` requests at once (asyncio + httpx) at each endpoint: the latest
ranking (JSON page and CSV), layers as GeoJSON, and OGC API items. The baseline is
``/health`` measured the same way in the same run; ``ratio_p50`` is each endpoint's median
latency over the baseline's.

Usage::

    .venv/bin/python benchmarks/api_load.py [--runs-dir out/runs] [--requests 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SERVER = """
import uvicorn
from service.api import create_app
from service.settings import get_settings
uvicorn.run(create_app(get_settings()), host="127.0.0.1", port={port}, log_level="warning")
"""


async def _fire(url: str, n: int, headers: dict, timeout: float) -> dict:
    import httpx

    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(limits=limits, timeout=timeout, headers=headers) as client:
        async def one() -> tuple[float, bool, int]:
            t0 = time.perf_counter()
            try:
                r = await client.get(url)
                body = await r.aread()
                ok = r.status_code == 200 and len(body) > 0
                return time.perf_counter() - t0, ok, len(body)
            except httpx.HTTPError:
                return time.perf_counter() - t0, False, 0

        t0 = time.perf_counter()
        results = await asyncio.wait_for(asyncio.gather(*(one() for _ in range(n))), timeout * 2)
        wall = time.perf_counter() - t0
    lat = np.array([r[0] for r in results]) * 1000
    return {"requests": n, "concurrency": n, "errors": int(sum(not r[1] for r in results)),
            "bytes_per_response": int(max(r[2] for r in results)),
            "p50_ms": round(float(np.percentile(lat, 50)), 1),
            "p95_ms": round(float(np.percentile(lat, 95)), 1),
            "p99_ms": round(float(np.percentile(lat, 99)), 1),
            "wall_s": round(wall, 3), "throughput_rps": round(n / wall, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs-dir", type=Path, default=None, help="folder of run folders")
    ap.add_argument("--requests", type=int, default=200, help="concurrent requests per endpoint")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    args = ap.parse_args(argv)
    if not 1 <= args.requests <= 1000:
        ap.error(f"--requests={args.requests} must be between 1 and 1000")

    from service.keys import KeyStore
    from service.settings import get_settings

    runs_dir = args.runs_dir or get_settings().runs_dir
    if not any(runs_dir.glob("*/run.json")):
        print(json.dumps({"error": f"no runs in {runs_dir}: run `svrisk run` first or pass --runs-dir"}))
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        keys = Path(tmp) / "keys.json"
        key = KeyStore(keys).create("api_load benchmark", "viewer")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {**os.environ, "SVRISK_OUT_DIR": str(runs_dir.resolve().parent),
               "SVRISK_SERVICE__KEYS_FILE": str(keys)}
        proc = subprocess.Popen([sys.executable, "-c", SERVER.format(port=port)], env=env)
        try:
            base = f"http://127.0.0.1:{port}"
            import httpx

            deadline = time.monotonic() + 30
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
            headers = {"X-API-Key": key}
            meta = httpx.get(f"{base}/runs/latest", headers=headers).json()
            small = [n for n in meta["layers"] if n in ("hubs", "areas", "hotspots")]
            urls = {"health (baseline)": "/health",
                    "ranking_json_100": "/runs/latest/ranking?limit=100",
                    "ranking_csv": "/runs/latest/ranking?format=csv",
                    **{f"layer_{n}": f"/runs/latest/layers/{n}" for n in small},
                    "ogc_items_100": "/ogc/collections/ranked_units/items?limit=100"}
            out = {}
            for name, path in urls.items():
                asyncio.run(_fire(base + path, 10, headers, args.timeout))  # warm caches
                out[name] = asyncio.run(_fire(base + path, args.requests, headers, args.timeout))
            base_p50 = max(out["health (baseline)"]["p50_ms"], 1e-3)
            for r in out.values():
                r["ratio_p50"] = round(r["p50_ms"] / base_p50, 2)
            print(json.dumps({"benchmark": "api_load", "run_id": meta["run_id"],
                              "units": len(httpx.get(f"{base}/runs/latest/ranking?format=csv",
                                                     headers=headers).text.splitlines()) - 1,
                              "total_errors": sum(r["errors"] for r in out.values()),
                              "endpoints": out}, indent=2))
            return 0 if all(r["errors"] == 0 for r in out.values()) else 1
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    sys.exit(main())
