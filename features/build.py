"""The feature matrix: what is known about every unit as of a cutoff month.

A :class:`FeatureBuilder` does the geometry work for one unit set once (events
to units, event/hub distances, area overlaps) and then builds the matrix for
any cutoff by slicing cached arrays. A cutoff ``"2018-01"`` means "as of the
start of January 2018": features use months strictly before it; a target with
horizon h counts events in months [cutoff, cutoff + h).

Column names (models rely on the prefixes): ``cnt_<group>_<w>m``, ``harm_sv_12m``,
``trend_sv_12m``, ``nr_sv``, ``lag_cnt_sv_12m``, ``kde_sv_12m``, ``imd_*``,
``<domain>_score``, ``pop_total``, ``pop_density``, ``share_10_24``,
``sv_rate_eb``, ``foot_*``, ``dist_station_m``, ``bus_stop_density``,
``schools_*``, ``dist_school_m``, ``excl_rate``, ``light_density``,
``park_share``, ``sas_12m``. ``sv`` is the target groups (``target_groups``).
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from features.areas import area_sums, choose_source, coverage_note, target_coverage
from features.context import Context, Spec, eb_rate
from features.incidents import (
    KDE_BANDWIDTH_M,
    NEAR_REPEAT_DISTANCE_M,
    NEAR_REPEAT_MONTHS,
    NEAR_REPEAT_WEEKS,
    MonthlyCube,
)
from features.months import (
    OriginPlan,
    backtest_origins,
    month,
    ranges,
    shift,
    unusable_months,
    usable_cutoffs,
)
from features.scale import event_sums as local_event_sums
from features.targets import TARGET_GROUPS
from sources.loaders.crime import thin_counts
from sources.memstore import as_store
from sources.taxonomy import load_taxonomy

WINDOWS = (1, 3, 6, 12)
AREA_TABLE_SCHEMES = ("met_annual",)
"""Taxonomy schemes used only for area count tables, whose groups are not event groups."""
EVENT_COLUMNS = ("month", "group", "harm")


def event_groups(taxonomy=None) -> tuple[list[str], set[str]]:
    """Offence groups of point events, and those the taxonomy marks police-generated.

    Groups come from the taxonomy table (data), in order of first appearance,
    leaving out schemes that only label area count tables.
    """
    table = (taxonomy or load_taxonomy()).table
    rows = table[~table["scheme"].isin(AREA_TABLE_SCHEMES)]
    groups = list(dict.fromkeys(rows["group"].astype(str)))
    police = set(rows.loc[rows["police_generated"].astype(bool), "group"].astype(str))
    return groups, police


class FeatureBuilder:
    """Feature matrices, targets and panels for one unit set, for any cutoff.

    Parameters
    ----------
    store : Store, path or mapping of table name -> DataFrame
        Needs ``events``; every other table is optional and its features are
        left out (with a line in :attr:`notes`) when absent.
    units : geo.units.UnitSet
    target_groups : sequence of str
        The offence groups that make ``sv`` (the target); default
        :data:`TARGET_GROUPS`, victim-reported serious violence.
    allow_police_generated : bool
        Add police-generated groups and stop and search as features (and allow
        them as targets). Off by default: outputs say so when on.
    source : {"auto", "points", "areas"}
        Where the events come from: the point events, or monthly counts by area
        (``area_counts``, e.g. the Met's ward tables) for units of their edition;
        ``"auto"`` takes whichever reaches the later month (:func:`features.areas.choose_source`).
    event_sums : features.scale.EventSums, optional
        The events already summed per unit and month (e.g. on a process pool or a Dask cluster by
        :meth:`service.engine.Engine.event_sums`, for the same ``units``, groups
        and target groups). None: sum them here in this process, piece by piece
        (:func:`features.scale.event_sums`).

    Examples
    --------
    >>> fb = FeatureBuilder(store, build_units(store, "lsoa2011"))   # doctest: +SKIP
    >>> X = fb.matrix("2018-01"); y = fb.target("2018-01", horizon=1) # doctest: +SKIP
    """

    def __init__(self, store, units, *, target_groups=TARGET_GROUPS, allow_police_generated: bool = False,
                 source: str = "auto", event_sums=None):
        self.store = as_store(store)
        self.units = units
        self.allow_police_generated = bool(allow_police_generated)
        self.groups, self.police_groups = event_groups()
        self.target_groups = self._check_groups(list(target_groups), "target_groups")
        self.feature_groups = [
            g for g in self.groups if self.allow_police_generated or g not in self.police_groups
        ]
        self.notes: list[str] = []
        if not self.allow_police_generated:
            self.notes.append(
                f"police-generated groups {sorted(self.police_groups)} and stop and search are left out "
                "of the features (allow_police_generated is off)"
            )

        if event_sums is None:
            source = choose_source(self.store, units.edition, source, self.target_groups)
            event_sums = (area_sums(self.store, units, self.groups) if source == "areas"  # the area tables
                          else local_event_sums(self.store, units, self.groups, self.target_groups))
        self.source = event_sums.source
        self.coverage = None
        if self.source == "areas":
            self.notes.append(f"events are the store's monthly counts by {units.edition} area (area_counts), not "
                              "points: near-repeat and kernel density are left out")
            self.coverage = target_coverage(self.store, units.edition, self.target_groups)
            if coverage_note(self.coverage):
                self.notes.append(coverage_note(self.coverage))
        self._assign: dict = dict(event_sums.assignment)
        self._assign["edition"] = units.edition
        self._cube = event_sums.cube
        self._kernel = event_sums.kernel
        self._lag = units.graph("queen").transform("r").sparse.tocsr()
        self._context = Context(self.store, units)
        self.notes += self._context.notes

        self._sas = None
        if self.allow_police_generated and self.store.has("stop_search"):
            ss = self.store.table("stop_search")
            rep: dict = {}
            su = units.assign(ss, report=rep)
            self._sas = MonthlyCube(su, ss["month"], pd.array(["sas"] * len(ss), dtype="string"),
                                    np.zeros(len(ss)), len(units), ["sas"])
            self._assign["stop_search"] = rep
        elif self.allow_police_generated:
            self.notes.append("no stop_search table: sas_12m left out")
        self._specs = self._build_specs()

    # ---- contract ------------------------------------------------------------------------
    @property
    def months(self) -> list[pd.Timestamp]:
        """Months (first day) with at least one event in the store, sorted."""
        return [m for m, p in zip(self._cube.months, self._cube.present, strict=True) if p]

    def month_totals(self) -> pd.Series:
        """Events per month (all groups, units of this set), for the months with data."""
        return self.group_totals().sum(axis=1)

    def group_totals(self) -> pd.DataFrame:
        """Events per month (rows, months with data) and offence group (columns), over all units."""
        totals = self._cube.counts.sum(axis=0)[self._cube.present]
        return pd.DataFrame(totals, index=pd.DatetimeIndex(self.months, name="month"), columns=self.groups)

    @property
    def thin_months(self) -> dict[pd.Timestamp, float]:
        """Months with data but far fewer events than usual (see ``sources.loaders.crime.thin_counts``)."""
        return thin_counts(self.month_totals())

    @property
    def complete_months(self) -> list[pd.Timestamp]:
        """Months with data that are not thin: the months forecasts and backtests may use."""
        thin = self.thin_months
        return [m for m in self.months if m not in thin]

    def usable_cutoffs(self, history: int, horizon: int = 0, min_history: int | None = None) -> list[pd.Timestamp]:
        """Cutoffs whose ``history`` months before (or, with ``min_history``, at least that many since
        the data begin) and ``horizon`` months from them are complete: the cutoffs :meth:`check_cutoff`
        accepts (``features.months.usable_cutoffs``)."""
        return usable_cutoffs(self.complete_months, history, horizon, min_history=min_history)

    def backtest_origins(self, history: int, horizon: int = 1, min_history: int | None = None,
                         count: int = 18) -> tuple[OriginPlan, list[str]]:
        """The last ``count`` usable origins (``features.months.backtest_origins``) and notes saying what
        shortened or removed them: each missing or thin month once, with the origins it removed.

        Raises
        ------
        ValueError
            One line naming the complete months there are and what an origin needs.
        """
        try:
            plan = backtest_origins(self.complete_months, history, horizon, min_history=min_history, count=count)
        except ValueError as exc:
            thin = self.thin_months
            shown = f"; thin months {ranges(thin)}" if thin else ""
            raise ValueError(f"{exc} ({self.units.edition}, data {self.data_span()}{shown})") from None
        notes = []
        if plan.short:
            first = self.complete_months[0]
            lo, hi = plan.history_of(plan.short[0], first), plan.history_of(plan.short[-1], first)
            notes.append(f"window shortened: origins {ranges(plan.short)} have {lo}..{hi} months of history, not "
                         f"{history} (the complete data begin {first:%Y-%m}); their windows are scaled up to full length")
        thin = self.thin_months
        median = float(self.month_totals().median()) if self.months else 0.0
        for m, gone in plan.removed.items():
            why = (f"{m:%Y-%m} is thin ({thin[m]:,.0f} events where about {median:,.0f} is usual)" if m in thin
                   else f"{m:%Y-%m} has no data")
            notes.append(f"{why}: origins {ranges(gone)} left out")
        for m in thin:
            if m not in plan.removed:
                notes.append(f"{m:%Y-%m} is thin ({thin[m]:,.0f} events where about {median:,.0f} is usual): "
                             "left out; none of these origins needed it")
        return plan, notes

    def check_cutoff(self, cutoff, history: int, horizon: int = 0, what: str = "cutoff",
                     min_history: int | None = None) -> pd.Timestamp:
        """``cutoff`` as a month if the ``history`` months before it (and ``horizon`` from it) are complete.

        With ``min_history``, a window reaching back before the first month of data is
        shortened to the months since it, but not below ``min_history`` (the windows of a
        short history are completed by scaling, see ``features.months.complete_windows``);
        a month missing or thin *inside* the data's span, or after its end, makes the
        cutoff unusable.

        Raises
        ------
        ValueError
            Naming the months that are missing or thin, and the latest usable cutoff.
        """
        c = month(cutoff)
        bad = unusable_months(self.complete_months, c, history, horizon, min_history=min_history)
        if not bad:
            return c
        usable = self.usable_cutoffs(history, horizon, min_history)
        thin = self.thin_months
        median = float(self.month_totals().median()) if self.months else 0.0
        missing = [m for m in bad if m not in thin]
        parts = []
        if missing:
            parts.append(f"no data for {ranges(missing)}")
        if thin:
            shown = [m for m in bad if m in thin]
            if shown:
                parts.append("too few events in " + ", ".join(
                    f"{m:%Y-%m} ({thin[m]:,.0f} where about {median:,.0f} is usual)" for m in shown))
        span = f"{history} months before it" + (f" and {horizon} from it" if horizon else "")
        floor = history if min_history is None else min(min_history, history)
        latest = (f"the latest usable {what} is {usable[-1]:%Y-%m}" if usable
                  else f"no {what} has {span} complete" if floor == history
                  else f"no {what} has even {floor} complete months in a row before it")
        raise ValueError(f"{what} {c:%Y-%m} needs complete data in the {span} "
                         f"({ranges([shift(c, k) for k in range(-int(history), int(horizon))])}): "
                         f"{'; '.join(parts)}; {latest} ({self.units.edition}, data {self.data_span()})")

    def data_span(self) -> str:
        """``"2016-01..2018-06, 2024-04"``: the months with data, as ranges."""
        return ranges(self.months) if self.months else "no months"

    def matrix(self, cutoff) -> pd.DataFrame:
        """Features of every unit as of ``cutoff`` ("YYYY-MM"): one row per unit_id.

        Only months strictly before the cutoff are used. Windows reaching before
        the first month of data count what there is (zeros); see :meth:`gaps`.
        """
        c = month(cutoff)
        k = self._cube.index(c)
        cols: dict[str, np.ndarray] = {}
        gi = {g: i for i, g in enumerate(self.groups)}
        sv = [gi[g] for g in self.target_groups]
        win = {w: self._cube.window(k - w, k) for w in WINDOWS}
        for g in self.feature_groups:
            for w in WINDOWS:
                cols[f"cnt_{g}_{w}m"] = win[w][:, gi[g]]
        for w in WINDOWS:
            cols[f"cnt_sv_{w}m"] = win[w][:, sv].sum(axis=1)
        last12 = cols["cnt_sv_12m"]
        prev12 = self._cube.window(k - 24, k - 12)[:, sv].sum(axis=1)
        cols["harm_sv_12m"] = self._cube.window(k - 12, k, "harm")[:, sv].sum(axis=1)
        cols["trend_sv_12m"] = 100.0 * (last12 - prev12) / np.maximum(prev12, 1.0)
        cols["lag_cnt_sv_12m"] = self._lag @ last12
        if self.source == "points":
            cols["nr_sv"] = self._kernel.near_repeat(k)
            cols["kde_sv_12m"] = self._kernel.density(k, 12)
        cols.update(self._context.static())
        pop = self._context.population(c)
        if pop is not None:
            total, youth = pop
            cols["pop_total"] = total
            cols["pop_density"] = total / (self.units.frame["area_m2"].to_numpy() / 1e6)
            cols["share_10_24"] = np.where(total > 0, youth / np.where(total > 0, total, 1.0), 0.0)
            cols["sv_rate_eb"] = eb_rate(last12, total)
        cols.update(self._context.footfall(c))
        cols.update(self._context.exclusions(c))
        if self._sas is not None:
            cols["sas_12m"] = self._sas.window(self._sas.index(c) - 12, self._sas.index(c))[:, 0]
        names = [s.name for s in self._specs]
        frame = pd.DataFrame({n: np.asarray(cols[n], dtype="float64") for n in names}, index=self.units.ids)
        return frame

    def target(self, cutoff, horizon: int = 1, groups=None, weight: str = "count") -> pd.Series:
        """Events per unit in months [cutoff, cutoff + horizon), counted or harm-weighted.

        Raises ``ValueError`` when a month of the horizon has no data at all
        (past the end of the store or in a gap): a zero there would be false.
        """
        if weight not in ("count", "harm"):
            raise ValueError(f"weight must be 'count' or 'harm', got {weight!r}")
        if int(horizon) != horizon or horizon < 1:
            raise ValueError(f"horizon must be a whole number of months >= 1, got {horizon!r}")
        groups = self._target_groups(groups)
        c = month(cutoff)
        k = self._cube.index(c)
        gaps = self._cube.missing_months(k, k + int(horizon))
        if gaps:
            span = f"{self.months[0]:%Y-%m}..{self.months[-1]:%Y-%m}" if self.months else "no months"
            raise ValueError(
                f"target at cutoff {c:%Y-%m} horizon {horizon}: no event data for "
                f"{', '.join(f'{m:%Y-%m}' for m in gaps)} (the store's events cover {span})"
            )
        gi = [self.groups.index(g) for g in groups]
        what = "counts" if weight == "count" else "harm"
        y = self._cube.window(k, k + int(horizon), what)[:, gi].sum(axis=1)
        return pd.Series(y, index=self.units.ids, name="target")

    def panel(self, groups=None, weight: str = "count") -> pd.DataFrame:
        """Units x months (every month with data), events per unit and month."""
        if weight not in ("count", "harm"):
            raise ValueError(f"weight must be 'count' or 'harm', got {weight!r}")
        groups = self._target_groups(groups)
        gi = [self.groups.index(g) for g in groups]
        cube = self._cube.counts if weight == "count" else self._cube.harm
        vals = cube[:, self._cube.present, :][:, :, gi].sum(axis=2)
        return pd.DataFrame(vals, index=self.units.ids, columns=pd.DatetimeIndex(self.months, name="month"))

    def dictionary(self) -> pd.DataFrame:
        """The data dictionary: one row per matrix column (name, meaning, source, unit, window)."""
        return pd.DataFrame([vars(s) for s in self._specs], columns=["name", "meaning", "source", "unit", "window"])

    def assignment_report(self) -> dict:
        """Events read, without a location, assigned to a unit, outside every unit, on shared boundaries."""
        return dict(self._assign)

    def gaps(self, cutoff, months_back: int = 24) -> list[pd.Timestamp]:
        """Months in the ``months_back`` before ``cutoff`` with no event data (windows there count 0)."""
        k = self._cube.index(month(cutoff))
        return self._cube.missing_months(k - months_back, k)

    # ---- internals -----------------------------------------------------------------------
    def _check_groups(self, groups: list[str], where: str) -> list[str]:
        unknown = [g for g in groups if g not in self.groups]
        if unknown:
            raise ValueError(f"{where}: unknown offence groups {unknown}; known groups are {self.groups}")
        if not groups:
            raise ValueError(f"{where}: no offence groups given")
        return groups

    def _target_groups(self, groups) -> list[str]:
        if groups is None:
            return self.target_groups
        groups = [groups] if isinstance(groups, str) else list(groups)
        groups = self._check_groups(groups, "groups")
        police = [g for g in groups if g in self.police_groups]
        if police and not self.allow_police_generated:
            raise ValueError(
                f"groups {police} are police-generated and cannot be a target unless "
                "allow_police_generated is on"
            )
        return groups

    def _build_specs(self) -> list[Spec]:
        sv = "+".join(self.target_groups)
        specs = []
        for g in self.feature_groups:
            src = "events (police-generated)" if g in self.police_groups else "events"
            for w in WINDOWS:
                specs.append(Spec(f"cnt_{g}_{w}m", f"{g} events in the unit", src, "count", f"{w} months before the cutoff"))
        for w in WINDOWS:
            specs.append(Spec(f"cnt_sv_{w}m", f"serious violence ({sv}) events in the unit", "events", "count", f"{w} months before the cutoff"))
        point_only = {"nr_sv", "kde_sv_12m"} if self.source == "areas" else set()
        specs += [s for s in [
            Spec("harm_sv_12m", f"harm-weighted serious violence ({sv}): sum of each event's harm weight", "events + offence taxonomy", "harm units", "12 months before the cutoff"),
            Spec("trend_sv_12m", "% change of serious violence on the previous 12 months: 100 (last - previous) / max(previous, 1)", "events", "%", "24 months before the cutoff"),
            Spec("nr_sv", f"near-repeat intensity: sum over serious violence events of exp(-d / {NEAR_REPEAT_DISTANCE_M:g} m) * exp(-age / {NEAR_REPEAT_WEEKS:g} weeks), d from the unit point, age from mid-month", "events", "weighted events", f"{NEAR_REPEAT_MONTHS} months before the cutoff"),
            Spec("lag_cnt_sv_12m", "mean of cnt_sv_12m over queen-contiguous neighbours (row-standardised; islands use the nearest unit)", "events", "count", "12 months before the cutoff"),
            Spec("kde_sv_12m", f"retrospective kernel density of serious violence at the unit point (Gaussian, {KDE_BANDWIDTH_M:g} m bandwidth)", "events", "events per km²", "12 months before the cutoff"),
        ] if s.name not in point_only]
        specs += [s for s in self._context.specs if not s.name.startswith("foot_") and s.name != "excl_rate"]
        if any(s.name == "pop_total" for s in self._context.specs):
            specs.append(Spec("sv_rate_eb", "serious violence per 1,000 residents over 12 months, empirical-Bayes smoothed toward the borough rate", "events + population", "per 1,000 residents", "12 months before the cutoff"))
        specs += [s for s in self._context.specs if s.name.startswith("foot_") or s.name == "excl_rate"]
        if self._sas is not None:
            specs.append(Spec("sas_12m", "stop and search records in the unit (police-generated)", "stop_search (police-generated)", "count", "12 months before the cutoff"))
        return specs


def features_to_files(fb: FeatureBuilder, cutoff, out_dir) -> dict[str, Path]:
    """Write the matrix at ``cutoff`` as GeoParquet (unit geometry, EPSG:27700) plus the dictionary.

    Files: ``features_<edition>_<YYYY-MM>.parquet``, ``dictionary.csv`` and
    ``features_<edition>_<YYYY-MM>.json`` (cutoff, edition, notes, assignment report).
    """
    c = month(cutoff)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    X = fb.matrix(c)
    units = fb.units.frame.set_index("unit_id")
    geo = gpd.GeoDataFrame(
        pd.concat([units[["name", "area_m2"]].reindex(X.index), X], axis=1).reset_index(),
        geometry=units.geometry.reindex(X.index).to_numpy(),
        crs=fb.units.frame.crs,
    )
    stem = f"features_{fb.units.edition}_{c:%Y-%m}"
    paths = {
        "matrix": out / f"{stem}.parquet",
        "dictionary": out / "dictionary.csv",
        "meta": out / f"{stem}.json",
    }
    geo.to_parquet(paths["matrix"])
    fb.dictionary().to_csv(paths["dictionary"], index=False)
    meta = {
        "edition": fb.units.edition, "cutoff": f"{c:%Y-%m}", "n_units": len(X),
        "target_groups": fb.target_groups, "police_generated_used": fb.allow_police_generated,
        "gaps": [f"{m:%Y-%m}" for m in fb.gaps(c)], "notes": fb.notes,
        "assignment": fb.assignment_report(),
    }
    paths["meta"].write_text(json.dumps(meta, indent=2))
    return paths
