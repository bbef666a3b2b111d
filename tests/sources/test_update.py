"""`update_folder` against the local publishers: what is new is fetched, checked and placed; failures change nothing."""

from __future__ import annotations

import io
import json
import os
import zipfile

import pytest
from ingest_fixtures import lonlat
from publishers import (
    CATALOGUE,
    Publishers,
    crime_record,
    folder,
    publish_ward,
    serve,
    stop_record,
    ward_release,
)

from sources.catalogue import MANIFEST_NAME, load_catalogue
from sources.fetch import Client, FetchError, FetchOptions, RateLimiter, retry_after
from sources.fingerprint import fingerprint, sha256
from sources.ingest import ingest
from sources.update import (
    PART_SUFFIX,
    Endpoints,
    PoliceRate,
    UpdateError,
    poly_param,
    quadrants,
    update_folder,
)

POLICE = """
[[source]]
name = "police.uk API crime"
kind = "policeuk_api"
path = "crime/policeuk-api"
update = "police-uk-api"
polygon = "boundaries/lsoa2011.gpkg"
since = "2024-01"
"""
STOPS = """
[[source]]
name = "police.uk stop and search"
kind = "policeuk_stop_search"
path = "crime/stop-search"
update = "police-uk-api"
force = "metropolitan"
"""


class Waits(list):
    """A sleep that records and does not wait."""

    def __call__(self, seconds: float) -> None:
        self.append(round(seconds, 4))


def run(data, pubs: Publishers, tmp_path, waits=None, **kw):
    return update_folder(data, tmp_path / "cache", endpoints=Endpoints(f"{pubs.base}/ckan", f"{pubs.base}/police"),
                         fetch=FetchOptions(timeout_s=5, retries=3, backoff_s=0.01, sleep=waits if waits is not None else Waits()), **kw)


def test_a_new_release_is_checked_placed_recorded_and_ingested(tmp_path):
    data = folder(tmp_path)
    body = ward_release(["2024-01", "2024-02", "2024-03"])
    with serve() as pubs:
        publish_ward(pubs, body, "2024-04-18T09:00:00")
        report = run(data, pubs, tmp_path)
    [entry] = report["placed"]
    placed = data / entry["file"]
    assert entry["file"] == "crime/met-ward/MPS Ward Level Crime (most recent 24 months) 2024-04-18.csv"
    assert placed.read_bytes() == body and entry["sha256"] == sha256(placed)
    assert entry["url"].endswith("/files/MPS%20Ward%20Level%20Crime%20%28most%20recent%2024%20months%29.csv")
    assert entry["licence"] == "UK Open Government Licence (OGL v3)" and entry["retrieved"]
    assert entry["release"]["modified"] == "2024-04-18T09:00:00"
    assert (entry["rows_read"], entry["rows_accepted"]) == (12, 12)  # 2 wards x 2 categories x 3 months
    manifest = json.loads((data / MANIFEST_NAME).read_text())
    assert manifest["files"] == [entry]
    # ingest reads the placed release through the folder source, and accounts for the manifest
    report = ingest(data, tmp_path / "store")
    ward = next(i for i in report["inputs"] if i["kind"] == "met_ward_monthly")
    assert ward["accepted"] == 12
    files = {f["path"]: f for f in report["files"]}
    assert "update's record" in files[MANIFEST_NAME]["why"]


def test_nothing_new_downloads_nothing_and_changes_nothing(tmp_path):
    data = folder(tmp_path)
    with serve() as pubs:
        publish_ward(pubs, ward_release(["2024-01"]), "2024-02-18T09:00:00")
        run(data, pubs, tmp_path)
        before = fingerprint(data)
        downloads = len(pubs.requests_to("/files/"))
        report = run(data, pubs, tmp_path)
        assert len(pubs.requests_to("/files/")) == downloads  # asked the catalogue only
    assert report["placed"] == [] and "is held as crime/met-ward/" in report["unchanged"][0]["why"]
    assert fingerprint(data) == before


def test_a_release_already_in_the_folder_is_not_placed_again(tmp_path):
    body = ward_release(["2024-01"])
    data = folder(tmp_path, old=body)
    before = fingerprint(data)
    with serve() as pubs:
        publish_ward(pubs, body, "2024-02-18T09:00:00")
        report = run(data, pubs, tmp_path)
    assert report["placed"] == [] and "identical to MPS Ward Level Crime 2024-01-15.csv" in report["unchanged"][0]["why"]
    assert fingerprint(data) == before


