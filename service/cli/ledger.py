"""`svrisk ledger`: how the forecasts issued on a data folder did once their months arrived."""

from __future__ import annotations

import json

import typer

from service.cli.common import settings_for, user_errors
from service.cli.options import DataOption

app = typer.Typer()


@app.command("ledger")
@user_errors
def ledger_command(
    data: DataOption = None,
    as_json: bool = typer.Option(False, "--json", help="Print the running record and every scored forecast as JSON."),
) -> None:
    """The forecast ledger of DATA: per units and horizon, scored forecasts against the 12-month count."""
    settings = settings_for(data)
    from models.ledger import Ledger, record, running_record  # import here: heavy, after the checks
    from service import stores  # import here: pandas and the loaders, after the checks

    # as ledger_dir
    folder = settings.out_dir / "ledger" / stores.default_store_dir(settings, stores.data_dir_for(settings)).name
    ledger = Ledger(folder)
    entries = ledger.entries()
    scored = record(ledger)
    running = running_record(scored)
    if as_json:
        typer.echo(json.dumps({"folder": str(folder), "issued": int(entries["entry_id"].nunique()) if len(entries) else 0,
                               "record": running, "scored": scored.to_dict("records")}, indent=1, default=str))
        return
    issued = int(entries["entry_id"].nunique()) if len(entries) else 0
    typer.echo(f"forecast ledger {folder}: {issued} forecasts issued, {len(scored)} scored")
    for r in running:
        interval = (f" (paired 95% interval {r['interval'][0]:+.3f} to {r['interval'][1]:+.3f})" if r["interval"]
                    else f" (an interval needs 6 scored forecasts; {r['scored']} so far)")
        typer.echo(f"  {r['units']}, {r['horizon']} month(s) ahead: {r['scored']} scored {r['first']}..{r['last']}; "
                   f"PEI* at 5% of area {r['pei_5']:.3f} vs 12-month count {r['count_pei_5']:.3f}, "
                   f"difference {r['difference']:+.3f}{interval}")
        for w in r["warnings"]:
            typer.echo(f"  warning: {w}")
    for _, s in scored.iterrows():
        cov = "–" if s["range_coverage_80"] is None or s["range_coverage_80"] != s["range_coverage_80"] \
            else f"{s['range_coverage_80']:.0%}"
        typer.echo(f"    {s['units']} h{s['horizon']} {s['months']}: top 5% held {s['hit_rate_5']:.1%} "
                   f"(count {s['count_hit_rate_5']:.1%}), PEI* {s['pei_5']:.2f} (count {s['count_pei_5']:.2f}), "
                   f"in 80% range {cov}{' [revised]' if s['revised'] else ''}")
