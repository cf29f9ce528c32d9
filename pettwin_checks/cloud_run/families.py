"""The Cloud Run check's family table: which Cloud Monitoring series it reads and what they become. Pure.

One timeSeries.list per family, aligned per minute and summed across the replicas Google keeps per revision,
grouped by the labels the check tags with (modes and the engine: pettwin_checks.gcp.families). Counts (requests,
failed probes) are read over gap-free windows, distributions (latencies, utilizations) and the instance gauge over
the last `gauge_lookback` of settled data.

Per-container families are read without a cross-series reducer and never filtered or grouped on `container_name`
in the request: Google documents the label on the probe series, but public evidence says the CPU and memory
utilizations of a multi-container revision come as one series without it. So each series is read as it comes: with `container_name`, per container (only
`app_container_name`'s when set); without it, the revision's figure, tagged `container_name:all` so it is never
mistaken for one container's. `container_shape` says which shape a family's answer had.
"""

from __future__ import annotations

from functools import partial

from pettwin_checks.gcp.distribution import Distribution, merge
from pettwin_checks.gcp.families import Family, Sample, distribution_samples, series_value
from pettwin_checks.gcp.timeseries import Aggregation, TimeSeries, TimeSeriesQuery, one_of

RESOURCE_TYPE = "cloud_run_revision"
PREFIX = "run.googleapis.com/"
SERVICE, REVISION, LOCATION = "resource.label.service_name", "resource.label.revision_name", "resource.label.location"
CONTAINER = "container_name"
WHOLE_REVISION = "all"  # the container_name tag of a series Google sends without the label
PER_CONTAINER = ("startup_latencies", "completed_probe_count", "cpu_utilizations", "memory_utilizations")


def _query(metric: str, aligner: str, services, labels=()) -> TimeSeriesQuery:
    group_by = (SERVICE, REVISION, LOCATION, *(f"metric.label.{label}" for label in labels))
    extra = (one_of("resource", "service_name", services),) if services else ()
    return TimeSeriesQuery(PREFIX + metric, Aggregation(aligner, "REDUCE_SUM", group_by, 60), RESOURCE_TYPE, extra)


def _per_container_query(metric: str, services) -> TimeSeriesQuery:
    """Aligned per minute, not reduced: each series comes back with the labels it has, and the samples group them.
    Google does not publish what grouping by a label some series lack does (third-party reports: those series are
    left out), so `container_name` is never in groupByFields."""
    extra = (one_of("resource", "service_name", services),) if services else ()
    return TimeSeriesQuery(PREFIX + metric, Aggregation("ALIGN_DELTA", "REDUCE_NONE", (), 60), RESOURCE_TYPE, extra)


def build_families(services, app_container: str | None) -> list[Family]:
    """Every family, for `services` (all the location's when empty)."""
    query = partial(_query, services=services)
    per_container = partial(_per_container_query, services=services)
    return [
        Family(
            "request_count",
            query("request_count", "ALIGN_DELTA", labels=("response_code_class",)),
            "window",
            partial(count_samples, "request.count", ("response_code_class",)),
        ),
        Family(
            "request_latencies",
            query("request_latencies", "ALIGN_DELTA"),
            "span",
            partial(percentile_samples, "request.latency", 1.0, ()),
        ),
        Family(
            "instance_count",
            query("container/instance_count", "ALIGN_MAX", labels=("state",)),
            "newest",
            partial(newest_samples, "instance.count", ("state",)),
        ),
        Family(
            "startup_latencies",
            per_container("container/startup_latencies"),
            "span",
            partial(
                container_samples,
                app_container,
                partial(percentile_samples, "container.startup_latency", 1.0, (CONTAINER,)),
            ),
        ),
        # Grouped by is_healthy rather than filtered on it, so a probe that only succeeded reports 0 failures.
        Family(
            "completed_probe_count",
            per_container("container/completed_probe_count"),
            "window",
            partial(container_samples, app_container, failed_probe_samples),
        ),
        Family(
            "cpu_utilizations",
            per_container("container/cpu/utilizations"),
            "span",
            partial(container_samples, app_container, utilization("container.cpu.utilization")),
        ),
        Family(
            "memory_utilizations",
            per_container("container/memory/utilizations"),
            "span",
            partial(container_samples, app_container, utilization("container.memory.utilization")),
        ),
    ]


def tags_of(series: TimeSeries, labels=()) -> tuple[str, ...]:
    tags = []
    for label in ("service_name", "revision_name", "location", *labels):
        value = series.label(label)
        if label == CONTAINER and not value:
            value = WHOLE_REVISION
        if value:
            tags.append(f"{label}:{value}")
    return tuple(tags)


def container_shape(series_list: list[TimeSeries]) -> str:
    """Which shape a per-container family came in: "per_container" (every series names its container),
    "whole_revision" (none does), "mixed", or "empty"."""
    labelled = {bool(series.label(CONTAINER)) for series in series_list}
    if not labelled:
        return "empty"
    if labelled == {True}:
        return "per_container"
    return "whole_revision" if labelled == {False} else "mixed"


def container_samples(app_container: str | None, samples, series_list: list[TimeSeries]) -> list[Sample]:
    """`samples` of the series that are the app container's (all containers' without `app_container`), and of
    the whole-revision series, which no container filter can apply to."""
    kept = [s for s in series_list if not app_container or s.label(CONTAINER) in (None, "", app_container)]
    return samples(kept)


def count_samples(name: str, labels, series_list: list[TimeSeries], counted=lambda series: True) -> list[Sample]:
    """One count per tag set over the window; series not `counted` add 0, so their tag set still reports."""
    totals: dict[tuple[str, ...], float] = {}
    for series in series_list:
        value = series_value(series, "window")
        if isinstance(value, (int, float)):
            tags = tags_of(series, labels)
            totals[tags] = totals.get(tags, 0) + (value if counted(series) else 0)
    return [Sample(name, "count", value, tags) for tags, value in sorted(totals.items())]


# container.probe.failures per container and probe type: the unhealthy probes (0 where all passed).
failed_probe_samples = partial(
    count_samples,
    "container.probe.failures",
    (CONTAINER, "probe_type"),
    counted=lambda s: s.label("is_healthy") == "false",
)


def newest_samples(name: str, labels, series_list: list[TimeSeries]) -> list[Sample]:
    samples = []
    for series in series_list:
        value = series_value(series, "newest")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            samples.append(Sample(name, "gauge", float(value), tags_of(series, labels)))
    return sorted(samples, key=lambda s: s.tags)


def utilization(prefix: str):
    """Utilizations are fractions: Datadog gets percent."""
    return partial(percentile_samples, prefix, 100.0, (CONTAINER,))


def percentile_samples(prefix: str, scale: float, labels, series_list: list[TimeSeries]) -> list[Sample]:
    """<prefix>.p50/.p95/.p99 of the merged distribution of each tag set's series, times `scale`."""
    by_tags: dict[tuple[str, ...], list[Distribution]] = {}
    for series in series_list:
        value = series_value(series, "span")
        if isinstance(value, Distribution):
            by_tags.setdefault(tags_of(series, labels), []).append(value)
    samples = []
    for tags, distributions in sorted(by_tags.items()):
        samples += distribution_samples(prefix, merge(distributions), tags, scale=scale, average=False)
    return samples
