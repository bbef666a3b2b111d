"""Load and abuse on the HTTP service: keep-alive clients before/after, hostile clients, a full job queue; prints JSON.

Serves an existing runs folder (default: the settings' ``out/runs``; run ``svrisk run``
first) with throw-away API keys, on 127.0.0.1 only, and measures:

1. **load** (``--seconds`` per level, default 20): ``svrisk serve`` in a child process,
   three times in the same run (``--configs``): *before* (one worker process, response cache
   off: how the service answered until issue 32), *shared_socket* (``--workers`` processes,
   default 2, sharing one listening socket, with the per-run response cache, ETag and gzip)
   and *after* (the same with a listening socket per worker, ``service.reuse_port``). At each ``--concurrency`` (default 200
   and 1,000) that many keep-alive connections (a small asyncio HTTP/1.1 client in this
   process, on the same machine: its own cost is in the figures) send requests one after
   another for the given time, each connection cycling through the endpoints: ``/health``
   (the baseline), the published ranking as a JSON page and as CSV, small layers as
   GeoJSON, OGC API items in CRS84 and in EPSG:27700. Per endpoint: requests, errors,
   p50/p99; the ratio of each after-figure to its before- and shared_socket-figure; the
   server's resident memory (all its processes) before and after each level; the connections
   each worker process holds halfway through a level; the load average as each level starts
   (the machine is shared: compare configurations within one run).
2. **hostile** (``--abuse``): the server's memory before and after a 50 MB chunked body
   without a key, ``/health`` latency while 200 clients trickle request heads (slowloris)
   against idle, and how long the slow clients were left connected.
3. **jobs** (``--abuse``): 60 rank jobs posted at once while one job keeps a core busy (a
   stand-in run as real jobs are, in its own process): how many are accepted (202) and
   refused (429), and ``/health`` latency meanwhile against ``/health`` idle.

Usage::

    .venv/bin/python -P benchmarks/api_load.py [--runs-dir out/runs] [--concurrency 200 1000]
        [--seconds 20] [--workers 2] [--abuse]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
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
from live_server import connections_by_worker, send_chunked  # noqa: E402

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


def tree_memory(pid: int) -> dict:
    """Resident memory of a process and its children (the worker processes), in MB."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            todo.extend(int(c) for c in task.read_text().split())
    per = [memory(p) for p in pids if Path(f"/proc/{p}/status").exists()]
    return {"processes": len(per), "rss_mb": round(sum(m["rss_mb"] or 0 for m in per), 1),
            "peak_mb": round(sum(m["peak_mb"] or 0 for m in per), 1)}


async def _request(reader, writer, path: str, key: str) -> tuple[int, bool, int]:
    """One GET on an open connection: (status, whether the server closes it, body bytes)."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {key}\r\n"
                 "Accept-Encoding: gzip\r\n\r\n".encode())
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
    status = int(head[9:12])
    fields = dict(line.split(":", 1) for line in head.split("\r\n")[1:] if ":" in line)
    if fields.get("transfer-encoding", "").strip() == "chunked":
        size = 0
        while True:
            n = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(n + 2)
            size += n
            if n == 0:
                break
    else:
        size = len(await reader.readexactly(int(fields.get("content-length", "0"))))
    return status, fields.get("connection", "").strip() == "close", size


async def _keepalive(port: int, paths: dict, key: str, connections: int, seconds: float,
                     sample=None, sampled: list | None = None) -> dict:
    """``connections`` keep-alive connections, each cycling through ``paths`` for ``seconds``;
    ``sampled`` gets what ``sample()`` returns halfway (run on a thread)."""
    names = list(paths)
    lat = {n: [] for n in names}
    errors = {n: 0 for n in names}
    ready, go = asyncio.Event(), asyncio.Event()
    opened = 0

    async def connect():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await _request(reader, writer, paths[names[0]], key)  # opened and answered once: not timed
        return reader, writer

    async def one(k: int):
        nonlocal opened
        try:
            reader, writer = await connect()
        except (OSError, asyncio.IncompleteReadError, ValueError):
            reader = writer = None
        opened += 1
        if opened == connections:
            ready.set()
        await go.wait()
        deadline = time.monotonic() + seconds
        i = k
        while time.monotonic() < deadline:
            name = names[i % len(names)]
            i += 1
            t0 = time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                status, close, size = await _request(reader, writer, paths[name], key)
                lat[name].append(time.perf_counter() - t0)
                if status != 200 or size == 0:
                    errors[name] += 1
                if close:
                    writer.close()
                    writer = None
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                lat[name].append(time.perf_counter() - t0)
                errors[name] += 1
                if writer is not None:
                    writer.close()
                writer = None
        if writer is not None:
            writer.close()

    tasks = [asyncio.create_task(one(k)) for k in range(connections)]
    await asyncio.wait_for(ready.wait(), 120)
    t0 = time.perf_counter()
    go.set()
    if sample is not None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(seconds / 2)
        sampled.extend(await loop.run_in_executor(None, sample))
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - t0
    out = {n: {"requests": len(lat[n]), "errors": errors[n], **summary(lat[n] or [0.0]),
               "throughput_rps": round(len(lat[n]) / wall, 1)} for n in names}
    return out


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


def start_server(args: list[str], env: dict, port: int, timeout: float = 180) -> subprocess.Popen:
    import httpx

    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            stop(proc)
            raise RuntimeError("the service did not start")
        time.sleep(0.3)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def endpoints(base: str, key: str) -> tuple[dict, dict]:
    import httpx

    headers = {"X-API-Key": key}
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
    return urls, {"run_id": meta["run_id"], "area_name": meta.get("area_name"), "units": meta.get("units")}


def load_phase(label: str, env: dict, service: dict, key: str, levels: list[int], seconds: float) -> dict:
    """One server configuration under each level of keep-alive connections."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    env = {**env, "SVRISK_SERVICE__PUBLIC_URL": base,
           **{f"SVRISK_SERVICE__{k.upper()}": str(v) for k, v in service.items()}}
    proc = start_server([sys.executable, "-c", "from service.cli import main; main()", "serve",
                         "--port", str(port)], env, port)
    try:
        urls, about = endpoints(base, key)
        out = {"service": service, **about, "server_start": tree_memory(proc.pid), "levels": {}}
        import httpx

        with httpx.Client(headers={"X-API-Key": key}, timeout=120) as client:
            for path in urls.values():  # each worker's caches warm, as after a publication
                for _ in range(2 * int(service.get("workers", 1))):
                    client.get(base + path).raise_for_status()
        for c in levels:
            before = tree_memory(proc.pid)
            split: list[int] = []
            load_avg = os.getloadavg()
            r = asyncio.run(_keepalive(port, urls, key, c, seconds,
                                       functools.partial(connections_by_worker, proc.pid, port), split))
            after = tree_memory(proc.pid)
            out["levels"][f"connections_{c}"] = {
                "endpoints": r, "errors": sum(e["errors"] for e in r.values()),
                "requests": sum(e["requests"] for e in r.values()),
                "connections_by_worker": split, "load_average_1_5_15_at_start": [round(x, 1) for x in load_avg],
                "server_before": before, "server_after": after,
                "ratio_rss_after_over_before": round(after["rss_mb"] / max(before["rss_mb"], 1e-3), 2)}
        return out
    finally:
        stop(proc)


