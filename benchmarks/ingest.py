"""Ingest costs, each against a bare pandas read of the same files measured in the same run.

Usage: python benchmarks/ingest.py [--files N] [--alone-files N] [--line-mb MB] [--real [DATA_DIR]] [--columns N] [--only many_files|wide_header|small_ingest]

Prints JSON:

* ``small_ingest``: peak memory (RSS, MB) of ingesting the demo borough, in a fresh process,
  through the library (``sources.ingest.ingest``) and through ``svrisk ingest``,
  as ratios to a fresh process that only runs ``pandas.read_csv`` on the same CSV files;
  and what importing the CLI alone costs (most of a small ingest's peak).
* ``small_ingest_only`` (``--only small_ingest``, a quick run): the same peaks on the demo borough and
  on ``--files`` one-row police.uk files (e.g. ``--files 500``), each as a ratio to pandas.read_csv
  of the same files, and the peak of importing what ``svrisk ingest`` imports (``service.stores``)
  against importing ``service.pipeline`` (what it imported before issue 32: the models with it).
* ``long_line``: the same folder plus a police.uk file whose last line is ``--line-mb`` MB
  without a newline: peak memory as a ratio to pandas.read_csv of the same files, and to the
  small ingest (the line is bounded by ``max_field_chars`` before it is held: ~1x).
* ``many_files``: seconds to ingest ``--files`` one-row police.uk files, against
  pandas.read_csv of each file, and per file against an ingest that checks every file alone
  (``BATCH_FILE_BYTES = 0``, how every file was checked before small files were batched) on the
  first ``--alone-files`` of them (the whole folder that way takes minutes).
* ``wide_header``: seconds of ``svrisk ingest`` (a fresh process) on a police.uk file of one row
  and ``--columns`` columns (refused from its header: the exit code and the line are shown), and
  of 4,000 columns (read), as ratios to the same file with its 12 columns.
* ``real_data`` (with ``--real``): the validated load of the largest police.uk file of a real
  data folder against pandas.read_csv of it, and a whole-folder ingest time.

Every input is generated in a temporary folder and removed afterwards; nothing is committed.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STREET = ["Crime ID", "Month", "Reported by", "Falls within", "Longitude", "Latitude", "Location", "LSOA code",
          "LSOA name", "Crime type", "Last outcome category", "Context"]

# Run in a fresh interpreter: its peak RSS is the peak of that one job. Read as VmHWM, the peak of
# this process's own memory: ru_maxrss carries over the parent's RSS at fork (through exec), so once
# this script had imported the demo generator (~220 MB) every child reported at least that.
CHILD = """
import json, re, resource, sys, time
t = time.perf_counter()
{body}
try:
    peak_kb = int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
