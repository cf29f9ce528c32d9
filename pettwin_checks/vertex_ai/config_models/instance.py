from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pettwin_checks.coordination import LeaderElectionConfig

from . import defaults, validators

_LOCATION = re.compile(r"^[a-z]+(-[a-z0-9]+)*$")
_QUOTA_METRIC = re.compile(r"^[a-z0-9_]+$")


class ProbeConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = False
    model: str = defaults.PROBE_MODEL
    publisher: str = "google"
    location: str = defaults.PROBE_LOCATION
    method: Literal["countTokens", "generateContent"] = defaults.PROBE_METHOD
    prompt: str = Field(defaults.PROBE_PROMPT, min_length=1, max_length=2000)
    min_interval: float = Field(defaults.PROBE_INTERVAL, ge=0)
    timeout: float = Field(defaults.PROBE_TIMEOUT, gt=0)

    @field_validator("location")
    @classmethod
    def _location(cls, value: str) -> str:
        if not _LOCATION.match(value):
            raise ValueError(f"not a Google Cloud location: {value!r}")
        return value


class CollectConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    publisher_models: bool = True
    endpoints: bool = True
    quota: bool = True


class InstanceConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    project_id: str | None = None
    credentials_path: str | None = None
    impersonate_service_account: str | None = None

    monitoring_endpoint: str | None = None
    aiplatform_endpoint: str | None = None
    metadata_endpoint: str | None = None
    oauth_token_endpoint: str | None = None
    iam_credentials_endpoint: str | None = None

    collect_project_metrics: bool = True
    # Agents sharing this configuration elect one project-scope collector through Kafka's group protocol.
    leader_election: LeaderElectionConfig | None = None
    collect: CollectConfig = CollectConfig()
    locations: list[str] = Field(default_factory=list)
    models: list[str] = Field(default_factory=list)
    endpoint_ids: list[str] = Field(default_factory=list)
    quota_metrics: list[str] = Field(default_factory=lambda: list(defaults.QUOTA_METRICS))
    discover_quota_metrics: bool = True

    ingestion_delay: int = Field(defaults.INGESTION_DELAY, ge=0, le=3600)
    initial_lookback: int = Field(defaults.INITIAL_LOOKBACK, ge=60, le=86400)
    max_lookback: int = Field(defaults.MAX_LOOKBACK, ge=60, le=86400)
    gauge_lookback: int = Field(defaults.GAUGE_LOOKBACK, ge=60, le=86400)
    page_size: int = Field(defaults.PAGE_SIZE, ge=1, le=100_000)
    max_contexts: int = Field(defaults.MAX_CONTEXTS, gt=0)

    collection_timeout: float = Field(defaults.COLLECTION_TIMEOUT, gt=0)
    call_timeout: float = Field(defaults.CALL_TIMEOUT, gt=0)
    max_attempts: int = Field(defaults.MAX_ATTEMPTS, ge=1, le=10)
    backoff_base: float = Field(defaults.BACKOFF_BASE, ge=0)
    backoff_max: float = Field(defaults.BACKOFF_MAX, ge=0)

    probe: ProbeConfig = ProbeConfig()

    tags: list[str] = Field(default_factory=list)
    min_collection_interval: float = Field(defaults.MIN_COLLECTION_INTERVAL, gt=0)
    empty_default_hostname: bool = False
    service: str | None = None
    timeout: float | None = Field(None, gt=0)
    tls_verify: bool = True
    tls_ca_cert: str | None = None
    proxy: dict | None = None
    skip_proxy: bool = False

    @field_validator("locations")
    @classmethod
    def _locations(cls, values: list[str]) -> list[str]:
        for value in values:
            if not _LOCATION.match(value):
                raise ValueError(f"not a Google Cloud location: {value!r}")
        return values

    @field_validator("quota_metrics")
    @classmethod
    def _quota_metrics(cls, values: list[str]) -> list[str]:
        cleaned = []
        for value in values:
            name = value.removeprefix("aiplatform.googleapis.com/").removeprefix("quota/")
            if not _QUOTA_METRIC.match(name):
                raise ValueError(f"not an aiplatform quota metric name: {value!r} (e.g. "
                                 f"generate_content_requests_per_minute_per_project_per_base_model)")
            cleaned.append(name)
        return cleaned

    @model_validator(mode="after")
    def _across_fields(self) -> "InstanceConfig":
        return validators.check_instance(self)