def ratios(base: dict, after: dict) -> dict:
    """Per level and endpoint: after's p50, p99 and throughput over ``base``'s; the worst p99 of each."""
    out = {}
    for level in after["levels"]:
        b, a = base["levels"][level], after["levels"][level]
        out[level] = {n: {"p50_ratio": round(e["p50_ms"] / max(b["endpoints"][n]["p50_ms"], 1e-3), 3),
                          "p99_ratio": round(e["p99_ms"] / max(b["endpoints"][n]["p99_ms"], 1e-3), 3),
                          "rps_ratio": round(e["throughput_rps"] / max(b["endpoints"][n]["throughput_rps"], 1e-3), 2)}
                      for n, e in a["endpoints"].items()}
        out[level]["worst_p99_ms_after"] = max(e["p99_ms"] for e in a["endpoints"].values())
        out[level]["worst_p99_ms_base"] = max(e["p99_ms"] for e in b["endpoints"].values())
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs-dir", type=Path, default=None, help="folder of run folders")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[200, 1000],
                    help="keep-alive connections per level (each at most 2,000)")
    ap.add_argument("--seconds", type=float, default=20.0, help="seconds each level lasts")
    ap.add_argument("--workers", type=int, default=2, help="worker processes of the 'after' server")
    ap.add_argument("--configs", nargs="+", choices=["before", "shared_socket", "after"],
                    default=["before", "shared_socket", "after"],
                    help="servers to load, in this order: before (1 worker, no response cache), shared_socket "
                    "(--workers processes on one listening socket, cache), after (a socket per worker, cache)")
    ap.add_argument("--abuse", action="store_true", help="also the hostile and job-queue phases")
    ap.add_argument("--busy-s", type=float, default=20.0, help="seconds the stand-in job keeps a worker busy")
    args = ap.parse_args(argv)
    if not all(1 <= c <= 2000 for c in args.concurrency):
        ap.error(f"--concurrency {args.concurrency}: each must be between 1 and 2000")
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 8192)), hard))

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
        env = {**os.environ, "SVRISK_OUT_DIR": str(runs_dir.resolve().parent), "SVRISK_SERVICE__KEYS_FILE": str(keys),
               "SVRISK_SERVICE__HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S)}
        out: dict = {"benchmark": "api_load", "seconds_per_level": args.seconds, "client": "asyncio HTTP/1.1 "
                     "keep-alive, same machine", "cpus": os.cpu_count(), "load": {}}
        configs = {"before": {"workers": 1, "response_cache_mb": 0},
                   "shared_socket": {"workers": args.workers, "response_cache_mb": 128, "reuse_port": False},
                   "after": {"workers": args.workers, "response_cache_mb": 128, "reuse_port": True}}
        for label in args.configs:
            out["load"][label] = load_phase(label, env, configs[label], viewer, args.concurrency, args.seconds)
        if "after" in out["load"]:
            for base in (b for b in ("before", "shared_socket") if b in out["load"]):
                out[f"after_over_{base}"] = ratios(out["load"][base], out["load"]["after"])
        out["total_errors"] = {k: sum(v["errors"] for v in c["levels"].values()) for k, c in out["load"].items()}
        if args.abuse:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            base = f"http://127.0.0.1:{port}"
            proc = start_server([sys.executable, "-c", SERVER.format(port=port, busy_s=args.busy_s)],
                                {**env, "SVRISK_SERVICE__PUBLIC_URL": base}, port)
            try:
                httpx.get(f"{base}/health").raise_for_status()
                out["hostile"] = hostile_phase(base, proc.pid)
                out["jobs"] = jobs_phase(base, analyst, args.busy_s)
            finally:
                stop(proc)
        print(json.dumps(out, indent=2))
        return 0 if sum(out["total_errors"].values()) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
