from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..probes import parse_status_ranges
from pettwin_checks.coordination import LeaderElectionConfig

from . import defaults, validators


class HttpHeader(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1)
    value: str


class HttpGet(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str = "/"
    port: int | None = Field(None, ge=1, le=65535)
    http_headers: list[HttpHeader] = Field(default_factory=list)
    expected_status: str = defaults.EXPECTED_STATUS
    body_contains: str | None = None

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with /")
        return value

    @field_validator("expected_status", mode="before")
    @classmethod
    def _expected_status(cls, value) -> str:
        value = str(value)
        parse_status_ranges(value)  # raises ValueError naming the bad range
        return value


class TcpSocket(BaseModel):
    model_config = ConfigDict(frozen=True)

    port: int | None = Field(None, ge=1, le=65535)


class Probe(BaseModel):
    """One probe of the app container, as in a Cloud Run service's startupProbe / livenessProbe."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    http_get: HttpGet | None = None
    tcp_socket: TcpSocket | None = None
    timeout_seconds: float = Field(defaults.PROBE_TIMEOUT, gt=0)
    failure_threshold: int = Field(defaults.PROBE_FAILURE_THRESHOLD, ge=1)
    startup_grace_period: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _one_action(self) -> "Probe":
        if (self.http_get is None) == (self.tcp_socket is None):
            raise ValueError("set exactly one of http_get and tcp_socket")
        return self


class InstanceConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    # Identity: each overrides what Cloud Run's environment and the metadata server say.
    project_id: str | None = None
    location: str | None = None
    service_name: str | None = None
    revision_name: str | None = None
    configuration_name: str | None = None
    tag_instance_id: bool = False

    # App container health from the sidecar (instance scope).
    probes: list[Probe] | None = None
    probe_host: str = defaults.PROBE_HOST
    app_port: int | None = Field(None, ge=1, le=65535)
    collect_container_resources: bool = True
    cgroup_root: str = defaults.CGROUP_ROOT
    cgroup_path: str | None = None
    memory_warning_threshold: float = Field(defaults.MEMORY_WARNING_THRESHOLD, gt=0, le=100)
    memory_critical_threshold: float = Field(defaults.MEMORY_CRITICAL_THRESHOLD, gt=0, le=100)
    app_process: str | None = None

    # Project scope: Cloud Run Admin API v2 and Cloud Monitoring.
    collect_revision_health: bool = True
    collect_cloud_run_metrics: bool = True
    # Agents sharing this configuration elect one project-scope collector through Kafka's group protocol.
    leader_election: LeaderElectionConfig | None = None
    services: list[str] = Field(default_factory=list)
    # The app's container name in the service (containers[].name): Cloud Run's per-container probe and
    # utilization series are read for it alone. Unset: every container's, each tagged container_name.
    app_container_name: str | None = Field(None, min_length=1)
    metrics_window: float = Field(defaults.METRICS_WINDOW, ge=60)
    metrics_delay: float = Field(defaults.METRICS_DELAY, ge=0)
    credentials_path: str | None = None
    impersonate_service_account: str | None = None
    run_endpoint: str | None = None
    monitoring_endpoint: str | None = None
    metadata_endpoint: str | None = None
    oauth_token_endpoint: str | None = None
    iam_credentials_endpoint: str | None = None

    run_budget: float = Field(defaults.RUN_BUDGET, gt=0)
    timeout: float = Field(defaults.TIMEOUT, gt=0)
    tls_verify: bool = True
    tls_ca_cert: str | None = None
    proxy: dict[str, str] | None = None
    skip_proxy: bool = False
    tags: list[str] = Field(default_factory=list)
    min_collection_interval: float = Field(defaults.MIN_COLLECTION_INTERVAL, gt=0)
    empty_default_hostname: bool = False
    service: str | None = None

    @field_validator("app_process")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as error:
                raise ValueError(f"invalid regular expression {value!r}: {error}") from None
        return value

    @model_validator(mode="after")
    def _across_fields(self) -> "InstanceConfig":
        return validators.check_instance(self)
