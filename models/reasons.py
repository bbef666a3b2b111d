"""Turn signed feature contributions into reasons a tasking meeting can read.

A model gives, for each place, a signed contribution of each feature to its log
rate (GLM terms, SHAP values). Features describing one thing are pooled into a
*family* (the 1-, 3-, 6- and 12-month violence counts are one reason, not three);
a family's contribution is the sum of its members', and it is described by the
member that contributes most. The ``k`` families with the largest absolute
contribution become the place's reasons, largest first, in plain words: what the
value is and how it compares with the borough median ("12-month serious violence
14 events, 3.5x the borough median"); a family that lowers the risk says so
("Lowers risk: deprivation score 8 (borough median 22)").

A reason never contradicts its own numbers: a family whose lead value sits on the
wrong side of the borough median for the direction it pushes (a population
density below the median "raising" risk, which a tree model's interactions or
SHAP's baseline can produce) is not given as a reason; the next family is. For
most features more means more risk; for :data:`LESS_IS_RISKIER` (distances,
deprivation rank and decile, where 1 is most deprived) less does.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

GROUP_LABELS = {
    "sv": "serious violence",
    "violence": "violence",
    "robbery": "robbery",
    "sexual": "sexual offences",
    "weapons": "weapons possession",
    "drugs": "drug offences",
    "burglary": "burglary",
    "theft": "theft",
    "vehicle": "vehicle crime",
    "damage": "criminal damage",
    "public_order": "public order offences",
    "asb": "anti-social behaviour",
    "other": "other crime",
}
SV_GROUPS = ("sv", "violence", "robbery", "sexual")
"""Count groups pooled into the one "recent serious violence" reason (the default target)."""
LESS_IS_RISKIER = frozenset({"dist_station_m", "dist_school_m", "imd_rank", "imd_decile"})
"""Features whose low values are the risky end (a value below the median may raise risk)."""
LOWERS = "Lowers risk: "
"""Prefix of a reason that lowers the risk; a reason that raises it has none."""
_COUNT = re.compile(r"^cnt_(.+)_(\d+)m$")
_FOOT = re.compile(r"^foot_(\d+)$")
_SCHOOLS = re.compile(r"^schools_(\d+)$")
_MEAN = re.compile(r"^mean_(.+)_(\d+)m$")


def family(name: str) -> str:
    """The reason family of a feature (``cnt_violence_3m`` -> ``cnt_sv``; ``foot_500`` -> ``station``)."""
    if name.startswith("harm_sv_"):
        return "cnt_sv"
    if m := _COUNT.match(name) or _MEAN.match(name):
        # the target's own groups are one story: recent serious violence here
        return "cnt_sv" if m.group(1) in SV_GROUPS else f"cnt_{m.group(1)}"
    if _FOOT.match(name) or name in ("foot_decay", "dist_station_m"):
        return "station"
    if _SCHOOLS.match(name) or name == "dist_school_m":
        return "school"
    if name.startswith("imd_") or name.endswith("_score"):
        return "deprivation" if name.startswith("imd_") else name
    return name


def _times(value: float, median: float) -> str:
    if median > 0:
        ratio = value / median
        if round(ratio, 1) == 1.0 and ratio != 1.0:
            return f"just {'above' if ratio > 1 else 'below'} the borough median"
        return f"{ratio:.1f}x the borough median"
    return f"borough median {median:g}"


def coherent(name: str, value: float, median: float, contribution: float) -> bool:
    """Whether "``name`` = ``value`` raises (contribution > 0) or lowers the risk" agrees with the
    value's side of the borough median.

    >>> coherent("pop_density", 4263.0, 5300.0, 0.2)   # below the median cannot raise risk
    False
    >>> coherent("dist_station_m", 150.0, 800.0, 0.2)  # close to a station can
    True
    """
    if not (np.isfinite(value) and np.isfinite(median)) or value == median or contribution == 0:
        return False
    above = value > median
    riskier = (not above) if name in LESS_IS_RISKIER else above
    return riskier == (contribution > 0)


def sentence(text: str, contribution: float) -> str:
    """A reason as it is shown: capitalised; prefixed with :data:`LOWERS` when it lowers the risk."""
    if contribution < 0:
        return LOWERS + text
    return text[:1].upper() + text[1:]


def describe(name: str, value: float, median: float) -> str:
    """One feature's value in words, against the borough median."""
    if m := _COUNT.match(name):
        what = GROUP_LABELS.get(m.group(1), m.group(1).replace("_", " "))
        return f"{m.group(2)}-month {what} {value:.0f} event{'' if round(value) == 1 else 's'}, {_times(value, median)}"
    if m := _MEAN.match(name):
        what = GROUP_LABELS.get(m.group(1), m.group(1).replace("_", " "))
        return (f"long-run {what} {value:.1f} events a month (up to {m.group(2)} months), "
                f"{_times(value, median)}")
    if m := _FOOT.match(name):
        return f"within {m.group(1)} m of stations with {value / 1e6:.1f}M entries/exits a year"
    if m := _SCHOOLS.match(name):
        return f"{value:.0f} schools within {m.group(1)} m ({_times(value, median)})"
    texts = {
        "harm_sv_12m": f"12-month harm-weighted serious violence {_times(value, median)}",
        "lag_cnt_sv_12m": f"neighbouring places average {value:.1f} serious violence events in 12 months, "
        f"{_times(value, median)}",
        "nr_sv": f"recent serious violence close by (near-repeat), {_times(value, median)}",
        "kde_sv_12m": f"12-month serious violence density around the place {_times(value, median)}",
        "trend_sv_12m": f"serious violence {value:+.0f}% on the previous 12 months",
        "sv_rate_eb": f"{value:.1f} serious violence offences per 1,000 residents a year "
        f"(smoothed), {_times(value, median)}",
        "foot_decay": f"near busy stations ({value / 1e6:.1f}M entries/exits a year, distance-weighted)",
        "dist_station_m": f"{value:,.0f} m from the nearest station (borough median {median:,.0f} m)",
        "dist_school_m": f"{value:,.0f} m from the nearest school (borough median {median:,.0f} m)",
        "imd_score": f"deprivation score {value:.0f} (borough median {median:.0f})",
        "imd_rank": f"deprivation rank {value:,.0f} of 32,844 (borough median {median:,.0f})",
        "imd_decile": f"deprivation decile {value:.0f} (1 = most deprived; borough median {median:.0f})",
        "pop_density": f"{value:,.0f} residents per km² ({_times(value, median)})",
        "pop_total": f"{value:,.0f} residents",
        "share_10_24": f"{value:.0%} of residents aged 10-24 (borough median {median:.0%})",
        "bus_stop_density": f"{value:.0f} bus stops per km² ({_times(value, median)})",
        "light_density": f"{value:.0f} street lights per km² ({_times(value, median)})",
        "park_share": f"{value:.0%} park or open space (borough median {median:.0%})",
        "excl_rate": f"nearby schools exclude {value:.1f} per 100 pupils (borough median {median:.1f})",
        "sas_12m": f"12-month stop and search {value:.0f} (police-generated), {_times(value, median)}",
    }
    if name in texts:
        return texts[name]
    if name.endswith("_score"):
        label = name.removesuffix("_score").replace("_", " ")
        return f"{label} deprivation score {value:.3g} (borough median {median:.3g})"
    return f"{name} {value:.3g} (borough median {median:.3g})"


