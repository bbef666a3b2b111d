"""One typed settings object, read from a TOML file and the environment.

Precedence (highest first): keyword arguments, environment variables ``SVRISK_*``
(nested with ``__``, e.g. ``SVRISK_MODEL__SEED``), the TOML file named by
``SVRISK_CONFIG`` (default ``svrisk.toml`` in the working directory), then the
defaults below. Nothing is read at import time: call :func:`get_settings`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from features.targets import TARGET_GROUPS


class IngestSettings(BaseModel):
    point_tolerance_m: float = Field(
        250.0, description="Events may lie this far outside the study area and still be kept."
    )
    hub_tolerance_m: float = Field(
        2000.0, description="Hubs (stations, schools) may lie this far outside the area."
    )
    max_file_mb: float = Field(
        4096.0, gt=0, description="Largest input file on disk (archives and vector files too); larger ones are "
        "refused from their size, unread.",
    )
    max_table_mb: float = Field(
        512.0, gt=0, description="Most text one table may hold once decompressed (plain CSV, gzip, zip member); "
        "a decompression bomb is counted in 1 MB pieces and refused at this size without being held.",
    )
    max_field_chars: int = Field(
        1_000_000, gt=0, description="Longest CSV field kept; a row with a longer field is rejected."
    )
    keep_going: bool = Field(
        False, description="Load the readable rows of damaged files and report what was lost, instead of "
        "stopping (the CLI's --keep-going).",
    )
    allow_outside: list[str] = Field(
        default_factory=list, description="Folders outside the data folder that catalogue paths and symbolic "
        "links may lead to; any other read outside the data folder is refused and reported.",
    )
    piece_mb: float = Field(
        16.0, ge=0, description="With parallel workers, a police.uk CSV of more than twice this is parsed and "
        "checked in pieces of about this size on the workers (0: never); the store is the same.",
    )


class UnitSettings(BaseModel):
    default: str = Field("lsoa2011", description="Unit set of `svrisk run` and the API's runs.")
    grid_size_m: float = Field(250.0, gt=0)
    grid_min_m: float = Field(50.0, gt=0, description="Smallest grid cell anyone may ask for, checked "
                              "before any data is read (max_units then bounds the cells over the area).")
    knn: int = Field(8, ge=1)
    distance_band_m: float = Field(500.0, gt=0)
    max_units: int = Field(100_000, ge=2, description="Largest grid (cells) a run may build: finer grids "
                           "exhaust memory (cells x months x offence groups).")


class ModelSettings(BaseModel):
    target_groups: list[str] = Field(default_factory=lambda: list(TARGET_GROUPS))
    allow_police_generated: bool = Field(
        False,
        description="Allow police-generated counts (stop and search, possession) as features "
        "or targets. Outputs say so when on.",
    )
    seed: int = 20240101
    permutations: int = Field(9999, ge=0)
    fdr_alpha: float = Field(0.05, gt=0, lt=1)
    history_months: int = Field(12, ge=1)
    horizon_months: int = Field(1, ge=1, description="Horizon of the main forecast (youth-work deployment).")
    planning_horizon_months: int = Field(
        3, ge=0, description="Horizon of the run's second forecast, for Clear Hold Build planning "
        "(its areas are drawn from it); 0 or the main horizon turns it off.")
    prediction_cache_mb: float = Field(
        256.0, ge=0, description="Disk kept for backtest predictions in each store's cache/predictions folder "
        "(a second backtest of an unchanged store reads them instead of refitting); 0 turns it off.")


class HotspotSettings(BaseModel):
    neighbourhood: str = Field(
        "auto", pattern="^(auto|band|knn|queen)$",
        description="auto: fixed distance band chosen by incremental spatial autocorrelation (as ArcGIS's "
        "Optimized Hot Spot Analysis); band: band_m; knn: units.knn nearest; queen: contiguity.",
    )
    band_m: float | None = Field(None, gt=0, description="A fixed distance band in metres (overrides the choice).")
    min_neighbours: int = Field(8, ge=0, description="Every unit gets at least this many neighbours on a band.")
    inference: str = Field(
        "normal", pattern="^(normal|permutation)$",
        description="normal: normal-theory p-values of the z-scores (ArcGIS's default); permutation: "
        "conditional-permutation pseudo p-values (model.permutations of them).",
    )


class MapSettings(BaseModel):
    tiles: str = Field(
        "none",
        description='Base map under the interactive map: "none" (offline, the default), "osm" '
        "(OpenStreetMap) or a force's own XYZ tile URL template https://.../{z}/{x}/{y}.png.",
    )
    tiles_attribution: str | None = Field(
        None, description="Credit line of a custom tile server (shown on the map; default its host name)."
    )
    pdf: bool = Field(True, description="Print the briefing to briefing.pdf with headless Chromium.")
    browser: str | None = Field(None, description="Chromium executable for the PDF (default: found on PATH).")


class ServiceSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = Field(
        None, pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="Base URL clients reach the service at (e.g. https://gis.example.org/svrisk); "
        "every link is built from it, never from the Host header. Unset: http://<host>:<port>.",
    )
    keys_file: Path = Path("out/api_keys.json")
    key_days: int = Field(365, ge=1, description="Days a new API key is valid unless told otherwise.")
    max_page_size: int = Field(10_000, ge=1)
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="Largest request body accepted.")
    max_header_bytes: int = Field(16 * 1024, ge=1024, description="Largest request head accepted.")
    header_timeout_s: float = Field(10.0, gt=0, description="Time a client has to send a request head.")
    body_timeout_s: float = Field(30.0, gt=0, description="Time a client has to send a request body.")
    keep_alive_s: int = Field(5, ge=1, description="Idle seconds before a keep-alive connection closes.")
    max_connections: int = Field(2048, ge=1, description="Open connections beyond this answer 503.")
    run_cache_size: int = Field(4, ge=1, description="Runs kept in memory for serving.")
    job_queue_size: int = Field(8, ge=1, description="Jobs waiting beyond this are refused (429).")
    job_workers: int = Field(1, ge=1, le=8, description="Threads that run jobs, one job each.")
    jobs_kept: int = Field(500, ge=10, description="Finished jobs remembered for GET /jobs/{id}.")
    session_hours: float = Field(8.0, gt=0, description="Lifetime of a browser login.")
    cookie_secure: bool = Field(
        True, description="Mark the session cookie Secure (browsers still send it to localhost).")
    workers: int = Field(1, ge=1, le=32, description="Processes serving requests (svrisk serve --workers).")
    reuse_port: bool = Field(
        True, description="With several workers, a listening socket each (SO_REUSEPORT): the system deals "
        "connections out evenly. False: one shared socket, whose connections go to whichever worker wakes first.")
    state_file: Path | None = Field(
        None, description="SQLite file the worker processes share (sessions, login throttling); "
        "unset: a fresh file per server start, so a restart logs everyone out.")
    max_sessions: int = Field(10_000, ge=1, description="Browser sessions kept; beyond, the oldest end.")
    login_attempts: int = Field(10, ge=1, description="Failed logins allowed per client address, and per key "
                                "id, within login_window_s; then every login answers 429 with Retry-After.")
    login_window_s: float = Field(60.0, gt=0, description="The window login_attempts counts in.")
    max_json_depth: int = Field(32, ge=2, description="Deepest nesting of a JSON request body (422 beyond).")
    max_number_digits: int = Field(32, ge=8, description="Longest number in a JSON request body (422 beyond).")
    response_cache_mb: float = Field(
        128.0, ge=0, description="Memory per worker for finished responses (with ETag and gzip) of the "
        "runs' data; 0 turns the cache off.")

    @property
    def base_url(self) -> str:
        """``public_url`` without a trailing slash, else ``http://<host>:<port>``."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


