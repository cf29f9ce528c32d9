# This file is generated from pettwin_checks/vertex_ai/assets/configuration/spec.yaml by scripts/sync-config
# (datadog_checks_dev's model generator, as `ddev validate models --sync`). Do not edit: change the spec.

from __future__ import annotations

from types import MappingProxyType
from typing import Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from typing_extensions import Literal

from datadog_checks.base.utils.functions import identity
from datadog_checks.base.utils.models import validation

from . import defaults, validators


class Collect(BaseModel):
    model_config = ConfigDict(
        arbitrary_types_allowed=True,
        frozen=True,
    )
    endpoints: Optional[bool] = None
    publisher_models: Optional[bool] = None
    quota: Optional[bool] = None


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


class Probe(BaseModel):
    model_config = ConfigDict(
        arbitrary_types_allowed=True,
        frozen=True,
    )
    enabled: Optional[bool] = None
    location: Optional[str] = None
    method: Optional[Literal['countTokens', 'generateContent']] = None
    min_interval: Optional[float] = Field(None, ge=0.0)
    model: Optional[str] = None
    prompt: Optional[str] = Field(None, max_length=2000, min_length=1)
    publisher: Optional[str] = None
    timeout: Optional[float] = Field(None, gt=0.0)


class InstanceConfig(BaseModel):
    model_config = ConfigDict(
        validate_default=True,
        arbitrary_types_allowed=True,
        frozen=True,
    )
    aiplatform_endpoint: Optional[str] = None
    backoff_base: Optional[float] = Field(None, ge=0.0)
    backoff_max: Optional[float] = Field(None, ge=0.0)
    call_timeout: Optional[float] = Field(None, gt=0.0)
    collect: Optional[Collect] = None
    collect_project_metrics: Optional[bool] = None
    collection_timeout: Optional[float] = Field(None, gt=0.0)
    credentials_path: Optional[str] = None
    disable_generic_tags: Optional[bool] = None
    discover_quota_metrics: Optional[bool] = None
    empty_default_hostname: Optional[bool] = None
    enable_legacy_tags_normalization: Optional[bool] = None
    endpoint_ids: Optional[tuple[str, ...]] = None
    gauge_lookback: Optional[int] = Field(None, ge=60, le=86400)
    iam_credentials_endpoint: Optional[str] = None
    impersonate_service_account: Optional[str] = None
    ingestion_delay: Optional[int] = Field(None, ge=0, le=3600)
    initial_lookback: Optional[int] = Field(None, ge=60, le=86400)
    leader_election: Optional[LeaderElection] = None
    locations: Optional[tuple[str, ...]] = None
    max_attempts: Optional[int] = Field(None, ge=1, le=10)
    max_contexts: Optional[int] = Field(None, gt=0)
    max_lookback: Optional[int] = Field(None, ge=60, le=86400)
    metadata_endpoint: Optional[str] = None
    metric_patterns: Optional[MetricPatterns] = None
    min_collection_interval: Optional[float] = None
    models: Optional[tuple[str, ...]] = None
    monitoring_endpoint: Optional[str] = None
    oauth_token_endpoint: Optional[str] = None
    page_size: Optional[int] = Field(None, ge=1, le=100000)
    probe: Optional[Probe] = None
    project_id: Optional[str] = None
    proxy: Optional[MappingProxyType[str, str]] = None
    quota_metrics: Optional[tuple[str, ...]] = None
    service: Optional[str] = None
    skip_proxy: Optional[bool] = None
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
