"""Hotspot statistics: Getis-Ord Gi*, local Moran's I, emerging hot spots, KDE, operational areas.

Estimators follow scikit-learn (``__init__`` stores parameters, ``fit(y, graph)``
returns ``self``, results end in ``_``) and keep PySAL's names (``Gs_``, ``Zs_``,
``p_sim_``, ``Is_``, ``q_``).
"""

from .emerging import EmergingHotSpots, mann_kendall
from .fdr import benjamini_hochberg
from .getisord import GI_CLASSES, GetisOrdGStar
from .kde import kde_at, kde_surface, write_geotiff
from .moran import LocalMoran, LocalMoranRate, assuncao_reis_rates
from .regions import operational_areas
from .table import hotspot_table

__all__ = [
    "GI_CLASSES",
    "EmergingHotSpots",
    "GetisOrdGStar",
    "LocalMoran",
    "LocalMoranRate",
    "assuncao_reis_rates",
    "benjamini_hochberg",
    "hotspot_table",
    "kde_at",
    "kde_surface",
    "mann_kendall",
    "operational_areas",
    "write_geotiff",
]
