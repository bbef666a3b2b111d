# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Retrain, backtest and compare
#
# Did the ranking predict what happened? This notebook builds the units and the feature
# matrix, runs a rolling-origin backtest of the baselines analysts already use (last
# 12 months' count, last month's count, retrospective KDE, prospective hotspotting, the
# long-window mean) against the two models (Poisson GLM with a spatial lag, monotone
# Poisson gradient boosting), compares them at 1%, 5% and 10% of the area, then fits the
# default model as a saved version with its model card, and shows the ranking with its
# reasons, the GLM's rate ratios, SHAP contributions for the top places, and the fairness
# profile of the top places.
#
# Every number comes from the svrisk packages (`features`, `geo`, `models`); this notebook
# only calls them and shows the results. To change a computation, change the package.
#
# **Data.** The folder named by the environment variable `SVRISK_NOTEBOOK_DATA` (a raw data
# folder, as given to `svrisk ingest`), else the synthetic demo borough generated into a
# temporary folder. Settings (target groups, police-generated features, seed) come from
# `svrisk.toml` in the working directory or `SVRISK_*` variables, as for the CLI.
#
# **Measures** (see `models.evaluation`): hit rate `n/N`; PAI `(n/N)/(a/A)`; PEI\* `n/n*`
# where `n*` is the most events any selection of the same area could have caught (1.0 is
# the ceiling); RRI, how stable the top places are from one period to the next. `harm_*`
# columns weight each event by its harm. Ties: expected count, then last period's count,
# then unit id.

# %% tags=["parameters"]
DEMO_SEED = 7  # seed of the generated demo borough (ignored with SVRISK_NOTEBOOK_DATA)
UNITS = "lsoa2011"  # unit set: lsoa2011, lsoa2021, ward2018/ward2022, or grid<metres> e.g. grid250
HORIZON = 1  # months forecast
N_ORIGINS = 3  # rolling forecast origins: the last N with 12 months of history and HORIZON months after
ORIGINS = None  # or explicit origins, e.g. ["2017-01", "2017-02", ...]; None uses N_ORIGINS
TRAIN_ORIGINS = 6  # earlier origins stacked to train each model (the CLI default is 12)
SEED = 0  # model seed (written into the saved version)
TOP_N = 10  # places listed, explained and profiled
PERMUTATIONS = 999  # Gi* permutations for the hot spot class, used only with inference="permutation"

# %%
import json
import os
import tempfile
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from features.build import FeatureBuilder
from features.months import ranges
from sources.demo.borough import generate_demo
from sources.ingest import data_hashes, ingest
from sources.store import Store
from features.units import build_units
from models.backtest import backtest, default_methods, fit_at
from models.fairness import fairness_profile
from models.glm import PoissonGLM
from models.lifecycle import train
from models.registry import load_model
from models.ranking import clear_hold_build, expected_harm, rank_from_model, youth_list
from models.hotspots.analysis import analyse_hotspots
from reports.model_card import card_documents
from service.pipeline import backtest_origins, latest_cutoff
from service.stores import ingest_options
from service.run import hubs_layer
from service.settings import get_settings

pd.set_option("display.max_colwidth", None)  # reasons are sentences: show them whole
pd.set_option("display.max_columns", None)  # and every column of the ranking (reasons, hot spot classes)
settings = get_settings()
WORK = tempfile.TemporaryDirectory(prefix="svrisk-retrain-")  # removed when the kernel stops
data_dir = Path(os.environ.get("SVRISK_NOTEBOOK_DATA") or generate_demo(Path(WORK.name) / "demo", seed=DEMO_SEED))
print("data folder:", data_dir)

# %% [markdown]
# ## Units and features
#
# The store is ingested into a temporary folder; the feature builder does the geometry
# work once and then builds the matrix for any cutoff from months strictly before it.

# %%
report = ingest(data_dir, Path(WORK.name) / "store", options=ingest_options(settings))
store = Store(Path(WORK.name) / "store")
units = build_units(store, UNITS)
fb = FeatureBuilder(store, units)
print(units, "| months with data:", f"{fb.months[0]:%Y-%m}..{fb.months[-1]:%Y-%m}", "| target groups:", fb.target_groups)
print("\n".join(fb.notes))
fb.dictionary()

# %% [markdown]
# ## Rolling-origin backtest
#
# The origins are the last `N_ORIGINS` months with a full history window before them and
# `HORIZON` months of data from them (as `svrisk backtest` chooses them; a store ending with an
# isolated extract years later does not qualify). At each origin every method is refitted on
# data before it (models on `TRAIN_ORIGINS` earlier origins) and scored on the next
# `HORIZON` months. One row per method and slice, the measures averaged over origins.

# %% tags=["backtest"]
origins = ORIGINS or backtest_origins(fb, HORIZON, settings.model.history_months, count=N_ORIGINS)
methods = default_methods(SEED)
print("origins:", ranges(origins), "| methods:", list(methods))
table = backtest(fb, methods, origins=origins, horizon=HORIZON, train_origins=TRAIN_ORIGINS)
table

# %% [markdown]
# ### Methods compared at 1%, 5% and 10% of the area
#
# Beating the plain 12-month count (`count_12m`) is the real test.

# %% tags=["compare"]
by_area = table[table["coverage"].notna()]
by_area.pivot(index="method", columns="coverage", values=["hit_rate", "pai", "pei"]).round(3)

# %%
by_area.pivot(index="method", columns="coverage", values=["harm_hit_rate", "harm_pai", "harm_pei"]).round(3)

