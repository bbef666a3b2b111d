"""The service's scheduled update: ``svrisk update --run`` on its data folder, monthly.

``[update] schedule = "monthly"`` (with ``day_of_month`` and ``hour_utc``) makes
``svrisk serve`` queue an ``update`` job (:func:`service.jobs.update_job`) at that time
each month, on the same job queue as the analysts' jobs: it appears in ``GET /jobs``,
and ``/health`` shows when the next one is due and how the last one ended.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable

from service.jobs import JobQueue, QueueFull

log = logging.getLogger("svrisk.schedule")


def next_monthly(after: dt.datetime, day: int, hour: int) -> dt.datetime:
    """The first ``day`` of a month at ``hour``:00 UTC strictly after ``after``.

    >>> next_monthly(dt.datetime(2026, 3, 20, 6, tzinfo=dt.UTC), 20, 6).isoformat()
    '2026-04-20T06:00:00+00:00'
    """
    at = after.astimezone(dt.UTC).replace(day=day, hour=hour, minute=0, second=0, microsecond=0)
    if at > after:
        return at
    year, month = (at.year + 1, 1) if at.month == 12 else (at.year, at.month + 1)
    return at.replace(year=year, month=month)


class UpdateSchedule:
    """Queues an ``update`` job on ``queue`` at each monthly due time, on its own thread."""

    def __init__(self, queue: JobQueue, day: int, hour: int,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)):
        self.queue, self.day, self.hour, self.clock = queue, int(day), int(hour), clock
        self.next_due = next_monthly(clock(), self.day, self.hour)
        self.last_job_id: str | None = None
        self.last_refused: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="svrisk-update-schedule", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(max(0.0, (self.next_due - self.clock()).total_seconds())):
            self.fire()
            self.next_due = next_monthly(self.next_due, self.day, self.hour)

    def fire(self) -> dict | None:
        """Queue the update now; a full queue is logged and shown on /health, and the next month tried."""
        try:
            job = self.queue.submit("update", {}, "schedule")
        except QueueFull as exc:
            self.last_refused = f"{dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}: {exc}"
            log.warning("scheduled update not queued: %s", exc)
            return None
        self.last_job_id = job["job_id"]
        return job

    def state(self) -> dict:
        """What /health shows: the schedule, the next due time and the last scheduled job."""
        last = self.queue.get(self.last_job_id) if self.last_job_id else None
        shown = None
        if last is not None:
            shown = {k: last[k] for k in ("job_id", "status", "created", "started", "finished", "result", "error")
                     if k in last}
        return {"schedule": "monthly", "next_due": self.next_due.isoformat(timespec="seconds"), "last": shown,
                **({"last_refused": self.last_refused} if self.last_refused else {})}
