"""The canonical tables svrisk's ingest writes and every later stage reads.

Every loader turns one public file format into one of these tables; the store
(``sources.store``) writes each as (Geo)Parquet named ``<table>.parquet``.
Geometry is always EPSG:27700 (British National Grid), metres.

Months are ``datetime64[ns]`` at the first day of the month ("2017-03-01" is
March 2017). Codes are strings. Missing values are ``NA``, never "" or 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: dict[str, str]
    geometry: str | None = None  # geometry type, or None for a plain table
    doc: str = ""
    key: tuple[str, ...] = field(default_factory=tuple)


TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in [
        TableSpec(
            "events",
            {
                "event_id": "string",  # unique: source crime id, API id, or "<file>#<row>"
                "crime_id": "string",  # police.uk Crime ID / persistent_id; NA for ASB
                "month": "datetime64[ns]",
                "category": "string",  # the source's own category text or slug
                "group": "string",  # taxonomy group (violence, robbery, sexual, weapons, drugs, ...)
                "serious_violence": "bool",
                "police_generated": "bool",
                "harm": "float64",  # severity weight from the taxonomy
                "lsoa_code": "string",  # as reported by the source (may be NA)
                "location": "string",
                "outcome": "string",
                "source_file": "string",
                "source_row": "int64",  # 1-based data row number in the source file
            },
            geometry="Point",
            doc="One row per recorded crime or ASB incident with a location.",
            key=("event_id",),
        ),
        TableSpec(
            "stop_search",
            {
                "month": "datetime64[ns]",
                "date": "datetime64[ns, UTC]",
                "type": "string",
                "object_of_search": "string",
                "outcome": "string",
                "gender": "string",
                "age_range": "string",
                "self_defined_ethnicity": "string",
                "officer_defined_ethnicity": "string",
                "source_file": "string",
                "source_row": "int64",
            },
            geometry="Point",
            doc="Stop and search records. Police-generated: never a target; off by default as a feature.",
        ),
        TableSpec(
            "area_counts",
            {
                "unit_code": "string",
                "edition": "string",  # ward2018, ward2022, lsoa2011, lsoa2021
                "period_start": "datetime64[ns]",
                "period": "string",  # "month" or "year"
                "category": "string",  # source major category (normalised case)
                "subcategory": "string",  # source minor category, NA if none
                "group": "string",
                "count": "float64",
                "harm": "float64",  # harm weight of one offence of this category (taxonomy)
                "serious_violence": "bool",
                "release": "string",  # which release the row came from (NA if single release)
                "source_file": "string",
            },
            doc="Counts by area and period (Met ward/LSOA tables, incident records without points).",
        ),
        TableSpec(
            "units_<edition>",
            {"code": "string", "name": "string", "edition": "string"},
            geometry="MultiPolygon",
            doc="Boundaries: editions lsoa2011, lsoa2021, ward2018, ward2022, borough.",
            key=("code",),
        ),
        TableSpec(
            "lookup_lsoa11_lsoa21",
            {"lsoa11": "string", "lsoa21": "string", "change": "string"},
            doc="ONS LSOA 2011 -> 2021 best-fit lookup; change U/S/M/X.",
        ),
        TableSpec(
            "lookup_lsoa21_ward22",
            {"lsoa21": "string", "ward22": "string", "ward22_name": "string"},
        ),
        TableSpec(
            "imd",
            {
                "lsoa11": "string",
                "imd_score": "float64",
                "imd_rank": "float64",
                "imd_decile": "float64",
                # plus <domain>_score / _rank / _decile for income, employment, education,
                # health, crime, housing, living_env, idaci, idaopi, and any sub-domains
            },
            doc="English Indices of Deprivation 2019 at LSOA 2011 (1 = most deprived).",
            key=("lsoa11",),
        ),
        TableSpec(
            "population",
            {
                "code": "string",
                "edition": "string",  # lsoa2011 or lsoa2021
                "year": "int64",
                "age_from": "int64",
                "age_to": "int64",  # inclusive; 120 for "and over"
                "count": "float64",
            },
            doc="Residents by age band, tidy. Totals are the sum over bands.",
        ),
        TableSpec(
            "stations",
            {"station_key": "string", "name": "string", "network": "string", "lines": "string"},
            geometry="Point",
            doc="One row per station: station lists are merged by key, a later list filling in network/lines.",
            key=("station_key",),
        ),
        TableSpec(
            "station_footfall",
            {"station_key": "string", "year": "int64", "entries_exits": "float64"},
        ),
        TableSpec("bus_stops", {"stop_code": "string", "name": "string"}, geometry="Point"),
        TableSpec(
            "schools",
            {"urn": "string", "name": "string", "phase": "string", "type": "string", "status": "string"},
            geometry="Point",
            key=("urn",),
        ),
        TableSpec(
            "school_exclusions",
            {
                "urn": "string",
                "year": "string",  # academic year e.g. "2017/18"
                "headcount": "float64",
                "suspensions": "float64",
                "permanent_exclusions": "float64",
            },
        ),
        TableSpec(
            "partner_counts",
            {
                "route": "string",  # partner_ae_assaults, partner_youth_justice, partner_marac, partner_education
                "period": "string",  # "YYYY-MM", or an academic year "YYYY/YY"
                "month": "datetime64[ns]",  # NaT for academic years
                "area_level": "string",  # borough, ward, lsoa or school
                "area_code": "string",  # GSS code, or the school's URN
                "service": "string",  # A&E route: ae or ambulance; else NA
                "measure": "string",  # the layout's count column
                "value": "float64",  # NA when suppressed
                "suppressed": "bool",
                "suppressed_below": "float64",  # "<5" -> 4; NA when unknown or not suppressed
                "source_file": "string",
                "source_row": "int64",
            },
            doc="Partner data routes (sources.loaders.partner; docs/partner_data.md): counts only, never people.",
        ),
        TableSpec(
            "parks",
            {"name": "string", "town": "string", "postcode_district": "string", "facilities": "int64"},
            doc="Parks and open spaces; geometry only when the source has it (else empty points).",
        ),
        TableSpec("street_lights", {"asset_id": "string"}, geometry="Point"),
        TableSpec(
            "rejects",
            {
                "source_file": "string",
                "source_row": "int64",
                "reason": "string",
                "detail": "string",
                "raw": "string",  # the rejected row as JSON
            },
            doc="Every row a loader did not accept, with why. read = accepted + rejected.",
        ),
    ]
}

POINT_TABLES = ("events", "stop_search", "stations", "bus_stops", "schools", "street_lights")
