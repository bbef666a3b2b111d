"""Jobs: options checked like the CLI's, a bounded queue on its own threads, data folder kept."""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time

import httpx
import pytest
from live_server import free_port, thread_server, with_public_url

from service.jobs import JobQueue, QueueFull, check_job


@pytest.mark.parametrize("params,words", [
    ({"units": "grid1"}, "1 m cells"),
    ({"units": "../lsoa"}, "not a unit set name"),
    ({"units": "lsoa2011\n"}, "not a unit set name"),
    ({"cutoff": "2018-07\n"}, "not a month"),
    ({"cutoff": "2018/07/01"}, "not a month"),
    ({"cutoff": "2018-13"}, "not a month"),
    ({"cutoff": 201807}, "not a month string"),
    ({"model": "../../etc"}, "not a saved model version"),
    ({"colour": "red"}, "unknown option(s) ['colour']"),
])
def test_bad_rank_options_are_refused_naming_the_option(api_settings, params, words):
    with pytest.raises(ValueError, match="") as err:
        check_job("rank", params, api_settings)
    assert words in str(err.value)
    assert str(api_settings.out_dir) not in str(err.value)


def test_good_options_pass_and_ingest_takes_none(api_settings):
    assert check_job("rank", {"units": "grid250", "cutoff": "2018-07"}, api_settings) == \
        {"units": "grid250", "cutoff": "2018-07"}
    assert check_job("train", {"method": "glm"}, api_settings) == {"method": "glm"}
    with pytest.raises(ValueError, match="unknown option"):
        check_job("ingest", {"data": "/elsewhere"}, api_settings)
    with pytest.raises(ValueError, match="cannot be trained"):
        check_job("train", {"method": "magic"}, api_settings)


@pytest.mark.parametrize("body", [{"units": "grid1"}, {"cutoff": "2018-07\n"}, {"cutoff": "2018/07/01"}, [1]])
def test_api_answers_422_before_queueing(client, api_keys, job_calls, body):
    before = list(job_calls)
    r = client.post("/jobs/rank", json=body, headers={"X-API-Key": api_keys["analyst"]})
    assert r.status_code == 422 and r.json()["detail"]
    assert job_calls == before


def test_a_full_queue_refuses_with_retry_after():
    release = threading.Event()
    q = JobQueue({"rank": lambda p: release.wait(5)}, max_queued=3, workers=1)
    try:
        first = q.submit("rank", {}, "k")
        deadline = time.monotonic() + 5
        while q.get(first["job_id"])["status"] != "running" and time.monotonic() < deadline:
            time.sleep(0.01)
        waiting = [q.submit("rank", {}, "k") for _ in range(3)]
        assert [q.get(j["job_id"])["status"] for j in waiting] == ["queued"] * 3
        with pytest.raises(QueueFull) as err:
            q.submit("rank", {}, "k")
        assert err.value.retry_after >= 1
    finally:
        release.set()
        q.stop()


def test_job_errors_name_no_server_path(tmp_path):
    from service.jobs import redactor

    def failing(params):
        raise FileNotFoundError(f"{tmp_path / 'out' / 'store'}/events.parquet not found")

    q = JobQueue({"rank": failing}, redact=redactor(tmp_path / "out"))
    job = q.submit("rank", {}, "k")
    deadline = time.monotonic() + 5
    while q.get(job["job_id"])["status"] != "failed" and time.monotonic() < deadline:
        time.sleep(0.01)
    q.stop()
    error = q.get(job["job_id"])["error"]
    assert error == "FileNotFoundError: <out>/store/events.parquet not found"


def test_60_queued_jobs_get_429_while_health_and_reads_answer(api_settings, api_keys):
    """One worker busy, 8 waiting, the other 51 refused; the service keeps answering."""
    from service.api import create_app

    release = threading.Event()
    threads_used = []

    def slow_rank(params):
        threads_used.append(threading.current_thread().name)
        release.wait(30)
        return {"ok": True}

    port = free_port()
    settings = with_public_url(api_settings, port, job_queue_size=8)
    app = create_app(settings, jobs={"rank": slow_rank})
    analyst = {"X-API-Key": api_keys["analyst"]}
    with thread_server(app, settings, port) as base:
        try:
            with cf.ThreadPoolExecutor(20) as pool:
                codes = list(pool.map(lambda _: httpx.post(f"{base}/jobs/rank", json={}, headers=analyst,
                                                           timeout=30), range(60)))
            statuses = [r.status_code for r in codes]
            assert statuses.count(202) == 9 and statuses.count(429) == 51
            assert all(int(r.headers["retry-after"]) >= 1 for r in codes if r.status_code == 429)
            # with the queue full and the worker busy: health, a read and a job's state answer
            t0 = time.perf_counter()
            health = httpx.get(f"{base}/health", timeout=5)
            elapsed = time.perf_counter() - t0
            assert health.status_code == 200 and health.json()["jobs_waiting"] == 8
            assert elapsed < 1.0  # generous on a shared machine; benchmarks/api_load.py measures it
            assert httpx.get(f"{base}/runs", headers=analyst, timeout=5).status_code == 200
            job_id = next(r.json()["job_id"] for r in codes if r.status_code == 202)
            assert httpx.get(f"{base}/jobs/{job_id}", headers=analyst, timeout=5).status_code == 200
        finally:
            release.set()
    assert threads_used and all(name.startswith("svrisk-job-") for name in threads_used)


def test_real_jobs_run_in_their_own_process(api_settings):
    import os

    from features.months import month
    from service.jobs import JobFailed, job_runners, rank_job, run_apart

    assert run_apart(os.getpid) != os.getpid()
    with pytest.raises(JobFailed, match=r"^ValueError: not a month: '2018/07'"):
        run_apart(month, "2018/07")
    rank = job_runners(api_settings)["rank"]
    assert rank.func is run_apart and rank.args == (rank_job, api_settings)
