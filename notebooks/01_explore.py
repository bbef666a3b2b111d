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
# # Explore the data
#
# What the borough's data says before any model: what was read and what was rejected,
# monthly trends by offence group, serious violence per 1,000 residents by LSOA and ward,
# and maps of the last 12 months with Getis-Ord Gi\* hot and cold spots.
#
# Every number here comes from the svrisk packages (`features`, `geo`, `models`); this
# notebook only calls them and shows the results. To change a computation, change the
# package, not the notebook.
#
# **Data.** The folder named by the environment variable `SVRISK_NOTEBOOK_DATA` (a raw data
# folder, as given to `svrisk ingest`), else the synthetic demo borough generated into a
# temporary folder. Settings (target groups, police-generated features) come from
# `svrisk.toml` in the working directory or `SVRISK_*` variables, as for the CLI.

# %% tags=["parameters"]
DEMO_SEED = 7  # seed of the generated demo borough (ignored with SVRISK_NOTEBOOK_DATA)
GRID = "grid250"  # unit set for the maps of the last 12 months
PERMUTATIONS = 999  # Gi* permutations, used only with inference="permutation" (the default is normal theory)
SEED = 0  # seed of the permutations
TOP_N = 10  # places listed in the tables

# %%
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from rasterio.plot import show as show_raster

from features.build import FeatureBuilder
from sources.demo.borough import generate_demo
from features.figures import needs_assessment_figures
from sources.ingest import ingest
from sources.store import Store
from reports.layers import GI_BIN_COLOURS
from features.units import build_units
from models.hotspots.analysis import analyse_hotspots
from service.pipeline import latest_cutoff, target_events
from service.stores import ingest_options
from service.settings import get_settings

pd.set_option("display.max_colwidth", 200)  # quality messages are sentences
settings = get_settings()
WORK = tempfile.TemporaryDirectory(prefix="svrisk-explore-")  # removed when the kernel stops
data_dir = Path(os.environ.get("SVRISK_NOTEBOOK_DATA") or generate_demo(Path(WORK.name) / "demo", seed=DEMO_SEED))
print("data folder:", data_dir)
print("target groups (serious violence):", settings.model.target_groups)

# %% [markdown]
# ## Ingest: what was read, accepted and rejected
#
# `sources.ingest.ingest` validates every file into the store (EPSG:27700). Counts
# reconcile: rows read = accepted + rejected, per input.

# %% tags=["ingest"]
report = ingest(data_dir, Path(WORK.name) / "store", options=ingest_options(settings))
store = Store(Path(WORK.name) / "store")
print("totals:", report["totals"], "| reconciled:", report["reconciled"])
pd.DataFrame(report["inputs"])[["source", "kind", "table", "rows_read", "accepted", "rejected"]]

# %% [markdown]
# ### Rejected rows, by file and reason

# %% tags=["rejects"]
rejects = store.table("rejects")
rejects.value_counts(["source_file", "reason"]).rename("rows").reset_index()

# %%
rejects.head(TOP_N)

# %% [markdown]
# ### Quality flags
#
# Warnings about data that was accepted but looks incomplete (thin months, missing
# coordinates, unit-months with no events in usually busy places).

# %% tags=["quality"]
pd.DataFrame(report["quality_flags"], columns=["table", "check", "severity", "source", "message"])

# %% [markdown]
# ## Monthly trends by offence group
#
# Groups come from the offence taxonomy (`sources/data/offence_taxonomy.csv`).
# Police-generated groups (drugs, weapons) are shown here but are never a modelling target.

# %% tags=["trends"]
events = store.table("events")
monthly = pd.crosstab(events["month"], events["group"])
monthly.tail(12)

# %%
monthly.plot(subplots=True, layout=(-1, 4), figsize=(14, 8), sharex=True, legend=True, title="Events a month by offence group")
plt.tight_layout()

# %% [markdown]
# Serious violence (the target groups) a month, borough-wide:

# %%
lsoa = build_units(store, "lsoa2011")
fb_lsoa = FeatureBuilder(store, lsoa)
fb_lsoa.panel().sum().plot(figsize=(10, 3), title=f"Serious violence ({' + '.join(fb_lsoa.target_groups)}) a month")

# %% [markdown]
# ## Rates per 1,000 residents, last 12 months
#
# `cutoff` is the latest month whose previous 12 months all have data; every figure uses
# only months before it. `sv_rate_eb` is serious violence per 1,000 residents over those
# 12 months, empirical-Bayes smoothed toward the borough rate (small areas); `trend_sv_12m`
# is the % change on the previous 12 months. The data dictionary says how each is built.