# %%
by_area.pivot(index="coverage", columns="method", values="pei").plot.bar(figsize=(10, 4), ylim=(0, 1.05), title=f"PEI* by area coverage, {UNITS}, horizon {HORIZON}, {len(origins)} origins", rot=0)

# %% [markdown]
# ## Fit the default model as a saved version
#
# The cutoff is the latest month whose previous 12 months all have data.
# `models.lifecycle.train` fits the default method on data before the cutoff, checks its
# calibration on the previous month, backtests it against the 12-month count on the same
# origins, and saves the version atomically with its model card.

# %% tags=["train"]
cutoff = latest_cutoff(fb, settings.model.history_months)
models_dir = Path(WORK.name) / "models"
version = train(fb, cutoff, models_dir, horizon=HORIZON, seed=SEED, train_origins=TRAIN_ORIGINS, backtest_origins=list(origins), top_n=TOP_N,
                data_hashes=data_hashes(store.report()), documents=card_documents)
model, meta = load_model(models_dir, version)
print("cutoff:", f"{cutoff:%Y-%m}", "| version:", version, "| method:", meta["method"], "|", model)
Markdown((models_dir / version / "card.md").read_text(encoding="utf-8"))

# %% [markdown]
# ## The ranking at the cutoff, with reasons
#
# Expected count with an 80% interval, the three strongest reasons (signed contributions
# in words), the Gi\* class of the last 12 months' count and the emerging hot spot category
# (`models.hotspots.analysis.analyse_hotspots`, as in `svrisk run`).

# %% tags=["ranking"]
hs = analyse_hotspots(fb, cutoff, permutations=PERMUTATIONS, seed=SEED, fdr_alpha=settings.model.fdr_alpha, areas=False)
ranking, X = rank_from_model(fb, model, cutoff, hotspots=hs.table)
ranking.drop(columns="geometry").head(TOP_N)

# %%
ax = ranking.plot(column="expected", scheme="quantiles", k=5, cmap="OrRd", legend=True, edgecolor="white", linewidth=0.2, figsize=(8, 7))
ranking.head(TOP_N).boundary.plot(ax=ax, color="black", linewidth=1.2)
ax.set_title(f"Expected serious violence, {UNITS}, from {cutoff:%Y-%m} (top {TOP_N} outlined)")
ax.set_axis_off()

# %% [markdown]
# ### SHAP contributions for the top places
#
# Contributions to each place's log rate (`contributions`, shap TreeExplainer for the
# boosting model; the boosting model is trained here when the default chose a plain rate): the features that move the top places most, and their values per place.

# %% tags=["shap"]
# The default may have chosen a plain rate (last year's count, the long-run mean): nothing to decompose.
# Then the boosting model, trained on the same data, is what the contributions explain.
explained = model if hasattr(model, "contributions") else load_model(models_dir, train(
    fb, cutoff, models_dir, method="xgb", horizon=HORIZON, seed=SEED, train_origins=TRAIN_ORIGINS, top_n=TOP_N,
    documents=card_documents))[0]
print("contributions of:", explained)
shap_top = explained.contributions(X.loc[ranking["unit_id"].head(TOP_N)])
strongest = shap_top.abs().mean().nlargest(TOP_N)
strongest.sort_values().plot.barh(figsize=(8, 4), title=f"Mean |SHAP| over the top {TOP_N} places")
shap_top[strongest.index].round(3)

# %% [markdown]
# ## GLM rate ratios
#
# The Poisson GLM (with the spatial lag of the 12-month count) fitted on the same training
# design. For log-scale features the ratio is per doubling of `1 + value`, for the others
# per standard deviation (`sd`); `lo`-`hi` is the 95% interval.

# %% tags=["glm"]
glm = fit_at(fb, PoissonGLM(), cutoff, HORIZON, train_origins=TRAIN_ORIGINS)
glm.rate_ratios().sort_values("rate_ratio", ascending=False).round(3)

# %% [markdown]
# On the demo borough the generating process is known (`truth.json`): serious violence
# rises with deprivation (`b_dep`), station footfall (`b_foot`) and nearby secondary schools
# (`b_school`), on the log scale per standard unit. Compare them with the rate ratios above,
# remembering that the GLM also sees the recent counts, which already carry much of the
# same signal: with the counts in, the context terms measure what is left over, and can be
# small or even reversed.

# %%
if (data_dir / "truth.json").is_file():
    display(pd.Series(json.loads((data_dir / "truth.json").read_text())["process"])[["b_dep", "b_foot", "b_school"]])

# %% [markdown]
# ## Fairness profile of the top places
#
# Deprivation (and ethnicity, where the data has it) of the residents of the top places
# against the borough's, population-weighted. A ratio well above 1 on deprivation means
# the ranking concentrates attention on deprived places: read it with the caveats on the
# model card.

# %% tags=["fairness"]
profile = fairness_profile(ranking, X, top_n=TOP_N, police_generated_used=fb.allow_police_generated)
print(profile["note"])
pd.DataFrame(profile["rows"])

# %% [markdown]
# ## Deployment lists
#
# Candidate Clear Hold Build areas (contiguous groups of the top 5% of the area, by
# expected harm, with the wards they overlap and the stations and schools within 250 m) and a detached
# youth-work list.

# %% tags=["deployment"]
ward_layer = store.units(max(e for e in store.editions() if e.startswith("ward")))
areas = clear_hold_build(ranking, units.graph("queen"), harm=expected_harm(ranking, X), coverage=0.05, wards=ward_layer, hubs=hubs_layer(store))
areas.drop(columns="geometry")

# %%
youth_list(ranking, X, top_n=TOP_N).drop(columns="geometry")
