"""What the API's analyst-only ``POST /jobs/{kind}`` runs: the same steps as the CLI."""

from __future__ import annotations

from service.pipeline import evaluate_step, ingest_step, train_step
from service.run import make_run
from service.settings import Settings


def job_runners(settings: Settings) -> dict:
    """What the API's analyst-only POST /jobs/{kind} runs: the same steps as the CLI."""
    def ingest_job(params: dict) -> dict:
        report, store = ingest_step(settings)
        return {"store": str(store), "totals": report["totals"], "reconciled": report["reconciled"]}

    def train_job(params: dict) -> dict:
        version, folder = train_step(settings, params.get("units") or settings.units.default,
                                     params.get("cutoff"), params.get("method"))
        return {"model_version": version, "folder": str(folder)}

    def rank_job(params: dict) -> dict:
        run_dir = make_run(settings, units=params.get("units"), cutoff=params.get("cutoff"),
                           model_version=params.get("model"))
        return {"run_id": run_dir.name}

    def evaluate_job(params: dict) -> dict:
        ev, written = evaluate_step(settings, **params)
        return {"evaluation_id": written.folder.name, "verdict": ev.estimates["verdict"]}

    return {"ingest": ingest_job, "train": train_job, "rank": rank_job, "evaluate": evaluate_job}
