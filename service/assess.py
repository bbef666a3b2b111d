"""`svrisk assess` wiring: data folder -> store -> needs assessment -> evidence pack folder.

Only this module reads the settings for the needs assessment; the work is
:func:`models.needs.assessment.assess` and :func:`reports.needs_pack.write_pack`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from models.needs.assessment import Assessment, assess
from models.needs.monitoring import read_baseline
from reports.needs_pack import write_pack
from service.pipeline import hotspot_options
from service.settings import Settings
from service.stores import store_for
from sources.compare import read_compare_folder

Progress = Callable[[str], None]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "area"


def assess_step(settings: Settings, *, compare_dir: Path | None = None, period_end: str | None = None,
                baseline: Path | None = None, out_dir: Path | None = None, store_dir: Path | None = None,
                pdf: bool = True, progress: Progress | None = None) -> tuple[Assessment, dict[str, Path]]:
    """Build the evidence pack of the configured data folder; return the assessment and the pack's files."""
    store = store_for(settings, store_dir, progress)
    compare_dir = compare_dir if compare_dir is not None else settings.compare_dir
    compare = read_compare_folder(compare_dir) if compare_dir is not None else None
    previous = read_baseline(baseline) if baseline is not None else None
    a = assess(store, compare=compare, period_end=period_end, baseline=previous,
               hotspot_options=hotspot_options(settings), seed=settings.model.seed, knn=settings.units.knn,
               distance_band_m=settings.units.distance_band_m, progress=progress)
    out = Path(out_dir) if out_dir is not None else settings.out_dir / "assess" / f"{_slug(a.area_name)}-{a.period_end}"
    return a, write_pack(a, out, pdf=pdf, progress=progress)
