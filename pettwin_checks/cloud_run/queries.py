"""Which Cloud Run series the check asks Cloud Monitoring for, and how each becomes Datadog metrics. No I/O.

One timeSeries.list per metric family. Each query aligns per minute and sums across the replicas Google keeps
per revision, grouped by the labels the check tags with, so the answer has one series per tag set.

Per-container families (utilizations, startup latencies, completed probes) are grouped by `container_name`, so a
sidecar's figures (the agent's own startup probe, its CPU) are never summed into the app's; with
`app_container_name` the probes and utilizations are read for that container only.

Counts (requests, failed probes) are read over consecutive windows that meet exactly (gcp.windows), so every
minute is counted once. Distributions (latencies, utilizations) and the instance gauge are read over the last
`metrics_window` seconds of settled data, so each run reports percentiles over a stable span.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from ..gcp.distribution import merge, percentile
from ..gcp.timeseries import Aggregation, TimeSeries, TimeSeriesQuery, one_of

RESOURCE_TYPE = "cloud_run_revision"
PERCENTILES = (50, 95, 99)
SERVICE, REVISION, LOCATION = "resource.label.service_name", "resource.label.revision_name", "resource.label.location"


@dataclass(frozen=True)
class Family:
    key: str  # names the family in cache keys and warnings
    metric_type: str
    shape: str  # "count", "distribution" or "gauge"
    metric: str  # Datadog name (distribution: prefix of .p50/.p95/.p99)
    aligner: str
    extra_labels: tuple[str, ...] = ()  # metric labels grouped by and tagged with, besides service and revision
    scale: float = 1.0  # utilizations are fractions; Datadog gets percent
    counted_when: tuple[str, str] | None = None  # count only series whose label has this value (grouped, not tagged)
    # Filtered to `app_container_name` when set (the label is documented for these).
    app_container_only: bool = False

    def query(self, services: list[str], app_container: str | None = None) -> TimeSeriesQuery:
        grouped = (*self.extra_labels, *((self.counted_when[0],) if self.counted_when else ()))
        group_by = (SERVICE, REVISION, LOCATION, *(f"metric.label.{label}" for label in grouped))
        extra = (one_of("resource", "service_name", services),) if services else ()
        if app_container and self.app_container_only:
            extra = (*extra, one_of("metric", "container_name", [app_container]))
        return TimeSeriesQuery(
            self.metric_type, Aggregation(self.aligner, "REDUCE_SUM", group_by, 60), RESOURCE_TYPE, extra
        )


FAMILIES = (
    Family(
        "request_count",
        "run.googleapis.com/request_count",
        "count",
        "request.count",
        "ALIGN_DELTA",
        ("response_code_class",),
    ),
    Family(
        "request_latencies", "run.googleapis.com/request_latencies", "distribution", "request.latency", "ALIGN_DELTA"
    ),
    Family(
        "instance_count",
        "run.googleapis.com/container/instance_count",
        "gauge",
        "instance.count",
        "ALIGN_MAX",
        ("state",),
    ),
    Family(
        "startup_latencies",
        "run.googleapis.com/container/startup_latencies",
        "distribution",
        "container.startup_latency",
        "ALIGN_DELTA",
        ("container_name",),
    ),
    # Grouped by is_healthy rather than filtered on it, so a probe that only succeeded reports 0 failures.
    Family(
        "completed_probe_count",
        "run.googleapis.com/container/completed_probe_count",
        "count",
        "container.probe.failures",
        "ALIGN_DELTA",
        ("container_name", "probe_type"),
        counted_when=("is_healthy", "false"),
        app_container_only=True,
    ),
    Family(
        "cpu_utilizations",
        "run.googleapis.com/container/cpu/utilizations",
        "distribution",
        "container.cpu.utilization",
        "ALIGN_DELTA",
        ("container_name",),
        scale=100.0,
        app_container_only=True,
    ),
    Family(
        "memory_utilizations",
        "run.googleapis.com/container/memory/utilizations",
        "distribution",
        "container.memory.utilization",
        "ALIGN_DELTA",
        ("container_name",),
        scale=100.0,
        app_container_only=True,
    ),
)


@dataclass(frozen=True)
class Submission:
    kind: str  # "gauge" or "count"
    name: str
    value: float
    tags: tuple[str, ...]


def _tags(series: TimeSeries, labels: tuple[str, ...]) -> tuple[str, ...]:
    tags = []
    for label in ("service_name", "revision_name", "location", *labels):
        value = series.label(label)
        if value:
            tags.append(f"{label}:{value}")
    return tuple(tags)


def _in_window(series: TimeSeries, start: float, end: float):
    return [p for p in series.points if start < p.end <= end]


def submissions(family: Family, series_list: list[TimeSeries], start: float, end: float) -> list[Submission]:
    """The metrics one family's answer yields for points ending in (start, end]."""
    if family.shape == "count":
        return _counts(family, series_list, start, end)
    if family.shape == "gauge":
        return _newest(family, series_list, start, end)
    return _percentiles(family, series_list, start, end)


def _counts(family: Family, series_list: list[TimeSeries], start: float, end: float) -> list[Submission]:
    totals: dict[tuple[str, ...], float] = defaultdict(float)
    for series in series_list:
        tags = _tags(series, family.extra_labels)
        counted = family.counted_when is None or series.label(family.counted_when[0]) == family.counted_when[1]
        totals[tags] += sum(p.value for p in _in_window(series, start, end)) if counted else 0
    return [Submission("count", family.metric, value, tags) for tags, value in sorted(totals.items())]


def _newest(family: Family, series_list: list[TimeSeries], start: float, end: float) -> list[Submission]:
    out = []
    for series in series_list:
        points = _in_window(series, start, end)
        if points:
            newest = max(points, key=lambda p: p.end)
            out.append(
                Submission(
                    "gauge", family.metric, float(newest.value) * family.scale, _tags(series, family.extra_labels)
                )
            )
    return sorted(out, key=lambda s: s.tags)


def _percentiles(family: Family, series_list: list[TimeSeries], start: float, end: float) -> list[Submission]:
    out = []
    for series in series_list:
        distribution = merge([p.value for p in _in_window(series, start, end)])
        tags = _tags(series, family.extra_labels)
        for q in PERCENTILES:
            value = percentile(distribution, q)
            if value is not None:
                out.append(Submission("gauge", f"{family.metric}.p{q}", value * family.scale, tags))
    return sorted(out, key=lambda s: (s.tags, s.name))
