"""How many cores the engine may use, and how many of them are free now.

* :func:`usable_cores`: the cores this process may run on, its affinity mask (``taskset``,
  a container's cpuset) bounded by a cgroup CPU quota (``docker --cpus``, a Kubernetes CPU
  limit): ``os.cpu_count()`` counts the machine's cores, which a container may not have.
* :func:`load_now`: threads of other work wanting a core now.
* :func:`free_cores`: the usable cores less that load, never below 1 (``workers = "auto"``).
* :func:`thread_budget`: threads each of a pool's processes may run (BLAS, OpenMP) so that
  processes x threads never exceed the usable cores.

On a 2-core machine with another job busy on one core, London's XGBoost fit on 2 threads took
58.0 s against 16.5 s on 1 (issue 34): its threads meet at every level of every tree, and the
one sharing a core with the other job holds the other back each time. Pools of processes
lost less but still lost (event sums 10.7 s on 2 workers against 9.7 s on 1), so the engine
treats ``workers`` as the most and sizes each pool and each fit to the cores free as it starts.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Collection
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
"""Where the cgroup file system is mounted; in a container, its own cgroup is seen at the root."""
LOADAVG = Path("/proc/loadavg")
PROC = Path("/proc")


def cgroup_cpu_limit(root: str | Path = CGROUP_ROOT) -> float | None:
    """Cores a cgroup CPU quota allows (quota / period), or None when there is no quota.

    cgroup v2 ``<root>/cpu.max`` (``"150000 100000"``, or ``"max 100000"`` for none), else
    cgroup v1 ``<root>/cpu/cpu.cfs_quota_us`` and ``cpu.cfs_period_us`` (quota -1: none);
    the files joblib's loky reads (``loky.backend.context._cpu_count_cgroup``), here under a
    root that can be named.

    Raises
    ------
    ValueError
        A quota file that does not hold the numbers the kernel writes, naming the file.
    """
    root = Path(root)
    v2, quota_v1, period_v1 = root / "cpu.max", root / "cpu" / "cpu.cfs_quota_us", root / "cpu" / "cpu.cfs_period_us"
    if v2.is_file():
        text = v2.read_text().strip()
        fields = text.split()
        if len(fields) == 2 and fields[0] == "max":
            return None
        if len(fields) == 2 and fields[0].isdigit() and fields[1].isdigit() and int(fields[1]) > 0:
            return int(fields[0]) / int(fields[1])
        raise ValueError(f"{v2}: expected '<quota> <period>' or 'max <period>' (microseconds), got {text!r}")
    if quota_v1.is_file() and period_v1.is_file():
        quota, period = quota_v1.read_text().strip(), period_v1.read_text().strip()
        try:
            quota_us, period_us = int(quota), int(period)
        except ValueError:
            raise ValueError(f"{quota_v1} / {period_v1}: expected whole microseconds, got {quota!r} / {period!r}") from None
        return quota_us / period_us if quota_us > 0 and period_us > 0 else None
    return None


def usable_cores(affinity: Collection[int] | None = None, cgroup_root: str | Path = CGROUP_ROOT) -> int:
    """Cores this process may use: its affinity mask, bounded by a cgroup CPU quota (rounded up), at least 1.

    Parameters
    ----------
    affinity : collection of int, optional
        CPU numbers the process may run on (None: ``os.sched_getaffinity(0)``, or
        ``os.cpu_count()`` CPUs where there is no affinity call).
    cgroup_root : path
        The cgroup mount (:func:`cgroup_cpu_limit`); tests name a folder of their own.

    Examples
    --------
    A quota of 1.5 cores on a 4-core mask: 2 (two processes use the 1.5 cores; one would leave 0.5).

    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp()); _ = (root / "cpu.max").write_text("150000 100000")
    >>> usable_cores({0, 1, 2, 3}, cgroup_root=root)
    2
    """
    if affinity is None:
        try:
            affinity = os.sched_getaffinity(0)
        except AttributeError:  # pragma: no cover - not on Linux
            affinity = range(os.cpu_count() or 1)
    cores = len(affinity)
    limit = cgroup_cpu_limit(cgroup_root)
    if limit is not None:
        cores = min(cores, math.ceil(limit))
    return max(cores, 1)


def _running(stat: Path) -> bool:
    """Whether the process or thread of a ``/proc/.../stat`` file is running (state R); False once it ended."""
    try:
        text = stat.read_text()
    except OSError:  # ended meanwhile
        return False
    return text[text.rfind(")") + 2:][:1] == "R"


def _running_children(proc: Path) -> int:
    """This process's own child processes running now (the pool's forkserver importing its modules)."""
    return sum(_running(proc / pid / "stat") for children in proc.glob("self/task/*/children")
               for pid in children.read_text().split())


def _running_own_threads(proc: Path) -> int:
    """This process's own threads running now, the reader among them (at least 1).

    While a helper thread reads the load, the calling thread is usually running too (it
    starts on the work at once): its own work, not other work.
    """
    return max(sum(_running(stat) for stat in proc.glob("self/task/*/stat")), 1)


def load_now(samples: int = 20, interval: float = 0.01, loadavg: str | Path = LOADAVG, proc: str | Path = PROC) -> float:
    """Threads of other work runnable now: the mean of ``samples`` readings ``interval`` s apart.

    Each reading is the running count of ``/proc/loadavg`` (its fourth field, ``running/all``)
    less this process's own threads running then (the reader, and the caller already at work:
    ``<proc>/self/task/*/stat``), and less this process's child processes running then
    (``<proc>/self/task/*/children``; the local pool's forkserver importing its modules is
    this run's own work, not other work). Not the one-minute load average: that still counts
    a run which finished seconds ago (this process's own previous step, or the previous run of
    a benchmark or of the API's job queue) for most of a minute, and would leave cores idle.
    Where there is no ``/proc/loadavg``, ``os.getloadavg()``'s one-minute figure (0 without it).
    """
    path = Path(loadavg)
    if not path.is_file():
        try:
            return float(os.getloadavg()[0])
        except (AttributeError, OSError):  # pragma: no cover - no load average on this system
            return 0.0
    counts = []
    for i in range(max(int(samples), 1)):
        if i:
            time.sleep(interval)
        text = path.read_text()
        try:
            running = int(text.split()[3].split("/")[0])
        except (IndexError, ValueError):
            raise ValueError(f"{path}: expected '<1m> <5m> <15m> <running>/<all> <last pid>', got {text.strip()!r}") from None
        counts.append(running - _running_own_threads(Path(proc)) - _running_children(Path(proc)))
    return max(sum(counts) / len(counts), 0.0)


def free_cores(cores: int, load: float) -> int:
    """The ``cores`` less ``load`` (other work's runnable threads), rounded half up; at least 1, at most ``cores``.

    >>> free_cores(2, 0.3), free_cores(2, 1.0), free_cores(2, 3.5), free_cores(8, 2.5)
    (2, 1, 1, 6)
    """
    return max(1, min(int(cores), math.floor(cores - max(load, 0.0) + 0.5)))


def thread_budget(processes: int, cores: int) -> int:
    """Threads each of ``processes`` may run so that processes x threads <= ``cores`` (at least 1).

    >>> thread_budget(1, 8), thread_budget(3, 8), thread_budget(2, 2), thread_budget(4, 2)
    (8, 2, 1, 1)
    """
    if int(processes) < 1:
        raise ValueError(f"processes must be >= 1, got {processes!r}")
    return max(1, int(cores) // int(processes))
