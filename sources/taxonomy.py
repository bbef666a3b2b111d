"""Map each source's offence categories to svrisk's groups and harm weights.

The mapping is data (``sources/data/offence_taxonomy.csv``), not code: one row per
(scheme, category, subcategory) with the group, the serious-violence, core and
police-generated flags, a harm weight and where the weight comes from.

Two measures of serious violence are defined here, once:

* **broad** (``serious_violence``): every offence of the groups violence against the person,
  robbery and sexual offences (the feature builder's target groups): a row is flagged exactly
  when its group is one of them, so the flag and the groups give the same total;
* **core** (``core``): violence with injury, homicide, personal robbery and sexual offences,
  the Home Office Duty guidance's focus. Only a scheme with minor categories (the Met's) can
  say it; a scheme with no row flagged ``core`` has no core measure (police.uk cannot
  separate injury from other violence). The column is optional in an analyst's own table
  (absent: no core measure). Matching is
case-insensitive and ignores runs of spaces; a subcategory ``*`` matches any
subcategory of its category. An analyst can point :func:`load_taxonomy` at their
own table with the same columns.

Linked police.uk records: one event per crime
---------------------------------------------
police.uk documents ``persistent_id`` as the "64-character unique identifier for that
crime" and ``id`` as an identifier that "only relates to the API" and "is not
guaranteed to always stay the same for each crime" (data.police.uk/docs, methods
crime-street and crimes-no-location); the bulk CSVs' ``Crime ID`` is the same
64-character identifier. Yet one crime reference is often published as several
records with different ``id`` values, in the same month and place, frequently in different
categories (on one borough's 30-month API extract, 2,202 references hold 5,014 records).
So the unit svrisk counts is the crime, and every police.uk loader applies one rule
(``sources.loaders.crime.rank_records``):

* a repeated ``id`` (API) or an identical row (bulk CSV) is the same record twice:
  rejected as ``duplicate record``;
* records sharing a crime reference are one crime, counted once as its most serious
  record: serious violence first, then the higher ``harm_weight`` of this table, then
  the record loaded first. The others are rejected as ``linked record of one crime``
  naming the record counted, so they still reconcile. A lower-harm record therefore
  never displaces a serious-violence record of the same reference, whatever order the
  file lists them in (police.uk sorts by category, so "keep the first" used to count
  ``public-order`` over ``violent-crime``);
* ``None``/``null``/empty references (anti-social behaviour has none) are missing, not
  shared: such records are never linked to each other.

The ingest report's ``linked_records`` gives the counts by group under this rule and
under "first record wins", for comparison.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from sources.readers import per_distinct

COLUMNS = (
    "scheme", "category", "subcategory", "group", "serious_violence",
    "police_generated", "harm_weight", "harm_provenance",
)
UNMAPPED_GROUP = "unmapped"


def normalise_category(text: pd.Series | str) -> pd.Series | str:
    """Casefold and squeeze spaces so 'VIOLENCE AGAINST  THE PERSON' matches 'Violence against the person'."""
    if isinstance(text, str):
        return re.sub(r"\s+", " ", text.strip()).casefold()
    return per_distinct(_normalise, text.astype("string"))


def _normalise(text: pd.Series) -> pd.Series:
    return text.str.strip().str.replace(r"\s+", " ", regex=True).str.casefold()


@dataclass(frozen=True)
class Taxonomy:
    table: pd.DataFrame

    def classify(
        self, scheme: str, category: pd.Series, subcategory: pd.Series | None = None
    ) -> pd.DataFrame:
        """Return group, serious_violence, core, police_generated and harm for each row.

        Unknown categories get group ``unmapped`` and harm 0; the caller reports them.
        """
        rules = self.table[self.table["scheme"] == scheme]
        if rules.empty:
            raise ValueError(f"taxonomy has no rows for scheme {scheme!r}")
        cat = normalise_category(category.fillna(""))
        sub = (
            normalise_category(subcategory.fillna(""))
            if subcategory is not None
            else pd.Series("", index=category.index, dtype="string")
        )
        exact = rules[rules["subcategory"] != "*"].set_index(["category_key", "subcategory_key"])
        wild = rules[rules["subcategory"] == "*"].set_index("category_key")
        out = pd.DataFrame(index=category.index)
        keys = pd.MultiIndex.from_arrays([cat.to_numpy(), sub.to_numpy()])
        fields = ["group", "serious_violence", "core", "police_generated", "harm_weight"]
        hit = exact.reindex(keys)[fields].set_axis(category.index)
        fallback = wild.reindex(cat.to_numpy())[fields].set_axis(category.index)
        merged = hit.where(hit["group"].notna(), fallback)
        out["group"] = merged["group"].fillna(UNMAPPED_GROUP).astype("string")
        out["serious_violence"] = merged["serious_violence"].fillna(False).astype(bool)
        out["core"] = merged["core"].fillna(False).astype(bool)
        out["police_generated"] = merged["police_generated"].fillna(False).astype(bool)
        out["harm"] = merged["harm_weight"].fillna(0.0).astype("float64")
        return out

    def best_scheme(self, category: pd.Series, subcategory: pd.Series | None = None) -> tuple[str, pd.DataFrame]:
        """The scheme that maps most rows of a table whose source is not known, and its classification.

        Ties go to the scheme listed first in the table.
        """
        best = None
        for scheme in dict.fromkeys(self.table["scheme"].astype(str)):
            cls = self.classify(scheme, category, subcategory)
            mapped = int((cls["group"] != UNMAPPED_GROUP).sum())
            if best is None or mapped > best[0]:
                best = (mapped, scheme, cls)
        return best[1], best[2]

    def has_core(self, scheme: str) -> bool:
        """The scheme defines the core measure (at least one of its rows is flagged ``core``)."""
        return bool(self.table.loc[self.table["scheme"] == scheme, "core"].any())


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """Read the taxonomy table (the packaged default when ``path`` is None)."""
    if path is None:
        with resources.files("sources.data").joinpath("offence_taxonomy.csv").open("rb") as fh:
            table = pd.read_csv(fh, dtype=str)
        where = "sources/data/offence_taxonomy.csv"
    else:
        table = pd.read_csv(path, dtype=str)
        where = str(path)
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{where}: taxonomy is missing columns {missing}; expected {list(COLUMNS)}")
    if "core" not in table.columns:
        table["core"] = "false"
    for flag in ("serious_violence", "core", "police_generated"):
        bad = ~table[flag].str.lower().isin(["true", "false"])
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0]) + 2
            raise ValueError(f"{where} row {row}: {flag} must be true/false, got {table[flag][bad].iloc[0]!r}")
        table[flag] = table[flag].str.lower() == "true"
    table["harm_weight"] = pd.to_numeric(table["harm_weight"], errors="raise")
    table["category_key"] = normalise_category(table["category"])
    table["subcategory_key"] = normalise_category(table["subcategory"])
    dup = table.duplicated(["scheme", "category_key", "subcategory_key"])
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0]) + 2
        raise ValueError(f"{where} row {row}: duplicate rule for {table.loc[dup].iloc[0][['scheme','category','subcategory']].tolist()}")
    return Taxonomy(table)


def read_data_table(name: str, path: str | Path | None = None) -> tuple[pd.DataFrame, str]:
    """A table that ships as package data (``sources/data/<name>``), or an analyst's own at
    ``path``, read as strings; returns it and where it came from (for error messages)."""
    if path is None:
        with resources.files("sources.data").joinpath(name).open("rb") as fh:
            return pd.read_csv(fh, dtype=str), f"sources/data/{name}"
    return pd.read_csv(path, dtype=str), str(path)
