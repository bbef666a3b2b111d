"""Time the needs-assessment evidence pack against ingesting the same data folder (the baseline).

Usage: python -P benchmarks/assess.py [DATA_DIR [COMPARE_DIR]]
       (default: $SVRISK_REAL_DATA or ../shared/data, and $SVRISK_LONDON_DATA or ../shared/london)
Prints JSON: seconds to ingest the folder (the baseline: what every svrisk command starts from),
to compute the assessment (default hot-spot settings), to write figures, tables and HTML, and to print
the PDF; each as a ratio to the ingest; the pack's page, figure and table counts.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from models.needs.assessment import assess
from reports.needs_pack import write_pack
from reports.pdf import html_to_pdf
from sources.compare import read_compare_folder
from sources.ingest import ingest
from sources.store import Store


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> None:
    data = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SVRISK_REAL_DATA", "../shared/data"))
    compare = Path(sys.argv[2] if len(sys.argv) > 2 else os.environ.get("SVRISK_LONDON_DATA", "../shared/london"))
    if not data.is_dir():
        sys.exit(f"no data folder at {data}")
    with tempfile.TemporaryDirectory() as tmp:
        t_ingest, _ = timed(lambda: ingest(data, Path(tmp) / "store"))
        t_compare, comp = timed(lambda: read_compare_folder(compare) if compare.is_dir() else None)
        t_assess, a = timed(lambda: assess(Store(Path(tmp) / "store"), compare=comp, seed=0))
        t_write, paths = timed(lambda: write_pack(a, Path(tmp) / "pack", pdf=False))
        t_pdf, _ = timed(lambda: html_to_pdf(paths["html"], Path(tmp) / "pack" / "evidence_pack.pdf"))
        figures = len(list((Path(tmp) / "pack" / "figures").glob("*.svg")))
    out = {
        "data": str(data), "compare": str(compare) if comp is not None else None,
        "ingest_s": round(t_ingest, 2), "read_compare_s": round(t_compare, 2), "assess_s": round(t_assess, 2),
        "write_s": round(t_write, 2), "pdf_s": round(t_pdf, 2),
        "ratios_to_ingest": {k: round(v / t_ingest, 2) for k, v in
                             (("read_compare", t_compare), ("assess", t_assess), ("write", t_write), ("pdf", t_pdf))},
        "figures": figures, "tables": len(a.tables), "period_end": a.period_end,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
