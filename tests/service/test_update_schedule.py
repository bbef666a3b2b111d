"""The service's monthly update: when it is due, that it queues an update job, and what /health and /jobs show."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from fastapi.testclient import TestClient

from service.api import create_app
from service.schedule import UpdateSchedule, next_monthly

UTC = dt.UTC


@pytest.mark.parametrize(("now", "due"), [
    ("2026-03-01T00:00:00", "2026-03-20T06:00:00"),  # earlier in the month: this month
    ("2026-03-20T06:00:00", "2026-04-20T06:00:00"),  # exactly at the time: next month
    ("2026-03-25T12:00:00", "2026-04-20T06:00:00"),
    ("2026-12-31T23:00:00", "2027-01-20T06:00:00"),  # over the year's end
])
def test_next_monthly_due_time(now, due):
    got = next_monthly(dt.datetime.fromisoformat(now).replace(tzinfo=UTC), 20, 6)
    assert got == dt.datetime.fromisoformat(due).replace(tzinfo=UTC)


class Recorder:
    def __init__(self):
        self.submitted = []

    def submit(self, kind, params, requested_by):
        self.submitted.append((kind, params, requested_by, time.monotonic()))
        return {"job_id": f"j{len(self.submitted)}"}


def test_the_schedule_queues_one_update_when_due_and_then_waits_a_month():
    due = dt.datetime(2026, 4, 20, 6, tzinfo=UTC)
    queue = Recorder()
    schedule = UpdateSchedule(queue, 20, 6, clock=lambda: due - dt.timedelta(seconds=0.3))
    assert schedule.next_due == due
    schedule.start()
    deadline = time.monotonic() + 10
    while not queue.submitted and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    schedule.stop()
    assert [s[:3] for s in queue.submitted] == [("update", {}, "schedule")]
    assert schedule.next_due == dt.datetime(2026, 5, 20, 6, tzinfo=UTC)


def test_health_and_the_jobs_list_show_the_last_scheduled_update(api_settings, api_keys, tmp_path):
    (tmp_path / "data").mkdir()
    settings = api_settings.model_copy(update={
        "data_dir": tmp_path / "data",
        "update": api_settings.update.model_copy(update={"schedule": "monthly", "day_of_month": 5})})
    app = create_app(settings, jobs={"update": lambda params: {"placed": ["crime/met-lsoa/x.csv"], "run_id": "r1"}})
    with TestClient(app, base_url="https://testserver") as client:
        before = client.get("/health").json()["update"]
        assert before["schedule"] == "monthly" and before["last"] is None
        assert before["next_due"].endswith("-05T06:00:00+00:00")
        job = app.state.update_schedule.fire()
        deadline = time.monotonic() + 10
        while client.get("/health").json()["update"]["last"]["status"] != "done" and time.monotonic() < deadline:
            time.sleep(0.02)
        last = client.get("/health").json()["update"]["last"]
        listed = client.get("/jobs", headers={"X-API-Key": api_keys["analyst"]}).json()["jobs"]
    assert last["job_id"] == job["job_id"] and last["result"] == {"placed": ["crime/met-lsoa/x.csv"], "run_id": "r1"}
    assert any(j["job_id"] == job["job_id"] and j["kind"] == "update" and j["requested_by"] == "schedule"
               for j in listed)


def test_health_says_the_schedule_is_off_by_default(client):
    assert client.get("/health").json()["update"] == {"schedule": "off"}
