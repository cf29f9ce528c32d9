# This file is generated from pettwin_checks/cloud_run/assets/configuration/spec.yaml by scripts/sync-config
# (datadog_checks_dev's model generator, as `ddev validate models --sync`). Do not edit: change the spec.

from __future__ import annotations

from types import MappingProxyType
from typing import Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from typing_extensions import Literal

from datadog_checks.base.utils.functions import identity
from datadog_checks.base.utils.models import validation

from . import defaults, validators


class LeaderElection(BaseModel):
    model_config = ConfigDict(
        arbitrary_types_allowed=True,
        frozen=True,
    )
    group: Optional[str] = Field(None, min_length=1)
    kafka_connect_str: Optional[Union[str, tuple[str, ...]]] = None
    sasl_mechanism: Optional[Literal['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512']] = None
    sasl_plain_password: Optional[str] = None
    sasl_plain_username: Optional[str] = None
    security_protocol: Optional[
        Literal['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL']
    ] = None
    session_timeout: Optional[float] = Field(None, ge=1.0, le=300.0)
    tls_ca_cert: Optional[str] = None
    tls_cert: Optional[str] = None
    tls_private_key: Optional[str] = None
    tls_private_key_password: Optional[str] = None
    tls_validate_hostname: Optional[bool] = None
    tls_verify: Optional[bool] = None


class MetricPatterns(BaseModel):
    model_config = ConfigDict(
        arbitrary_types_allowed=True,
        frozen=True,
    )
    exclude: Optional[tuple[str, ...]] = None
    include: Optional[tuple[str, ...]] = None


class HttpHeader(BaseModel):
    model_config = ConfigDict(
        arbitrary_types_allowed=True,
        frozen=True,
    )
    name: str = Field(..., min_length=1)
    value: str


class HttpGet(BaseModel):
    model_config = ConfigDict(
        arbitrary_types_allowed=True,
        frozen=True,
    )
    body_contains: Optional[str] = None
    expected_status: Optional[str] = None
    http_headers: Optional[tuple[HttpHeader, ...]] = None
    path: Optional[str] = None
    port: Optional[int] = Field(None, ge=1, le=65535)


class TcpSocket(BaseModel):
    model_config = ConfigDict(
        arbitrary_types_allowed=True,
        frozen=True,
    )
    port: Optional[int] = Field(None, ge=1, le=65535)


class Probe(BaseModel):
    model_config = ConfigDict(
        arbitrary_types_allowed=True,
        frozen=True,
    )
    failure_threshold: Optional[int] = Field(None, ge=1)
    http_get: Optional[HttpGet] = None
    name: str = Field(..., min_length=1, pattern='^[A-Za-z0-9_.\\-]+$')
    startup_grace_period: Optional[float] = Field(None, ge=0.0)
    tcp_socket: Optional[TcpSocket] = None
    timeout_seconds: Optional[float] = Field(None, gt=0.0)


class InstanceConfig(BaseModel):
    model_config = ConfigDict(
        validate_default=True,
        arbitrary_types_allowed=True,
        frozen=True,
    )
    app_port: Optional[int] = Field(None, ge=1, le=65535)
    app_process: Optional[str] = None
    cgroup_path: Optional[str] = None
    cgroup_root: Optional[str] = None
    collect_cloud_run_metrics: Optional[bool] = None
    collect_container_resources: Optional[bool] = None
    collect_revision_health: Optional[bool] = None
    configuration_name: Optional[str] = None
    credentials_path: Optional[str] = None
    disable_generic_tags: Optional[bool] = None
    empty_default_hostname: Optional[bool] = None
    enable_legacy_tags_normalization: Optional[bool] = None
    iam_credentials_endpoint: Optional[str] = None
    impersonate_service_account: Optional[str] = None
    leader_election: Optional[LeaderElection] = None
    location: Optional[str] = None
    memory_critical_threshold: Optional[float] = Field(None, gt=0.0, le=100.0)
    memory_warning_threshold: Optional[float] = Field(None, gt=0.0, le=100.0)
    metadata_endpoint: Optional[str] = None
    metric_patterns: Optional[MetricPatterns] = None
    metrics_delay: Optional[float] = Field(None, ge=0.0)
    metrics_window: Optional[float] = Field(None, ge=60.0)
    min_collection_interval: Optional[float] = None
    monitoring_endpoint: Optional[str] = None
    oauth_token_endpoint: Optional[str] = None
    probe_host: Optional[str] = None
    probes: Optional[tuple[Probe, ...]] = None
    project_id: Optional[str] = None
    proxy: Optional[MappingProxyType[str, str]] = None
    revision_name: Optional[str] = None
    run_budget: Optional[float] = Field(None, gt=0.0)
    run_endpoint: Optional[str] = None
    service: Optional[str] = None
    service_name: Optional[str] = None
    services: Optional[tuple[str, ...]] = None
    skip_proxy: Optional[bool] = None
    tag_instance_id: Optional[bool] = None
    tags: Optional[tuple[str, ...]] = None
    timeout: Optional[float] = Field(None, gt=0.0)
    tls_ca_cert: Optional[str] = None
    tls_verify: Optional[bool] = None

    @model_validator(mode='before')
    def _initial_validation(cls, values):
        return validation.core.initialize_config(getattr(validators, 'initialize_instance', identity)(values))

    @field_validator('*', mode='before')
    def _validate(cls, value, info):
        field = cls.model_fields[info.field_name]
        field_name = field.alias or info.field_name
        if field_name in info.context['configured_fields']:
            value = getattr(validators, f'instance_{info.field_name}', identity)(value, field=field)
        else:
            value = getattr(defaults, f'instance_{info.field_name}', lambda: value)()

        return validation.utils.make_immutable(value)

    @model_validator(mode='after')
    def _final_validation(cls, model):
        return validation.core.check_model(getattr(validators, 'check_instance', identity)(model))
