"""Time loading the 30 months of police.uk street crime, against a bare pandas read of the same file.

Usage: python benchmarks/ingest.py [DATA_DIR]   (default: $SVRISK_REAL_DATA or ../shared/data)
Prints JSON: seconds and rows/second for svrisk's validated load and for plain pandas.read_csv
(the baseline: no validation, no projection), the ratio, and a whole-folder ingest time.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from features.sources.catalogue import load_catalogue
from features.sources.ingest import ingest
from features.sources.loaders.context import IngestContext
from features.sources.loaders.crime import load_policeuk_api, load_policeuk_street
from features.sources.taxonomy import load_taxonomy


def best_of(fn, repeat=3):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    data = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SVRISK_REAL_DATA", "../shared/data"))
    if not data.is_dir():
        sys.exit(f"no data folder at {data}")
    catalogue = load_catalogue(data)
    crime = [s for s in catalogue.sources if s.kind in ("policeuk_api", "policeuk_street")]
    source = max(crime, key=lambda s: s.path.stat().st_size if s.path.is_file() else 0)
    loader = load_policeuk_api if source.kind == "policeuk_api" else load_policeuk_street
    taxonomy = load_taxonomy()
    ours, result = best_of(lambda: loader(source.path, IngestContext(taxonomy)))
    base, frame = best_of(lambda: pd.read_csv(source.path))
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        report = ingest(data, Path(tmp) / "store")
        whole = time.perf_counter() - t
    months = result.frame["month"].nunique()
    print(json.dumps({
        "file": str(source.path), "months": int(months), "rows": result.rows_read,
        "svrisk_load_s": round(ours, 3), "svrisk_rows_per_s": round(result.rows_read / ours),
        "pandas_read_csv_s": round(base, 3), "pandas_rows_per_s": round(len(frame) / base),
        "ratio_svrisk_over_pandas": round(ours / base, 2),
        "whole_folder_ingest_s": round(whole, 2), "whole_folder_rows": report["totals"]["rows_read"],
    }, indent=2))


if __name__ == "__main__":
    main()
