"""Checks across fields, run after each field is valid (the connection options are checked by KafkaConnection)."""

from __future__ import annotations


def check_instance(model):
    if not model.consumer_groups and not model.monitor_unlisted_consumer_groups:
        raise ValueError(
            "consumer_groups is empty: list groups to watch, or set monitor_unlisted_consumer_groups: true"
        )
    return model