except OSError:  # no /proc: ru_maxrss, which may include the parent's
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"peak_mb": peak_kb / 1024, "seconds": time.perf_counter() - t}}))
"""
READ_CSVS = ("import pandas as pd\nfrom pathlib import Path\n"
             "for p in sorted(Path({data!r}).rglob('*.csv')):\n    pd.read_csv(p, low_memory=False)\n")
LIBRARY = "from sources.ingest import ingest\ningest({data!r}, {store!r})\n"
ALONE = "import sources.loaders.crime as crime\ncrime.BATCH_FILE_BYTES = 0\n" + LIBRARY
CLI = ("from service.cli import main\nsys.argv = ['svrisk', 'ingest', '--data', {data!r}, '--out', {store!r}]\n"
       "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n")
IMPORT_CLI = "import service.cli\n"
IMPORT_INGEST_COMMAND = "import service.cli.ingest, service.stores\n"
IMPORT_PIPELINE = "import service.pipeline\n"
HEAVY = ("sklearn", "scipy", "libpysal", "jinja2", "xgboost")
LOADED = ("import service.cli, sys\n"
          "sys.argv = ['svrisk', 'ingest', '--data', {data!r}, '--out', {store!r}]\n"
          "try:\n    service.cli.main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
          "print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r}))))\n")


def child(body: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD.format(body=body)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONHASHSEED": "0"})
    if proc.returncode:
        sys.exit(f"benchmark step failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def peaks(data: Path, store: Path) -> dict:
    base = child(READ_CSVS.format(data=str(data)))
    lib = child(LIBRARY.format(data=str(data), store=str(store / "lib")))
    cli = child(CLI.format(data=str(data), store=str(store / "cli")))
    return {"pandas_read_csv_peak_mb": round(base["peak_mb"]), "ingest_peak_mb": round(lib["peak_mb"]),
            "cli_ingest_peak_mb": round(cli["peak_mb"]),
            "ingest_over_pandas": round(lib["peak_mb"] / base["peak_mb"], 2),
            "cli_ingest_over_pandas": round(cli["peak_mb"] / base["peak_mb"], 2)}


def add_long_line(data: Path, mb: int) -> Path:
    """A police.uk file of two rows whose last line is ``mb`` MB of one field and no newline."""
    path = data / "crime" / "2099-01" / "2099-01-long-street.csv"  # its own folder: a month the demo lacks
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows([STREET, ["a" * 64, "2017-01", "x", "x", "-0.1", "51.5", "On or near X", "",
                                          "", "Robbery", "", ""]])
        fh.write("b" * 64 + ",2017-01,x,x,-0.1,51.5,")
        block = "c" * (1 << 20)
        for _ in range(mb):
            fh.write(block)
    return path


def many_files(root: Path, n: int) -> Path:
    data = root / "many"
    for i in range(n):
        month = f"{2012 + (i // 12) % 10}-{i % 12 + 1:02d}"
        path = data / "crime" / month / f"{month}-f{i:05d}-street.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as fh:
            csv.writer(fh).writerows([STREET, [f"{i:064x}", month, "Fixture", "Fixture", "-0.19", "51.6",
                                               "On or near Fixture Street", "", "", "Robbery", "", ""]])
    return data


CLI_ANY = ("from service.cli import main\nsys.argv = ['svrisk', 'ingest', '--data', {data!r}, '--out', {store!r}]\n"
           "try:\n    main()\nexcept SystemExit as exc:\n    print(json.dumps({{'exit': exc.code}}))\n")


def wide_file(root: Path, extra: int) -> Path:
    """A data folder of one police.uk file of one row with ``extra`` columns past the 12 it has."""
    data = root / f"wide{extra}"
    path = data / "crime" / "2017-01" / "2017-01-wide-street.csv"
    path.parent.mkdir(parents=True)
    row = ["a" * 64, "2017-01", "x", "x", "-0.19", "51.6", "On or near X", "", "", "Robbery", "", ""]
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows([STREET + [f"x{i}" for i in range(extra)], row + ["1"] * extra])
    return data


def wide_header(root: Path, columns: int) -> dict:
    out: dict = {}
    for name, extra in (("plain_12", 0), ("read_4012", 4000), (f"wide_{columns}", columns - 12)):
        data = wide_file(root, extra)
        proc = subprocess.run([sys.executable, "-c", CHILD.format(body=CLI_ANY.format(
            data=str(data), store=str(root / f"store{extra}")))], capture_output=True, text=True)
        lines = proc.stdout.strip().splitlines()
        figures = json.loads(lines[-1])
        code = json.loads(lines[-2])["exit"] if len(lines) > 1 and lines[-2].startswith('{"exit"') else 0
        error = next((ln for ln in proc.stdout.splitlines() + proc.stderr.splitlines() if ln.startswith("error:")), None)
        out[name] = {"seconds": round(figures["seconds"], 2), "peak_mb": round(figures["peak_mb"]), "exit": code,
                     **({"error": error[:160] + "..."} if error else {})}
    base = out["plain_12"]["seconds"]
    for name in out:
        out[name]["over_plain_12"] = round(out[name]["seconds"] / base, 2)
    return out


def real_data(data: Path) -> dict:
    import pandas as pd

    from sources.catalogue import load_catalogue
    from sources.ingest import ingest
    from sources.loaders.context import IngestContext
    from sources.loaders.crime import load_policeuk_api, load_policeuk_street
    from sources.taxonomy import load_taxonomy

    def best_of(fn, repeat=3):
        times, out = [], None
        for _ in range(repeat):
            t = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t)
        return min(times), out

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
    return {"file": str(source.path), "rows": result.rows_read, "svrisk_load_s": round(ours, 3),
            "pandas_read_csv_s": round(base, 3), "ratio_svrisk_over_pandas": round(ours / base, 2),
            "whole_folder_ingest_s": round(whole, 2), "whole_folder_rows": report["totals"]["rows_read"]}


def small_ingest_only(root: Path, n: int) -> dict:
    """Peaks of a small ingest (the demo borough, then ``n`` one-row files) and of the imports it pays."""
    from sources.demo.borough import generate_demo

    out = {"demo": peaks(generate_demo(root / "demo"), root / "s1"),
           f"{n}_files": peaks(many_files(root, n), root / "s2")}
    cli = out[f"{n}_files"]["cli_ingest_peak_mb"]
    service = Path(importlib.util.find_spec("service.pipeline").origin).parent
    command = child(IMPORT_INGEST_COMMAND) if (service / "stores.py").is_file() else None  # since issue 32
    pipeline = child(IMPORT_PIPELINE)
    out["import_pipeline_peak_mb"] = round(pipeline["peak_mb"])
    if command:
        out["import_ingest_command_peak_mb"] = round(command["peak_mb"])
        out["import_ingest_command_over_pipeline"] = round(command["peak_mb"] / pipeline["peak_mb"], 2)
    out["cli_ingest_over_import_pipeline"] = round(cli / pipeline["peak_mb"], 2)
    proc = subprocess.run([sys.executable, "-c", "import json\n" + LOADED.format(
        data=str(root / "many"), store=str(root / "s5"), heavy=HEAVY)], capture_output=True, text=True)
    out["heavy_modules_loaded_by_svrisk_ingest"] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def many_files_case(root: Path, n: int, alone: int) -> dict:
    data = many_files(root, n)
    base = child(READ_CSVS.format(data=str(data)))
    lib = child(LIBRARY.format(data=str(data), store=str(root / "s3")))
    out = {"files": n, "ingest_s": round(lib["seconds"], 2), "pandas_read_csv_s": round(base["seconds"], 2),
           "ingest_over_pandas": round(lib["seconds"] / base["seconds"], 2),
           "ingest_ms_per_file": round(1000 * lib["seconds"] / n, 2)}
    if alone:
        few = many_files(root / "few", min(alone, n))
        one = child(ALONE.format(data=str(few), store=str(root / "s4")))
        per_file = 1000 * one["seconds"] / min(alone, n)
        out.update({"alone_files": min(alone, n), "alone_ms_per_file": round(per_file, 1),
                    "batched_over_alone_per_file": round(out["ingest_ms_per_file"] / per_file, 4)})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--files", type=int, default=5000, help="one-row police.uk files to ingest")
    parser.add_argument("--alone-files", type=int, default=300,
                        help="files ingested with every file checked alone, the baseline per file (0: none)")
    parser.add_argument("--line-mb", type=int, default=300, help="MB of the line without a newline")
    parser.add_argument("--columns", type=int, default=100_012, help="columns of the wide header")
    parser.add_argument("--only", choices=["many_files", "wide_header", "small_ingest"], help="run only this case")
    parser.add_argument("--real", nargs="?", const=os.environ.get("SVRISK_REAL_DATA", "../shared/data"),
                        help="also time a real data folder (default $SVRISK_REAL_DATA or ../shared/data)")
    args = parser.parse_args()
    out: dict = {"load_average": [round(x, 2) for x in os.getloadavg()]}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.only == "small_ingest":
            out["small_ingest_only"] = small_ingest_only(root, args.files)
        if args.only is None:
            from sources.demo.borough import generate_demo

            demo = generate_demo(root / "demo")
            out["small_ingest"] = {"folder": "demo borough", **peaks(demo, root / "s1"),
                                   "import_cli_only_peak_mb": round(child(IMPORT_CLI)["peak_mb"]),
                                   "import_ingest_only_peak_mb": round(child("import sources.ingest")["peak_mb"])}
            add_long_line(demo, args.line_mb)
            long = peaks(demo, root / "s2")
            long["ingest_over_small_ingest"] = round(long["ingest_peak_mb"] / out["small_ingest"]["ingest_peak_mb"], 2)
            long["cli_ingest_over_small_ingest"] = round(long["cli_ingest_peak_mb"]
                                                         / out["small_ingest"]["cli_ingest_peak_mb"], 2)
            out["long_line"] = {"line_mb": args.line_mb, **long}
            (root / "demo").rename(root / "gone")  # free the disk before the next folder
        if args.only in (None, "wide_header"):
            out["wide_header"] = wide_header(root, args.columns)
        if args.only in (None, "many_files"):
            out["many_files"] = many_files_case(root, args.files, args.alone_files)
    if args.real:
        out["real_data"] = real_data(Path(args.real))
    out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
