"""Checks across fields, run after each field is valid."""

from __future__ import annotations

import os


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
    if probe_time >= model.run_budget:
        raise ValueError(f"probes: their timeouts add up to {probe_time:g} s, not less than run_budget "
                         f"({model.run_budget:g} s), which every call of a run shares")
    for name in ("tls_ca_cert", "credentials_path"):
        path = getattr(model, name)
        if path and not os.path.isfile(path):
            raise ValueError(f"{name}: no such file: {path}")
    return model
