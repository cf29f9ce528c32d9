"""The hand-written part of the config models (the generator leaves this file alone): defaults of each probe's
fields, checks of raw values and across fields. Options, types, bounds and the top-level defaults are in
assets/configuration/spec.yaml; tests/unit/test_config_specs.py holds the probe defaults below to what the spec
documents."""

from __future__ import annotations

import os

from pettwin_checks.config_validation import leader_election, regexes

from ..probes import parse_status_ranges

PROBE_DEFAULTS = {"timeout_seconds": 1.0, "failure_threshold": 1, "startup_grace_period": 0.0}  # Cloud Run's
HTTP_GET_DEFAULTS = {"path": "/", "expected_status": "200-399", "http_headers": []}

instance_leader_election = leader_election
instance_app_process = regexes


def _probe(probe, position: int):
    if not isinstance(probe, dict):
        return probe  # the model rejects it, naming the field
    name = f"probes -> {position} ({probe.get('name', '?')})"  # as the base class names a list item's location
    if ("http_get" in probe) == ("tcp_socket" in probe):
        raise ValueError(f"{name}: set exactly one of http_get and tcp_socket")
    probe = {**PROBE_DEFAULTS, **probe}
    if isinstance(probe.get("http_get"), dict):
        http_get = {**HTTP_GET_DEFAULTS, **probe["http_get"]}
        if not str(http_get["path"]).startswith("/"):
            raise ValueError(f"{name}: http_get.path must start with /")
        http_get["expected_status"] = str(http_get["expected_status"])
        try:
            parse_status_ranges(http_get["expected_status"])
        except ValueError as e:
            raise ValueError(f"{name}: http_get.expected_status: {e}") from None
        probe["http_get"] = http_get
    elif probe.get("tcp_socket") is None:
        probe["tcp_socket"] = {}
    return probe


def instance_probes(value, **kwargs):
    if not isinstance(value, list):
        return value
    return [_probe(probe, position) for position, probe in enumerate(value, 1)]


def check_instance(model):
    if model.memory_warning_threshold >= model.memory_critical_threshold:
        raise ValueError(
            f"memory_warning_threshold ({model.memory_warning_threshold:g}) must be below "
            f"memory_critical_threshold ({model.memory_critical_threshold:g})"
        )
    names = [probe.name for probe in model.probes or []]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"probes: names must be unique, repeated: {', '.join(duplicates)}")
    probe_time = sum(probe.timeout_seconds for probe in model.probes or [])
    if probe_time >= model.collection_timeout:
        raise ValueError(
            f"probes: their timeouts add up to {probe_time:g} s, not less than collection_timeout "
            f"({model.collection_timeout:g} s), which every call of a run shares"
        )
    for name in ("tls_ca_cert", "credentials_path"):
        path = getattr(model, name)
        if path and not os.path.isfile(path):
            raise ValueError(f"{name}: no such file: {path}")
    return model