def test_a_revised_release_is_placed_beside_the_older_one(tmp_path):
    data = folder(tmp_path)
    first, revised = ward_release(["2024-01", "2024-02"]), ward_release(["2024-01", "2024-02"], base=5)
    with serve() as pubs:
        publish_ward(pubs, first, "2024-03-18T09:00:00")
        run(data, pubs, tmp_path)
        publish_ward(pubs, revised, "2024-03-18T09:00:00+revised")
        pubs.packages["mps-ward-crime"]["resources"][1]["last_modified"] = "2024-03-25T10:00:00"
        report = run(data, pubs, tmp_path)
    [entry] = report["placed"]
    files = sorted(p.name for p in (data / "crime" / "met-ward").iterdir())
    assert files == ["MPS Ward Level Crime (most recent 24 months) 2024-03-18.csv",
                     "MPS Ward Level Crime (most recent 24 months) 2024-03-25.csv"]
    assert (data / "crime/met-ward" / files[0]).read_bytes() == first  # the older one is untouched
    assert (data / entry["file"]).read_bytes() == revised
    assert len(json.loads((data / MANIFEST_NAME).read_text())["files"]) == 2


def test_a_release_with_the_same_date_gets_a_free_name_never_an_overwrite(tmp_path):
    old = ward_release(["2024-01"], base=9)
    data = folder(tmp_path)
    (data / "crime/met-ward").mkdir(parents=True)
    (data / "crime/met-ward/MPS Ward Level Crime (most recent 24 months) 2024-02-18.csv").write_bytes(old)
    with serve() as pubs:
        publish_ward(pubs, ward_release(["2024-01"]), "2024-02-18T09:00:00")
        [entry] = run(data, pubs, tmp_path)["placed"]
    assert entry["file"].endswith("2024-02-18 (2).csv")
    assert (data / "crime/met-ward/MPS Ward Level Crime (most recent 24 months) 2024-02-18.csv").read_bytes() == old


def test_a_download_cut_short_resumes_with_a_range_request(tmp_path):
    data = folder(tmp_path)
    body = ward_release([f"2023-{m:02d}" for m in range(1, 13)])
    with serve() as pubs:
        publish_ward(pubs, body, "2024-01-18T09:00:00")
        name = "MPS Ward Level Crime (most recent 24 months).csv"
        pubs.cut[name], pubs.cut_times[name] = 100, 1
        [entry] = run(data, pubs, tmp_path)["placed"]
        ranges = [r["range"] for r in pubs.requests_to("/files/MPS Ward Level Crime (most")]
    assert ranges == [None, "bytes=100-"]
    assert (data / entry["file"]).read_bytes() == body


def test_a_file_that_changed_before_the_resume_is_fetched_whole_never_spliced(tmp_path):
    data = folder(tmp_path)
    first, changed = ward_release(["2023-01", "2023-02"]), ward_release(["2023-03", "2023-04"], base=7)
    assert first[:100] != changed[:100]  # a splice would show
    name = "MPS Ward Level Crime (most recent 24 months).csv"
    with serve() as pubs:
        publish_ward(pubs, first, "2024-01-18T09:00:00")
        pubs.cut[name], pubs.ranges = 100, False  # every answer to the first body is cut short
        with pytest.raises(UpdateError):
            run(data, pubs, tmp_path)
        pubs.files[name] = changed  # republished under the same date before the next attempt
        pubs.cut.clear()
        pubs.ranges = True
        [entry] = run(data, pubs, tmp_path)["placed"]
        last = pubs.requests_to(f"/files/{name}")[-1]
    assert last["range"] == "bytes=100-"  # it asked to resume, naming the file it had begun ...
    assert (data / entry["file"]).read_bytes() == changed  # ... and got the new file whole


def test_a_server_failing_mid_download_leaves_the_folder_as_it_was(tmp_path):
    data = folder(tmp_path, extra=POLICE)
    before = fingerprint(data)
    with serve() as pubs:
        publish_ward(pubs, ward_release(["2024-01", "2024-02"]), "2024-03-18T09:00:00")
        name = "MPS Ward Level Crime (most recent 24 months).csv"
        pubs.cut[name], pubs.ranges = 50, False  # every answer cut, and no resuming
        with pytest.raises(UpdateError) as err:
            run(data, pubs, tmp_path)
        assert len(pubs.requests_to("/files/MPS Ward Level Crime (most")) == 4  # 1 + 3 retries
    assert err.value.source == "Met ward crime"
    assert "download failed after 4 attempts" in str(err.value) and "nothing was placed" in str(err.value)
    assert fingerprint(data) == before and not (data / MANIFEST_NAME).exists()