def reasons(contributions: pd.DataFrame, X: pd.DataFrame, k: int = 3) -> pd.DataFrame:
    """The ``k`` strongest signed reasons per place.

    Parameters
    ----------
    contributions : DataFrame, places x features
        Signed contributions to the log rate (e.g. ``model.contributions(X)``).
    X : DataFrame, places x features
        The raw feature values (borough medians are taken over all its rows).
    k : int

    Returns
    -------
    DataFrame indexed like ``contributions`` with columns ``reason_1`` ..
    ``reason_k`` (NA where a place has fewer non-zero, coherent reasons).
    """
    missing = [c for c in contributions.columns if c not in X.columns]
    if missing:
        raise ValueError(f"reasons: contributions name features not in X: {missing}")
    medians = X[contributions.columns].median()
    raw = X.reindex(contributions.index)[contributions.columns].to_numpy(dtype=float)
    fams = pd.Index([family(str(c)) for c in contributions.columns])
    by_family = contributions.T.groupby(fams.to_numpy(), sort=False).sum().T
    out = pd.DataFrame(pd.NA, index=contributions.index,
                       columns=[f"reason_{i + 1}" for i in range(k)], dtype="string")
    values = contributions.to_numpy()
    fam_values = by_family.to_numpy()
    fam_names = list(by_family.columns)
    col_of = {f: np.flatnonzero(fams == f) for f in fam_names}
    for row in range(len(contributions)):
        slot = 0
        for j in np.argsort(-np.abs(fam_values[row]), kind="stable"):
            total = fam_values[row, j]
            if slot == k or total == 0 or not np.isfinite(total):
                break
            cols = col_of[fam_names[j]]
            lead = cols[np.argmax(np.abs(values[row, cols]))]
            name = str(contributions.columns[lead])
            value, median = float(raw[row, lead]), float(medians[name])
            if not coherent(name, value, median, total):
                continue  # its own numbers would contradict the direction: say the next one
            out.iat[row, slot] = sentence(describe(name, value, median), total)
            slot += 1
    return out
