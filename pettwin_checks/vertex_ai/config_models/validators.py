"""Checks across fields, run after each field is valid."""

from __future__ import annotations

import os


def check_instance(model):
    if not model.collect_project_metrics and not model.probe.enabled:
        raise ValueError("collect_project_metrics is false and probe.enabled is false: the instance would collect "
                         "nothing")
    if model.credentials_path and not os.path.isfile(model.credentials_path):
        raise ValueError(f"credentials_path: no such file: {model.credentials_path}")
    if model.collection_timeout > model.min_collection_interval:
        raise ValueError(f"collection_timeout ({model.collection_timeout:g} s) must not exceed "
                         f"min_collection_interval ({model.min_collection_interval:g} s)")
    if model.probe.enabled and model.probe.timeout > model.collection_timeout:
        raise ValueError("probe.timeout must not exceed collection_timeout")
    return model