def test_one_failing_source_places_nothing_for_the_others(tmp_path):
    data = folder(tmp_path, extra=POLICE)
    before = fingerprint(data)
    with serve() as pubs:
        publish_ward(pubs, ward_release(["2024-01"]), "2024-02-18T09:00:00")  # fine
        pubs.months = ["2024-01"]
        pubs.malformed.add("/crimes-street/all-crime")  # police.uk answers rubbish
        with pytest.raises(UpdateError) as err:
            run(data, pubs, tmp_path)
    assert err.value.source == "police.uk API crime" and "malformed JSON" in str(err.value)
    assert fingerprint(data) == before


def test_malformed_catalogue_json_names_the_source_and_changes_nothing(tmp_path):
    data = folder(tmp_path)
    before = fingerprint(data)
    with serve() as pubs:
        publish_ward(pubs, ward_release(["2024-01"]), "2024-02-18T09:00:00")
        pubs.malformed.add("/ckan/package_show")
        with pytest.raises(UpdateError, match=r"Met ward crime: .*package_show.*malformed JSON"):
            run(data, pubs, tmp_path)
        pubs.malformed.clear()
        pubs.packages["mps-ward-crime"] = {"no": "resources"}
        with pytest.raises(UpdateError, match="not a CKAN package_show result"):
            run(data, pubs, tmp_path)
    assert fingerprint(data) == before


def test_a_resource_no_loader_recognises_is_refused_and_not_placed(tmp_path):
    data = folder(tmp_path)
    before = fingerprint(data)
    with serve() as pubs:
        publish_ward(pubs, b"Borough,Year,Budget\nBarnet,2024,1000\n", "2024-02-18T09:00:00")
        with pytest.raises(UpdateError, match="no loader recognises it .*columns match no known public format"):
            run(data, pubs, tmp_path)
        # a table of another kind than the catalogue says is refused too
        publish_ward(pubs, b"Crime ID,Month,LSOA code,Crime type\nabc,2024-01,E01900001,Robbery\n",
                     "2024-02-18T09:00:00")
        with pytest.raises(UpdateError, match="is crime_records_by_lsoa, not met_ward_monthly"):
            run(data, pubs, tmp_path)
    assert fingerprint(data) == before


def test_a_zip_resource_is_unpacked_to_its_one_table(tmp_path):
    data = folder(tmp_path)
    body = ward_release(["2024-01", "2024-02"])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "about the data")
        z.writestr("data/MPS Ward Level Crime.csv", body)
    with serve() as pubs:
        publish_ward(pubs, buf.getvalue(), "2024-03-18T09:00:00", name="MPS Ward Level Crime (zip).zip")
        [entry] = run(data, pubs, tmp_path)["placed"]
    assert entry["member"] == "data/MPS Ward Level Crime.csv"
    assert entry["file"] == "crime/met-ward/MPS Ward Level Crime.csv" and (data / entry["file"]).read_bytes() == body


def police_folder(tmp_path, extra=POLICE):
    return folder(tmp_path, extra=extra)


def fixture_crimes(month: str, n: int, first_id: int = 1) -> list[dict]:
    out = []
    for i in range(n):  # spread over both fixture LSOAs (x 530000-532000, y 180000-181000)
        lon, lat = lonlat(530100 + 150 * i, 180100 + 60 * (i % 12))
        out.append(crime_record(first_id + i, month, float(lon), float(lat)))
    return out


