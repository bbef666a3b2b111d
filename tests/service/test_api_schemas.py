"""The API documents its JSON answers: /openapi.json has a response schema for each main endpoint."""

import pytest

from service.api import schemas

# (method, path, status, model): the answers /docs must describe
DOCUMENTED = [
    ("get", "/health", "200", "Health"),
    ("get", "/runs", "200", "RunList"),
    ("get", "/runs/{run_id}", "200", "RunDetail"),
    ("get", "/runs/{run_id}/figures", "200", "Figures"),
    ("get", "/ledger", "200", "LedgerRecord"),
    ("post", "/runs/{run_id}/publish", "200", "Publication"),
    ("get", "/runs/{run_id}/ranking", "200", "RankingPage"),
    ("get", "/runs/{run_id}/layers", "200", "LayerList"),
    ("post", "/jobs/{kind}", "202", "JobStarted"),
    ("get", "/jobs", "200", "JobList"),
    ("get", "/jobs/{job_id}", "200", "Job"),
    ("get", "/auth/whoami", "200", "WhoAmI"),
    ("post", "/evaluations", "202", "EvaluationQueued"),
    ("get", "/evaluations", "200", "EvaluationList"),
    ("get", "/evaluations/{evaluation_id}", "200", "Evaluation"),
]


@pytest.fixture(scope="module")
def openapi(client):
    r = client.get("/openapi.json")
    assert r.status_code == 200
    return r.json()


@pytest.mark.parametrize(("method", "path", "status", "model"), DOCUMENTED)
def test_each_main_endpoint_names_its_response_schema(openapi, method, path, status, model):
    content = openapi["paths"][path][method]["responses"][status]["content"]
    assert content["application/json"]["schema"] == {"$ref": f"#/components/schemas/{model}"}
    fields = openapi["components"]["schemas"][model]["properties"]
    assert set(fields) == set(getattr(schemas, model).model_fields)


def test_the_schemas_describe_the_fields_people_read(openapi):
    run = openapi["components"]["schemas"]["RunSummary"]
    assert {"run_id", "units", "cutoff", "published"} <= set(run["required"]) | set(run["properties"])
    assert openapi["components"]["schemas"]["RankingPage"]["properties"]["items"]["type"] == "array"


def test_a_body_keeps_what_the_route_wrote_in_its_order(client, api_keys):
    # the model passes the route's dict through: no key added (no nulls), none dropped, none moved
    health = client.get("/health").json()
    assert list(health) == ["status", "version", "published_run", "jobs_waiting", "job_queue_size", "update"]
    runs = client.get("/runs", headers={"X-API-Key": api_keys["viewer"]}).json()
    assert list(runs) == ["runs", "count", "published"]
    assert list(runs["runs"][0]) == ["run_id", "created", "model_version", "method", "units", "cutoff",
                                     "horizon", "data_period", "area_name", "demo", "published"]
    meta = client.get("/runs/latest", headers={"X-API-Key": api_keys["viewer"]}).json()
    assert list(meta)[-4:] == ["published", "layers", "files", "links"]
