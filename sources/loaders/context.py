"""What every loader is given: the tolerances and limits, the study area, the taxonomy and known codes.

A loader is a pure function of (path, context): it reads one input and returns what it
made of it. Nothing a loader does depends on what another input held, so the monthly
files of a folder can be loaded in any order or in parallel; what spans inputs (one
event per police.uk crime reference, one station from two lists) is resolved by
``sources.ingest`` after every input is loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from sources.loaders.points import StudyArea
from sources.readers import MB, Limits
from sources.taxonomy import Taxonomy


@dataclass(frozen=True)
class IngestOptions:
    """Tolerances and limits of ingest (``service.settings.IngestSettings`` carries the configured values)."""

    point_tolerance_m: float = 250.0
    """Events may lie this far outside the study area and still be kept."""
    hub_tolerance_m: float = 2000.0
    """Hubs (stations, schools) may lie this far outside the area."""
    max_file_mb: float = 4096.0
    """Largest input file on disk (archives and vector files too); larger ones are refused unread."""
    max_table_mb: float = 512.0
    """Most text one table may expand to (plain CSV, gzip, zip member): caps decompression bombs."""
    max_field_chars: int = 1_000_000
    """Longest CSV field kept; a row with a longer one is rejected."""
    keep_going: bool = False
    """Load the readable rows of damaged files and report what was lost, instead of stopping."""
    allow_outside: tuple[str, ...] = ()
    """Folders outside the data folder that its catalogue paths and symbolic links may lead to (else refused)."""
    piece_mb: float = 16.0
    """With parallel workers, a police.uk CSV of more than twice this is parsed and checked in pieces of
    about this size on the workers (0: never): one long file then uses every worker."""

    @property
    def limits(self) -> Limits:
        return Limits(max_file_bytes=int(self.max_file_mb * MB), max_table_bytes=int(self.max_table_mb * MB),
                      max_field_chars=int(self.max_field_chars))


@dataclass
class IngestContext:
    taxonomy: Taxonomy
    options: IngestOptions = field(default_factory=IngestOptions)
    area: StudyArea = field(default_factory=lambda: StudyArea(None))
    codes: dict[str, set[str]] = field(default_factory=dict)  # edition -> unit codes
    today: pd.Timestamp = field(default_factory=lambda: pd.Timestamp.today().normalize())
    # map(function, items, shared, nbytes=) -> [function(item, *shared) for item in items], in order, e.g.
    # on a process pool or a Dask cluster (shared is sent to each worker once; nbytes: the files' size,
    # so a pool can keep a small job here); None: one after another here
    map_files: Callable[..., list] | None = None

    @property
    def limits(self) -> Limits:
        return self.options.limits

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
