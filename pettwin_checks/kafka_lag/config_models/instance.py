from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from pettwin_checks.coordination import DEFAULT_SESSION_TIMEOUT
from pettwin_checks.kafka_lag.connection import KafkaConnection

from . import defaults, validators


class InstanceConfig(KafkaConnection):
    """The connection options come from KafkaConnection (integrations-core's names); the rest is this check's."""

    kafka_timeout: float = Field(defaults.KAFKA_TIMEOUT, ge=1)

    consumer_groups: dict[str, dict[str, list[int] | None] | None] = Field(default_factory=dict)
    monitor_unlisted_consumer_groups: bool = False
    include_consumer_groups: list[str] = Field(default_factory=list)
    exclude_consumer_groups: list[str] = Field(default_factory=list)
    include_topics: list[str] = Field(default_factory=list)
    exclude_topics: list[str] = Field(default_factory=list)

    granularity: Literal["partition", "topic", "group"] = "partition"
    max_contexts: int = Field(defaults.MAX_CONTEXTS, gt=0)
    status_window: float = Field(defaults.STATUS_WINDOW, gt=0)

    leader_election: bool = False
    leader_election_group: str | None = Field(None, min_length=1)
    leader_election_session_timeout: float = Field(DEFAULT_SESSION_TIMEOUT, ge=1, le=300)

    tags: list[str] = Field(default_factory=list)
    min_collection_interval: float = Field(defaults.MIN_COLLECTION_INTERVAL, gt=0)
    empty_default_hostname: bool = False
    service: str | None = None

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
    def _across_fields(self) -> InstanceConfig:
        return validators.check_instance(self)
