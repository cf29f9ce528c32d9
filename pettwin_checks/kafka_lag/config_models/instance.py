# This file is generated from pettwin_checks/kafka_lag/assets/configuration/spec.yaml by scripts/sync-config
# (datadog_checks_dev's model generator, as `ddev validate models --sync`). Do not edit: change the spec.

from __future__ import annotations

from types import MappingProxyType
from typing import Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from typing_extensions import Literal

from datadog_checks.base.utils.functions import identity
from datadog_checks.base.utils.models import validation

from . import defaults, validators


class MetricPatterns(BaseModel):
    model_config = ConfigDict(
        arbitrary_types_allowed=True,
        frozen=True,
    )
    exclude: Optional[tuple[str, ...]] = None
    include: Optional[tuple[str, ...]] = None


class InstanceConfig(BaseModel):
    model_config = ConfigDict(
        validate_default=True,
        arbitrary_types_allowed=True,
        frozen=True,
    )
    consumer_groups: Optional[MappingProxyType[str, MappingProxyType[str, tuple[int, ...]]]] = None
    disable_generic_tags: Optional[bool] = None
    empty_default_hostname: Optional[bool] = None
    enable_legacy_tags_normalization: Optional[bool] = None
    exclude_consumer_groups: Optional[tuple[str, ...]] = None
    exclude_topics: Optional[tuple[str, ...]] = None
    granularity: Optional[Literal['partition', 'topic', 'group']] = None
    include_consumer_groups: Optional[tuple[str, ...]] = None
    include_topics: Optional[tuple[str, ...]] = None
    kafka_connect_str: Union[str, tuple[str, ...]]
    kafka_timeout: Optional[float] = Field(None, gt=0.0)
    leader_election: Optional[bool] = None
    leader_election_group: Optional[str] = Field(None, min_length=1)
    leader_election_session_timeout: Optional[float] = Field(None, ge=1.0, le=300.0)
    max_contexts: Optional[int] = Field(None, gt=0)
    metric_patterns: Optional[MetricPatterns] = None
    min_collection_interval: Optional[float] = None
    monitor_unlisted_consumer_groups: Optional[bool] = None
    sasl_mechanism: Optional[Literal['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512']] = None
    sasl_plain_password: Optional[str] = None
    sasl_plain_username: Optional[str] = None
    security_protocol: Optional[
        Literal['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL']
    ] = None
    service: Optional[str] = None
    status_window: Optional[float] = Field(None, gt=0.0)
    tags: Optional[tuple[str, ...]] = None
    tls_ca_cert: Optional[str] = None
    tls_cert: Optional[str] = None
    tls_private_key: Optional[str] = None
    tls_private_key_password: Optional[str] = None
    tls_validate_hostname: Optional[bool] = None
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