def test_police_months_after_the_newest_held_are_fetched_month_by_month(tmp_path):
    data = police_folder(tmp_path)
    with serve() as pubs:
        publish_ward(pubs, ward_release(["2024-01"]), "2024-02-18T09:00:00")
        pubs.months = ["2023-12", "2024-01", "2024-02"]
        pubs.crimes = fixture_crimes("2024-01", 5) + fixture_crimes("2024-02", 7, 100)
        report = run(data, pubs, tmp_path)
        placed = {e["file"]: e for e in report["placed"] if e["update"] == "police-uk-api"}
        assert sorted(placed) == ["crime/policeuk-api/police-uk-api-crimes-street_2024-01.csv",
                                  "crime/policeuk-api/police-uk-api-crimes-street_2024-02.csv"]  # since 2024-01
        assert [e["rows_accepted"] for e in placed.values()] == [5, 7]
        pubs.months.append("2024-03")
        pubs.crimes += fixture_crimes("2024-03", 2, 200)
        again = run(data, pubs, tmp_path)
    assert [e["file"] for e in again["placed"]] == ["crime/policeuk-api/police-uk-api-crimes-street_2024-03.csv"]
    report = ingest(data, tmp_path / "store")
    api = [i for i in report["inputs"] if i["kind"] == "policeuk_api"]
    assert sum(i["accepted"] for i in api) == 14


def test_an_oversized_polygon_is_split_in_quadrants(tmp_path):
    data = police_folder(tmp_path)
    with serve() as pubs:
        publish_ward(pubs, ward_release(["2024-01"]), "2024-02-18T09:00:00")
        pubs.months, pubs.max_per_polygon = ["2024-01"], 4
        pubs.crimes = fixture_crimes("2024-01", 12)
        report = run(data, pubs, tmp_path)
        asks = pubs.requests_to("/police/crimes-street/all-crime")
    [entry] = [e for e in report["placed"] if e["update"] == "police-uk-api"]
    assert entry["release"]["records"] == 12 and entry["rows_accepted"] == 12  # every crime once
    assert len(asks) > 1 + 4  # the whole area, its quadrants, and the quadrants still too large


def test_quadrants_cover_the_area_exactly():
    from shapely import box

    area = box(0, 0, 4, 2)
    parts = quadrants(area)
    assert len(parts) == 4 and sum(p.area for p in parts) == pytest.approx(8.0)
    assert poly_param(box(-0.1, 51.5, 0.1, 51.6)).split(":")[0] == "51.50000,0.10000"  # lat,lng


def test_police_rate_limit_and_429_retry_after_are_honoured(tmp_path):
    data = police_folder(tmp_path)
    waits = Waits()
    with serve() as pubs:
        publish_ward(pubs, ward_release(["2024-01"]), "2024-02-18T09:00:00")
        pubs.months, pubs.too_many, pubs.retry_after = ["2024-01"], 2, "3"
        pubs.crimes = fixture_crimes("2024-01", 3)
        report = run(data, pubs, tmp_path, waits=waits, police_rate=PoliceRate(15, 30))
    assert waits.count(3.0) == 2  # two 429s, each waited out as Retry-After said
    assert any(e["update"] == "police-uk-api" for e in report["placed"])


def test_the_token_bucket_allows_a_burst_then_the_rate():
    now = [0.0]
    waits = Waits()
    limiter = RateLimiter(15, 30, clock=lambda: now[0], sleep=waits)
    for _ in range(30):
        limiter.acquire()
    assert waits == []  # a burst of 30 at once is allowed
    for _ in range(15):
        limiter.acquire()
    assert waits[0] == pytest.approx(1 / 15, abs=1e-4) and waits[-1] == pytest.approx(1.0, abs=1e-4)
    now[0] = 10.0  # a quiet spell refills the bucket, but never past the burst
    waits.clear()
    for _ in range(31):
        limiter.acquire()
    assert len(waits) == 1


def test_retry_after_reads_seconds_and_dates():
    assert retry_after("7", 1.0) == 7.0
    assert retry_after(None, 1.5) == 1.5
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 2.0) == 0.0  # in the past: go now
    assert retry_after("soon", 2.0) == 2.0


def test_a_retry_after_beyond_the_cap_fails_the_request(tmp_path):
    with serve() as pubs:
        pubs.too_many, pubs.retry_after = 1, "3600"
        client = Client(FetchOptions(max_wait_s=60, sleep=Waits()))
        with pytest.raises(FetchError, match="asked to wait 3600 s"):
            client.get(f"{pubs.base}/police/crimes-street-dates")


