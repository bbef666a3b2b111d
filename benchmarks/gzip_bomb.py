"""A gzip that expands to 1 GiB is refused with bounded memory.

Usage: python -P benchmarks/gzip_bomb.py [EXPANDED_MB]   (default 1024)

Builds a data folder with one boundary and a police.uk API ``.csv.gz`` whose rows repeat
until the text reaches EXPANDED_MB (a few MB compressed), then ingests it in a fresh
process with the default settings (``max_table_mb`` = 512) and prints JSON: the peak
memory of that process, the seconds to the refusal and the message, against a baseline
measured in the same run, the same ingest of the same folder with a small valid gzip in
place of the bomb. Target: refused with peak memory under 500 MB.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from sources.ingest import ingest
from sources.readers import DataError
t = time.perf_counter()
try:
    report = ingest(sys.argv[1], sys.argv[2])
    outcome = {"refused": False, "accepted": report["totals"]["accepted"]}
except DataError as exc:
    outcome = {"refused": True, "message": str(exc).split(": ", 1)[1]}
outcome["seconds"] = round(time.perf_counter() - t, 2)
outcome["peak_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
print(json.dumps(outcome))
"""

HEADER = "id,persistent_id,month,category,latitude,longitude,street_name,outcome_category\n"


def rows(n: int, start: int = 0) -> str:
    return "".join(f"{start + i},{(start + i) * 7919:064x},2017-0{1 + i % 9},violent-crime,"
                   f"51.{505000 + i % 900:06d},-0.{125000 + (i * 37) % 900:06d},On or near Fixture Street,\n"
                   for i in range(n))


def write_boundary(folder: Path) -> None:
    import geopandas as gpd
    from shapely.geometry import box

    folder.mkdir(parents=True)
    gpd.GeoDataFrame({"LSOA11CD": ["E01900001"]}, geometry=[box(528000, 178000, 534000, 184000)],
                     crs="EPSG:27700").to_file(folder / "lsoa2011.gpkg", driver="GPKG")


def write_bomb(path: Path, expanded_mb: int) -> int:
    block = rows(200).encode()  # ~28 KB: inside deflate's 32 KB window, so it compresses ~1000x
    target = expanded_mb * 1024 * 1024
    with gzip.open(path, "wb", compresslevel=6) as gz:
        gz.write(HEADER.encode())
        written = len(HEADER)
        while written < target:
            gz.write(block)
            written += len(block)
    return written


def measure(data: Path, out: Path) -> dict:
    proc = subprocess.run([sys.executable, "-P", "-c", CHILD, str(data), str(out)], capture_output=True, text=True)
    if proc.returncode:
        sys.exit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    expanded_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in ("baseline", "bomb"):
            write_boundary(tmp / name / "boundaries")
            (tmp / name / "crime").mkdir()
        (tmp / "baseline" / "crime" / "api.csv.gz").write_bytes(gzip.compress((HEADER + rows(10_000)).encode()))
        t = time.perf_counter()
        expanded = write_bomb(tmp / "bomb" / "crime" / "api.csv.gz", expanded_mb)
        build_s = time.perf_counter() - t
        baseline = measure(tmp / "baseline", tmp / "baseline-store")
        bomb = measure(tmp / "bomb", tmp / "bomb-store")
        compressed = (tmp / "bomb" / "crime" / "api.csv.gz").stat().st_size
    print(json.dumps({
        "bomb": {"compressed_mb": round(compressed / 2**20, 2), "expanded_mb": round(expanded / 2**20),
                 "ratio": round(expanded / compressed), "build_s": round(build_s, 1)},
        "refused": bomb["refused"], "message": bomb.get("message"),
        "bomb_peak_mb": bomb["peak_mb"], "bomb_seconds": bomb["seconds"],
        "baseline_peak_mb": baseline["peak_mb"], "baseline_seconds": baseline["seconds"],
        "baseline_accepted_rows": baseline.get("accepted"),
        "ratio_peak_bomb_over_baseline": round(bomb["peak_mb"] / baseline["peak_mb"], 2),
        "target_peak_mb": 500, "met": bool(bomb["refused"] and bomb["peak_mb"] < 500),
    }, indent=2))


if __name__ == "__main__":
    main()
