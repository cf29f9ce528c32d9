"""The hand-written part of the config models (the generator leaves this file alone): normalization of raw values
and checks across fields. Option names, types, bounds and defaults are in assets/configuration/spec.yaml."""

from __future__ import annotations

from pettwin_checks.config_validation import nested_defaults, regexes
from pettwin_checks.coordination import DEFAULT_SESSION_TIMEOUT
from pettwin_checks.kafka.connection import bootstrap_servers, check_connection

# The leader_election block's defaults (the generator fills only top-level options'); group None: derived.
LEADER_ELECTION_DEFAULTS = {"enabled": False, "group": None, "session_timeout": DEFAULT_SESSION_TIMEOUT}


def initialize_instance(values, **kwargs):
    values = dict(values)
    values["leader_election"] = nested_defaults(values.get("leader_election"), LEADER_ELECTION_DEFAULTS)
    return values


def instance_kafka_connect_str(value, **kwargs):
    return bootstrap_servers(value)


def instance_consumer_groups(value, **kwargs):
    """A group or topic left empty in YAML (`group:`) is null: every topic, every partition."""
    if not isinstance(value, dict):
        return value
    return {
        group: {topic: partitions or [] for topic, partitions in (topics or {}).items()}
        if isinstance(topics, dict) or topics is None
        else topics
        for group, topics in value.items()
    }


instance_include_consumer_groups = instance_exclude_consumer_groups = regexes
instance_include_topics = instance_exclude_topics = regexes


def check_instance(model):
    check_connection(model)
    if not model.consumer_groups and not model.monitor_unlisted_consumer_groups:
        raise ValueError(
            "consumer_groups is empty: list groups to watch, or set monitor_unlisted_consumer_groups: true"
        )
    return model