def test_stop_and_search_by_force_in_the_bulk_layout(tmp_path):
    data = police_folder(tmp_path, extra=STOPS)
    with serve() as pubs:
        publish_ward(pubs, ward_release(["2024-01"]), "2024-02-18T09:00:00")
        pubs.months = ["2024-01"]
        lon, lat = lonlat(530500, 180500)
        pubs.stops = [stop_record("2024-01", float(lon), float(lat), day=d) for d in (1, 2, 3)]
        report = run(data, pubs, tmp_path)
    [entry] = [e for e in report["placed"] if e["update"] == "police-uk-api"]
    assert entry["file"] == "crime/stop-search/2024-01-metropolitan-stop-and-search.csv"
    assert entry["rows_accepted"] == 3
    cat = load_catalogue(data)
    assert any(s.kind == "policeuk_stop_search" for s in cat.sources)


def test_offline_says_what_it_would_fetch_and_asks_nobody(tmp_path):
    data = police_folder(tmp_path)
    before = fingerprint(data)
    with serve() as pubs:
        report = run(data, pubs, tmp_path, offline=True)
        assert pubs.log == []
    would = {w["source"]: w["would"] for w in report["would_fetch"]}
    assert "package_show?id=mps-ward-crime" in would["Met ward crime"]
    assert "crimes-street/all-crime for each month from 2024-01" in would["police.uk API crime"]
    assert fingerprint(data) == before


def test_catalogue_mistakes_are_named(tmp_path):
    data = folder(tmp_path, extra='[[source]]\nname = "x"\nkind = "policeuk_api"\npath = "p"\nupdate = "police-uk-api"\n')
    with pytest.raises(ValueError, match="'x': police.uk needs polygon"):
        update_folder(data, tmp_path / "c", offline=True)
    (data / "catalogue.toml").write_text(CATALOGUE.replace('"Ward Level Crime"', '"Ward (Level"'))
    with pytest.raises(ValueError, match="resource_pattern 'Ward \\(Level' is not a regular expression"):
        update_folder(data, tmp_path / "c", offline=True)
    (data / "catalogue.toml").unlink()
    with pytest.raises(ValueError, match="no catalogue.toml"):
        update_folder(data, tmp_path / "c", offline=True)


def test_every_request_goes_through_the_proxy_setting(tmp_path):
    data = folder(tmp_path)
    with serve() as pubs:  # the stand-in answers absolute-form requests, as a forward proxy receives them
        publish_ward(pubs, ward_release(["2024-01"]), "2024-02-18T09:00:00")
        report = update_folder(data, tmp_path / "cache",
                               endpoints=Endpoints("http://datastore.invalid/ckan", "http://police.invalid/police"),
                               fetch=FetchOptions(timeout_s=5, retries=0, proxy=pubs.base, sleep=Waits()))
        paths = [r["path"] for r in pubs.log]
    assert paths == ["/ckan/package_show", "/files/MPS Ward Level Crime (most recent 24 months).csv"]
    assert len(report["placed"]) == 1


def test_a_failure_while_placing_takes_back_what_was_placed(tmp_path, monkeypatch):
    data = folder(tmp_path, extra=POLICE)
    before = fingerprint(data)
    real_replace, calls = os.replace, []

    def replace_then_fail(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # the second file: the disk fills up
            raise OSError(28, "No space left on device", str(dst))
        return real_replace(src, dst)

    with serve() as pubs:
        publish_ward(pubs, ward_release(["2024-01"]), "2024-02-18T09:00:00")
        pubs.months, pubs.crimes = ["2024-01"], fixture_crimes("2024-01", 3)
        monkeypatch.setattr("sources.update.os.replace", replace_then_fail)
        with pytest.raises(OSError, match="No space left"):
            run(data, pubs, tmp_path)
    monkeypatch.undo()
    assert len(calls) == 2 and fingerprint(data) == before
    assert not [p for p in data.rglob("*") if p.name.startswith(".")]  # no hidden copy left either
    assert not (data / "crime" / "policeuk-api").exists()  # the folder it made is gone too


def test_hidden_copies_left_by_a_killed_placement_are_swept_by_the_next_update(tmp_path):
    data = folder(tmp_path)
    (data / "crime" / "met-ward").mkdir(parents=True)
    debris = data / "crime" / "met-ward" / f".x.csv{PART_SUFFIX}"
    debris.write_text("WardCode,Ward")
    assert load_catalogue(data).files["crime/met-ward/" + debris.name]["why"] == "hidden file, not read"
    with serve() as pubs:
        run(data, pubs, tmp_path, offline=True)
        assert debris.exists()  # offline touches nothing
        publish_ward(pubs, ward_release(["2024-01"]), "2024-02-18T09:00:00")
        run(data, pubs, tmp_path)
    assert not debris.exists()