class UpdateSettings(BaseModel):
    """`svrisk update`: where the publishers are and how politely to ask them."""

    london_datastore_url: str = Field(
        "https://data.london.gov.uk/api/3/action", description="The London Datastore's CKAN action API.")
    police_uk_url: str = Field("https://data.police.uk/api", description="The police.uk API.")
    proxy: str | None = Field(
        None, description="HTTP(S) proxy for every request, e.g. http://proxy.example:3128 (unset: the "
        "environment's HTTPS_PROXY / HTTP_PROXY, if any).")
    timeout_s: float = Field(30.0, gt=0, description="Connect and read timeout of one request.")
    retries: int = Field(4, ge=0, description="Further attempts after a failed request (backoff doubles).")
    backoff_s: float = Field(1.0, ge=0, description="Wait before the first retry; doubled for each next one.")
    max_wait_s: float = Field(120.0, gt=0, description="Longest Retry-After honoured; longer fails the source.")
    police_uk_rate_per_s: float = Field(15.0, gt=0, description="police.uk's published rate limit.")
    police_uk_burst: int = Field(30, ge=1, description="police.uk's published burst.")
    schedule: str = Field(
        "off", pattern="^(off|monthly)$",
        description="`svrisk serve`: run `svrisk update --run` on its data folder monthly, or never (off).")
    day_of_month: int = Field(20, ge=1, le=28, description="Day of the month the scheduled update runs.")
    hour_utc: int = Field(6, ge=0, le=23, description="Hour (UTC) the scheduled update runs.")


