"""How fast the command line refuses a wrong --data, --cutoff or --units; prints JSON.

Each case runs ``svrisk`` in a fresh subprocess (the whole start-up: interpreter, imports,
settings, the check) ``--repeat`` times (default 3); the figure is the median wall time,
and each refusal's ratio against ``svrisk --help`` measured in the same run. The target
(issue 26) is a refusal in under 2 s on the development machine, before any progress line:
``progress_lines`` counts the lines on stderr that are not the one ``error:`` line.
``import_pipeline`` (importing :mod:`service.pipeline`, what a refusal paid before the
checks came first) gives the scale. ``peak_rss_mb`` is each process's own peak resident memory
(``wait4``), median of the repeats: ``--help`` imports no pandas (issue 32).

Usage::

    .venv/bin/python -P benchmarks/cli_start.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def svrisk() -> list[str]:
    """The installed console script beside this interpreter, else ``python -m`` the CLI's entry point."""
    script = Path(sys.executable).with_name("svrisk")
    if script.is_file():
        return [str(script)]
    found = shutil.which("svrisk")
    return [found] if found else [sys.executable, "-c", "from service.cli import main; main()"]


def timed(args: list[str], env: dict, repeat: int, command: list[str] | None = None) -> dict:
    times, peaks, last = [], [], None
    for _ in range(repeat):
        start = time.perf_counter()
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err_file:
            proc = subprocess.Popen([*(command or svrisk()), *args], stdout=out, stderr=err_file, env=env)
            _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak resident memory
            proc.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err_file.seek(0)
            last = subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err_file.read())
        times.append(time.perf_counter() - start)
        peaks.append(usage.ru_maxrss / 1024)
    err = last.stderr.strip().splitlines()
    return {"args": args, "median_s": round(statistics.median(times), 3), "runs_s": [round(t, 3) for t in times],
            "peak_rss_mb": round(statistics.median(peaks)),
            "exit_code": last.returncode, "error": next((ln for ln in err if ln.startswith("error:")), None),
            "progress_lines": sum(1 for ln in err if not ln.startswith("error:"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "SVRISK_OUT_DIR": str(Path(tmp) / "out")}
        cases = {
            "help": ["--help"],
            "bad_data": ["run", "--data", str(Path(tmp) / "no-such-folder")],
            "bad_cutoff": ["run", "--cutoff", "2024-13"],
            "bad_units": ["run", "--units", "lsoa2099"],
        }
        results = {name: timed(args, env, opts.repeat) for name, args in cases.items()}
        # for scale: what every refusal paid before the checks came first (the pipeline's imports)
        results["import_pipeline"] = timed(["-c", "import service.pipeline"], env, opts.repeat, [sys.executable])
        wrote = (Path(tmp) / "out").exists()
    base, base_mb = results["help"]["median_s"], results["help"]["peak_rss_mb"]
    for r in results.values():
        r["ratio_to_help"] = round(r["median_s"] / base, 2)
        r["peak_rss_ratio_to_help"] = round(r["peak_rss_mb"] / base_mb, 2)
    print(json.dumps({"baseline": "svrisk --help", "repeat": opts.repeat, "cpus": os.cpu_count(),
                      "load_1min": round(os.getloadavg()[0], 2), "wrote_output": wrote, "cases": results}, indent=1))


if __name__ == "__main__":
    main()
