"""What every loader is given: the study area, the taxonomy, known codes and ids seen so far."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from features.sources.loaders.points import StudyArea
from features.sources.taxonomy import Taxonomy


@dataclass(frozen=True)
class IngestOptions:
    """Tolerances of ingest (``service.settings.IngestSettings`` carries the configured values)."""

    point_tolerance_m: float = 250.0
    """Events may lie this far outside the study area and still be kept."""
    hub_tolerance_m: float = 2000.0
    """Hubs (stations, schools) may lie this far outside the area."""


@dataclass
class IngestContext:
    taxonomy: Taxonomy
    options: IngestOptions = field(default_factory=IngestOptions)
    area: StudyArea = field(default_factory=lambda: StudyArea(None))
    codes: dict[str, set[str]] = field(default_factory=dict)  # edition -> unit codes
    seen_ids: dict[str, tuple[str, int]] = field(default_factory=dict)  # crime id -> (file, row)
    today: pd.Timestamp = field(default_factory=lambda: pd.Timestamp.today().normalize())
    # map(function, items) -> results in order; None loads files one after another in-process
    map_files: Callable[[Callable, list], list] | None = None

    def edition_of(self, codes: pd.Series, family: str) -> pd.Series:
        """Which loaded edition (e.g. lsoa2011/lsoa2021) each code belongs to; NA if none.

        A code in both editions (unchanged LSOAs) gets the older edition's name + '+'.
        """
        out = pd.Series(pd.NA, index=codes.index, dtype="string")
        editions = sorted(e for e in self.codes if e.startswith(family))
        for edition in editions:
            hit = codes.isin(self.codes[edition])
            both = hit & out.notna()
            out[hit & out.isna()] = edition
            out[both] = out[both] + "+"
        return out