class Settings(BaseSettings):
    """Everything svrisk can be told, with defaults that run the demo offline."""

    model_config = SettingsConfigDict(
        env_prefix="SVRISK_", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path | None = Field(
        None, description="Folder of input data. None means the generated demo borough."
    )
    compare_dir: Path | None = Field(
        None, description="Comparison folder for `svrisk assess` (authorities' monthly offence counts, residents, "
        "deprivation, boundaries), e.g. the region's boroughs. None: no comparison section."
    )
    out_dir: Path = Path("out")
    demo_seed: int = 7
    engine: str = Field("local", pattern="^(local|dask)$")
    dask_scheduler: str | None = None
    workers: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        "auto", description="Processes that sum events and load files on the local engine, or workers of the "
        "Dask LocalCluster started when dask_scheduler is unset. \"auto\": the cores this process may use "
        "(affinity mask, cgroup quota) less those other work keeps busy when the run starts, at least 1; "
        "the choice is printed with the run. A number is the most, this process included (it works while a "
        "pool starts); each pool uses only as many processes as cores are free then.",
    )
    processes: bool = Field(
        True, description="The Dask LocalCluster's workers are processes (False: threads in this process).",
    )
    n_jobs: int | None = Field(
        None, ge=1, description="Most threads of a local XGBoost fit (it runs one per 10M cells of its "
        "training matrix). None: `workers` (the usable cores with \"auto\") less the cores other work keeps "
        "busy as the fit starts, at least 1.",
    )
    ingest: IngestSettings = IngestSettings()
    units: UnitSettings = UnitSettings()
    model: ModelSettings = ModelSettings()
    hotspots: HotspotSettings = HotspotSettings()
    map: MapSettings = MapSettings()
    service: ServiceSettings = ServiceSettings()
    update: UpdateSettings = UpdateSettings()

    @property
    def demo_dir(self) -> Path:
        return self.out_dir / "demo-data"

    @property
    def stores_dir(self) -> Path:
        """One store per data folder below this (see ``service.stores.default_store_dir``)."""
        return self.out_dir / "stores"

    @property
    def runs_dir(self) -> Path:
        return self.out_dir / "runs"

    @property
    def update_cache_dir(self) -> Path:
        """Downloads of `svrisk update` (resumed from here when cut short); never inside a data folder."""
        return self.out_dir / "update-cache"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("SVRISK_CONFIG", "svrisk.toml"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)


def get_settings(**overrides) -> Settings:
    """Read the settings now (from TOML, environment and ``overrides``)."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