# %%
cutoff = latest_cutoff(fb_lsoa)
print("cutoff:", f"{cutoff:%Y-%m}", "| months with data:", f"{fb_lsoa.months[0]:%Y-%m}..{fb_lsoa.months[-1]:%Y-%m}")
print("events assigned to LSOAs:", fb_lsoa.assignment_report())
RATE_COLUMNS = ["cnt_sv_12m", "pop_total", "sv_rate_eb", "trend_sv_12m"]
fb_lsoa.dictionary().set_index("name").loc[RATE_COLUMNS]

# %% [markdown]
# Borough headline figures as the needs assessment reports them: counts over the 12 months
# before the cutoff, per 1,000 residents, and the % change on the previous 12 months.

# %% tags=["figures"]
figures = needs_assessment_figures(fb_lsoa, store.table("population") if store.has("population") else None, cutoff)
print({k: v for k, v in figures.items() if k != "rows"})
pd.DataFrame(figures["rows"])

# %% [markdown]
# By LSOA and by ward, the places with the highest (smoothed) rate:

# %% tags=["rates_lsoa"]
X_lsoa = fb_lsoa.matrix(cutoff)
lsoa_rates = lsoa.frame.join(X_lsoa[RATE_COLUMNS], on="unit_id")
lsoa_rates.drop(columns="geometry").sort_values("sv_rate_eb", ascending=False).head(TOP_N)

# %% tags=["rates_ward"]
ward_edition = max(e for e in store.editions() if e.startswith("ward"))
wards = build_units(store, ward_edition)
X_ward = FeatureBuilder(store, wards).matrix(cutoff)
ward_rates = wards.frame.join(X_ward[RATE_COLUMNS], on="unit_id")
ward_rates.drop(columns="geometry").sort_values("sv_rate_eb", ascending=False).head(TOP_N)

# %%
fig, axes = plt.subplots(1, 2, figsize=(14, 6))
lsoa_rates.plot(column="sv_rate_eb", scheme="quantiles", k=5, cmap="OrRd", legend=True, edgecolor="white", linewidth=0.2, ax=axes[0])
ward_rates.plot(column="sv_rate_eb", scheme="quantiles", k=5, cmap="OrRd", legend=True, edgecolor="grey", linewidth=0.4, ax=axes[1])
axes[0].set_title(f"LSOA 2011: serious violence per 1,000 (EB), 12 months to {cutoff:%Y-%m}")
axes[1].set_title(f"{ward_edition}: serious violence per 1,000 (EB), 12 months to {cutoff:%Y-%m}")
for ax in axes:
    ax.set_axis_off()

# %% [markdown]
# ## Map of the last 12 months on the grid, with hot spots
#
# Serious violence per grid cell over the 12 months before the cutoff; Getis-Ord Gi\* classes
# of those counts (a fixed distance band chosen by incremental spatial autocorrelation,
# normal-theory p-values, Benjamini-Hochberg false discovery rate control; colours as in the
# GIS layers; `hs.meta["diagnostics"]` says which band and why); emerging hot spot categories
# (Gi\* on quarterly counts of the last years plus a Mann-Kendall trend); and the kernel
# density of the same events. `models.hotspots.analysis.analyse_hotspots` is what `svrisk hotspots`
# and the run pipeline call.

# %% tags=["map"]
grid = build_units(store, GRID)
fb_grid = FeatureBuilder(store, grid)
hs = analyse_hotspots(fb_grid, cutoff, events=target_events(store, settings), permutations=PERMUTATIONS, seed=SEED, fdr_alpha=settings.model.fdr_alpha, areas=False)
print(hs.meta)
hot = hs.table
fig, axes = plt.subplots(2, 2, figsize=(14, 12))
hot.plot(column="y", scheme="quantiles", k=7, cmap="OrRd", legend=True, legend_kwds={"fontsize": 7, "loc": "lower left"}, ax=axes[0, 0])
hot.plot(color=hot["Gi_Bin"].map(GI_BIN_COLOURS), edgecolor="white", linewidth=0.2, ax=axes[0, 1])
hot.plot(column="emerging", categorical=True, cmap="tab20", legend=True, legend_kwds={"fontsize": 7}, ax=axes[1, 0])
show_raster(hs.kde[0], transform=hs.kde[1], cmap="magma_r", ax=axes[1, 1])
lsoa.frame.boundary.plot(ax=axes[1, 1], color="grey", linewidth=0.2)
axes[0, 0].set_title(f"{GRID}: serious violence, 12 months to {cutoff:%Y-%m}")
axes[0, 1].set_title(f"Gi* (red: hot, blue: cold), {hs.meta['diagnostics']['neighbourhood']}, FDR {settings.model.fdr_alpha}")
axes[1, 0].set_title("Emerging hot spot categories")
axes[1, 1].set_title("Kernel density of the same events (events per km²)")
for ax in axes.flat:
    ax.set_axis_off()

# %% tags=["emerging"]
pd.crosstab(hot["emerging"], hot["gi_class"], margins=True)

# %%
hot.drop(columns="geometry").sort_values("Zs", ascending=False).head(TOP_N)
