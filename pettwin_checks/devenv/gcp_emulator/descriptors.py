"""Metric and monitored-resource descriptors (descriptors.yaml): which metric types exist, on which monitored
resource types, with which kind and value type. timeSeries.list checks its filter against them, a scenario may
serve only what they describe, and projects.metricDescriptors / monitoredResourceDescriptors serve them."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import yaml

from .errors import ApiError, invalid_argument, not_found
from .monitoring_filter import FilterError, parse_selector

# Domains whose descriptors users create (by writing a point or creating a descriptor), not Google.
USER_DEFINED_PREFIXES = (
    "custom.googleapis.com/",
    "external.googleapis.com/",
    "workload.googleapis.com/",
    "logging.googleapis.com/user/",
    "prometheus.googleapis.com/",
)


@dataclass(frozen=True)
class MetricDescriptor:
    type: str
    kind: str
    value_type: str
    unit: str
    resource_types: tuple[str, ...]
    labels: tuple[str, ...]

    @property
    def metric_type(self) -> str:  # read by aggregation's checks, as on a scenario series
        return self.type

    def to_json(self, project: str) -> dict:
        body = {
            "name": f"projects/{project}/metricDescriptors/{self.type}",
            "type": self.type,
            "metricKind": self.kind,
            "valueType": self.value_type,
            "unit": self.unit,
            "monitoredResourceTypes": list(self.resource_types),
        }
        if self.labels:
            body["labels"] = [{"key": key} for key in self.labels]
        return body


@functools.cache
def _table() -> tuple[dict[str, MetricDescriptor], dict[str, tuple[str, ...]]]:
    doc = yaml.safe_load((Path(__file__).parent / "descriptors.yaml").read_text())
    metrics = {
        raw["type"]: MetricDescriptor(
            raw["type"],
            raw["kind"],
            raw["value_type"],
            str(raw["unit"]),
            tuple(raw["resources"]),
            tuple(raw.get("labels") or ()),
        )
        for raw in doc["metrics"]
    }
    resources = {name: tuple(labels) for name, labels in doc["resources"].items()}
    return metrics, resources


def builtin_metrics() -> dict[str, MetricDescriptor]:
    return _table()[0]


def resource_types() -> dict[str, tuple[str, ...]]:
    return _table()[1]


def is_user_defined(metric_type: str) -> bool:
    return metric_type.startswith(USER_DEFINED_PREFIXES)


def series_problem(metric_type: str, resource_type: str, kind: str, value_type: str) -> str | None:
    """Why a scenario may not serve this series (None: it may): a built-in type must be in descriptors.yaml with
    the same kind and value type, on one of its resource types."""
    if resource_type not in resource_types():
        return f"monitored resource type {resource_type!r} is not in descriptors.yaml"
    if is_user_defined(metric_type):
        return None
    descriptor = builtin_metrics().get(metric_type)
    if descriptor is None:
        return f"metric type {metric_type!r} is not in descriptors.yaml (Google's built-in metrics the emulator knows)"
    if (kind, value_type) != (descriptor.kind, descriptor.value_type):
        return f"{metric_type} is {descriptor.kind} {descriptor.value_type} at Google, not {kind} {value_type}"
    if resource_type not in descriptor.resource_types:
        return f"{metric_type} is written for {list(descriptor.resource_types)}, not {resource_type!r}"
    return None


def for_scenario(series) -> dict[str, MetricDescriptor]:
    """Every descriptor of a project serving `series`: the built-in table plus one per user-defined type the
    scenario writes (its kind, value type and unit, on the resource types it writes it for)."""
    table = dict(builtin_metrics())
    for spec in series:
        if not is_user_defined(spec.metric_type):
            continue
        known = table.get(spec.metric_type)
        resources = tuple(dict.fromkeys((known.resource_types if known else ()) + (spec.resource_type,)))
        labels = tuple(dict.fromkeys((known.labels if known else ()) + tuple(spec.metric_labels)))
        table[spec.metric_type] = MetricDescriptor(
            spec.metric_type, spec.kind, spec.value_type, spec.unit, resources, labels
        )
    return table


def list_metric_descriptors(table: dict[str, MetricDescriptor], selector: str, project: str) -> list[dict]:
    """metricDescriptors.list: the descriptors a filter selects (any selector; `starts_with` on metric.type)."""
    types = sorted(table)
    if selector:
        try:
            predicate = parse_selector(selector)
        except FilterError as bad:
            raise invalid_argument(f'Field filter had an invalid value of "{selector}": {bad}', "filter") from None
        types = [t for t in types if predicate({"metric": {"type": t, "labels": {}}})]
    return [table[t].to_json(project) for t in types]


def metric_not_found(metric_type: str) -> ApiError:
    """Google's 404 for a filter naming a metric type the project has no descriptor for."""
    return not_found(
        f'Cannot find metric(s) that match type = "{metric_type}". If a metric was created recently, it could '
        "take up to 10 minutes to become available."
    )


def resource_descriptor_json(resource_type: str, labels: tuple[str, ...], project: str) -> dict:
    return {
        "name": f"projects/{project}/monitoredResourceDescriptors/{resource_type}",
        "type": resource_type,
        "labels": [{"key": key} for key in labels],
    }


def invalid_combination(filter_text: str) -> ApiError:
    """Google's 400 for a filter whose resource.type the metric is not written for."""
    return invalid_argument(
        f'Field filter had an invalid value of "{filter_text}": The supplied filter does not specify a valid '
        "combination of metric and monitored resource descriptors. The query will not return any time series.",
        "filter",
    )
