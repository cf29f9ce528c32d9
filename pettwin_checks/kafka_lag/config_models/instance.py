from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from . import defaults, validators


class InstanceConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    kafka_connect_str: str | list[str]
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    sasl_plain_username: str | None = None
    sasl_plain_password: str | None = None
    tls_verify: bool = True
    tls_validate_hostname: bool = True
    tls_ca_cert: str | None = None
    tls_cert: str | None = None
    tls_private_key: str | None = None
    tls_private_key_password: str | None = None
    kafka_timeout: float = Field(defaults.KAFKA_TIMEOUT, gt=0)

    consumer_groups: dict[str, dict[str, list[int] | None] | None] = Field(default_factory=dict)
    monitor_unlisted_consumer_groups: bool = False
    include_consumer_groups: list[str] = Field(default_factory=list)
    exclude_consumer_groups: list[str] = Field(default_factory=list)
    include_topics: list[str] = Field(default_factory=list)
    exclude_topics: list[str] = Field(default_factory=list)

    granularity: Literal["partition", "topic", "group"] = "partition"
    max_contexts: int = Field(defaults.MAX_CONTEXTS, gt=0)
    status_window: float = Field(defaults.STATUS_WINDOW, gt=0)

    tags: list[str] = Field(default_factory=list)
    min_collection_interval: float = Field(defaults.MIN_COLLECTION_INTERVAL, gt=0)
    empty_default_hostname: bool = False
    service: str | None = None

    @field_validator("kafka_connect_str")
    @classmethod
    def _bootstrap(cls, value: str | list[str]) -> str:
        servers = [s.strip() for s in (value.split(",") if isinstance(value, str) else value) if s.strip()]
        if not servers:
            raise ValueError("at least one host:port is required")
        return ",".join(servers)

    @field_validator("include_consumer_groups", "exclude_consumer_groups", "include_topics", "exclude_topics")
    @classmethod
    def _regexes(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as e:
                raise ValueError(f"invalid regular expression {pattern!r}: {e}") from None
        return patterns

    @model_validator(mode="after")
    def _across_fields(self) -> "InstanceConfig":
        return validators.check_instance(self)
