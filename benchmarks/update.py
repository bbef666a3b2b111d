"""What `svrisk update` costs beyond the download itself, and how many requests police.uk splitting takes.

Usage: python -P benchmarks/update.py [REAL_DATA_DIR]   (default ../shared/data)

Serves the real data from the test suite's local stand-in publishers (127.0.0.1) and prints
JSON with ratios against a baseline measured in the same run:

- ``lsoa``: the Met's LSOA release (546 KB, 107,376 rows once melted) fetched three ways:
  a plain httpx download to a file (the baseline), ``update_folder`` placing it (download,
  check with the loader, place, manifest), and ``update_folder`` again when nothing is new
  (one ``package_show`` request, no download).
- ``police``: the police.uk API month 2024-04 for Barnet (2,784 records), with the API's
  real limit (10,000 a polygon: no split) and with a limit of 1,000 (forcing quadrant splits):
  requests made and seconds, at police.uk's rate limit (15/s, burst 30).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "_support"))

from publishers import crime_record, serve  # noqa: E402

from sources.fetch import FetchOptions  # noqa: E402
from sources.update import Endpoints, update_folder  # noqa: E402

LSOA = "crime/barnet_mps_lsoa_crime_monthly_202403_202602.csv"
API = "crime/barnet_policeuk_api_street_crimes_2024-04.csv"
PUBLISHED = "MPS LSOA Level Crime (most recent 24 months).csv"


def timed(func):
    t = time.perf_counter()
    out = func()
    return out, time.perf_counter() - t


def main(real: Path) -> dict:
    work = Path(tempfile.mkdtemp(prefix="svrisk-bench-update-"))
    try:
        data = work / "data"
        (data / "boundaries").mkdir(parents=True)
        shutil.copyfile(real / "boundaries/barnet_borough.gpkg", data / "boundaries/borough.gpkg")
        (data / "catalogue.toml").write_text(
            '[[source]]\nkind = "boundary_borough"\npath = "boundaries/borough.gpkg"\n\n'
            '[[source]]\nname = "Met LSOA"\nkind = "met_lsoa_monthly"\npath = "crime/met-lsoa"\n'
            'update = "london-datastore"\ndataset = "lsoa"\nresource_pattern = "LSOA"\n')
        body = (real / LSOA).read_bytes()
        with serve() as pubs:
            pubs.files[PUBLISHED] = body
            pubs.package("lsoa", [pubs.resource(PUBLISHED, "2026-03-18T08:00:00")])
            ends = Endpoints(f"{pubs.base}/ckan", f"{pubs.base}/police")

            def plain():
                with httpx.stream("GET", f"{pubs.base}/files/{PUBLISHED}") as r, (work / "plain.csv").open("wb") as fh:
                    for chunk in r.iter_bytes():
                        fh.write(chunk)

            _, base_s = timed(plain)
            placed, place_s = timed(lambda: update_folder(data, work / "cache", endpoints=ends))
            downloads = len(pubs.requests_to("/files/"))
            again, again_s = timed(lambda: update_folder(data, work / "cache", endpoints=ends))
            lsoa = {"bytes": len(body), "baseline_plain_download_s": round(base_s, 3),
                    "update_place_s": round(place_s, 3), "update_place_ratio": round(place_s / base_s, 1),
                    "rows_checked": placed["placed"][0]["rows_read"],
                    "nothing_new_s": round(again_s, 3), "nothing_new_ratio": round(again_s / base_s, 2),
                    "nothing_new_downloads": len(pubs.requests_to("/files/")) - downloads}

        api = pd.read_csv(real / API, dtype=str)
        police = {}
        for limit in (10_000, 1_000):
            d = work / f"police-{limit}"
            (d / "boundaries").mkdir(parents=True)
            shutil.copyfile(real / "boundaries/barnet_borough.gpkg", d / "boundaries/borough.gpkg")
            (d / "catalogue.toml").write_text(
                '[[source]]\nname = "police.uk"\nkind = "policeuk_api"\npath = "crime/api"\n'
                'update = "police-uk-api"\npolygon = "boundaries/borough.gpkg"\n')
            with serve() as pubs:
                pubs.months, pubs.max_per_polygon = ["2024-04"], limit
                pubs.crimes = [crime_record(int(r.id), r.month, float(r.longitude), float(r.latitude), r.category)
                               for r in api.itertuples()]
                report, secs = timed(lambda d=d, pubs=pubs: update_folder(
                    d, work / "cache-p", endpoints=Endpoints(f"{pubs.base}/ckan", f"{pubs.base}/police"),
                    fetch=FetchOptions()))
                asks = len(pubs.requests_to("/police/crimes-street/all-crime"))
            [entry] = report["placed"]
            police[f"limit_{limit}"] = {"requests": asks, "seconds": round(secs, 2),
                                        "records": entry["release"]["records"],
                                        "rows_accepted": entry["rows_accepted"]}
        police["split_request_ratio"] = round(police["limit_1000"]["requests"] / police["limit_10000"]["requests"], 1)
        police["served_records"] = len(api)
        return {"lsoa": lsoa, "police": police}
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    real = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "data"
    print(json.dumps(main(real), indent=2))
