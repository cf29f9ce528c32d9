"""The hand-written part of the config models (the generator leaves this file alone): defaults of the nested
options, normalization of raw values and checks across fields. Options, types, bounds and the top-level defaults
are in assets/configuration/spec.yaml; tests/unit/test_config_specs.py holds the nested defaults below to what
the spec documents."""

from __future__ import annotations

import os
import re

from pettwin_checks.config_validation import leader_election, nested_defaults

LOCATION = re.compile(r"^[a-z]+(-[a-z0-9]+)*$")
QUOTA_METRIC = re.compile(r"^[a-z0-9_]+$")
NESTED_DEFAULTS = {
    "collect": {"publisher_models": True, "endpoints": True, "quota": True},
    "probe": {
        "enabled": False,
        "model": "gemini-2.5-flash",
        "publisher": "google",
        "location": "us-central1",
        "method": "countTokens",
        "prompt": "ping",
        "min_interval": 60,
        "timeout": 10,
    },
}

# USD per 1M (input, output) tokens: Google's published on-demand Vertex AI prices, standard context tier (Gemini
# 2.5 Pro above 200K input tokens costs more); source and date in docs/vertex_ai.md. token_prices overrides them.
DEFAULT_TOKEN_PRICES = {
    "gemini-2.5-pro": (1.25, 10.0),
    "gemini-2.5-flash": (0.30, 2.50),
    "gemini-2.5-flash-lite": (0.10, 0.40),
    "gemini-2.0-flash": (0.15, 0.60),
    "gemini-2.0-flash-lite": (0.075, 0.30),
}

# Without collection_timeout, a run may use this share of the interval, at most COLLECTION_TIMEOUT_MAX seconds.
COLLECTION_TIMEOUT_SHARE = 0.8
COLLECTION_TIMEOUT_MAX = 40.0

instance_leader_election = leader_election


def collection_timeout(model) -> float:
    """The run's budget: collection_timeout, else 80% of the interval the agent runs the check at, at most 40 s."""
    if model.collection_timeout is not None:
        return model.collection_timeout
    return min(COLLECTION_TIMEOUT_MAX, COLLECTION_TIMEOUT_SHARE * model.min_collection_interval)


def instance_token_prices(value, **kwargs):
    """Each model's entry holds `input` and `output`, numbers of USD per 1M tokens, at least 0 (the generated model
    checks only that the option is a mapping)."""
    if not isinstance(value, dict):
        return value
    for name, price in value.items():
        if not isinstance(price, dict) or set(price) != {"input", "output"}:
            raise ValueError(f"{name}: set input and output (USD per 1M tokens), e.g. {{input: 0.3, output: 2.5}}")
        for side, number in price.items():
            if isinstance(number, bool) or not isinstance(number, (int, float)) or number < 0:
                raise ValueError(f"{name}.{side}: not a price in USD per 1M tokens: {number!r}")
    return value


def token_prices(model) -> dict[str, tuple[float, float]]:
    """The price table: the defaults, with the configured entries overriding or adding models."""
    configured = {name: (price["input"], price["output"]) for name, price in (model.token_prices or {}).items()}
    return {**DEFAULT_TOKEN_PRICES, **configured}


def initialize_instance(values, **kwargs):
    values = dict(values)
    for option, defaults in NESTED_DEFAULTS.items():
        values[option] = nested_defaults(values.get(option), defaults)
    return values


def _location(value: str) -> str:
    if not isinstance(value, str) or not LOCATION.match(value):
        raise ValueError(f"not a Google Cloud location: {value!r}")
    return value


def instance_locations(value, **kwargs):
    for location in value or []:
        _location(location)
    return value


def instance_probe(value, **kwargs):
    if isinstance(value, dict) and "location" in value:
        try:
            _location(value["location"])
        except ValueError as e:
            raise ValueError(f"location: {e}") from None
    return value


def instance_quota_metrics(value, **kwargs):
    cleaned = []
    for metric in value or []:
        name = str(metric).removeprefix("aiplatform.googleapis.com/").removeprefix("quota/")
        if not QUOTA_METRIC.match(name):
            raise ValueError(
                f"not an aiplatform quota metric name: {metric!r} "
                "(e.g. generate_content_requests_per_minute_per_project_per_base_model)"
            )
        cleaned.append(name)
    return cleaned


def check_instance(model):
    if not model.collect_project_metrics and not model.probe.enabled:
        raise ValueError(
            "collect_project_metrics is false and probe.enabled is false: the instance would collect nothing"
        )
    if model.credentials_path and not os.path.isfile(model.credentials_path):
        raise ValueError(f"credentials_path: no such file: {model.credentials_path}")
    if model.collection_timeout is not None and model.collection_timeout > model.min_collection_interval:
        raise ValueError(
            f"collection_timeout ({model.collection_timeout:g} s) must not exceed "
            f"min_collection_interval ({model.min_collection_interval:g} s)"
        )
    if model.probe.enabled and model.probe.timeout > collection_timeout(model):
        raise ValueError(
            f"probe.timeout ({model.probe.timeout:g} s) must not exceed collection_timeout (the run's "
            f"budget, {collection_timeout(model):g} s)"
        )
    return model
