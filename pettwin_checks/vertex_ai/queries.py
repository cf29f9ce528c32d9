"""Which Cloud Monitoring series the Vertex AI check reads, how they are aggregated, and what they become.

Pure: no I/O. One table: each Family knows its query, its mode (which points of a series count) and the
function that turns its series into samples; each Combination knows which families it joins and how (quota
headroom needs usage and limit). The check runs the table without knowing any family by name.

One timeSeries.list per family (metric type), aggregated on Google's side (per-series aligner plus REDUCE_SUM
grouped by exactly the labels the check tags with), so the number of calls depends on the families enabled,
never on how many models, endpoints or replicas there are.

Modes:
- "window": DELTA data over the gap-free window since the previous run, aligned per minute (windows lie on the
  minute grid, so wherever Google anchors its periods each holds one whole minute) and summed: counts and
  distributions (percentiles of the window's merged buckets).
- "newest": per-minute alignment over the last `gauge_lookback`, newest point per series (replicas, limits).
- "peak": per-minute alignment over the last `gauge_lookback`, largest point per series (quota usage, so the
  headroom reflects the busiest settled minute).
- "sparse": GAUGE series Google writes about once a day (serviceruntime quota limits, unchanged allocation
  usage): hourly alignment over SPARSE_LOOKBACK, which surely holds a point, newest point per series. The check
  asks at most every `quota_refresh_interval` seconds and keeps the answer in the persistent cache in between.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from pettwin_checks.gcp.timeseries import Aggregation, TimeSeries, TimeSeriesQuery, one_of, quote

from .samples import (
    METRIC_PREFIX,
    Sample,
    dynamic_shared_quota_samples,
    endpoint_response_samples,
    invocation_samples,
    percentile_samples,
    quota_samples,
    service_quota_samples,
    token_samples,
    value_samples,
    without_quota_metrics,
)

PUBLISHER_MODEL = "aiplatform.googleapis.com/PublisherModel"
ENDPOINT = "aiplatform.googleapis.com/Endpoint"
LOCATION = "aiplatform.googleapis.com/Location"
CONSUMER_QUOTA = "consumer_quota"
AIPLATFORM_SERVICE = "aiplatform.googleapis.com"
# "Sampled every 86400 seconds": a window of 25 h always holds the newest daily point, whatever its phase.
SPARSE_LOOKBACK = 25 * 3600
SPARSE_ALIGNMENT = 3600

MODEL_LABELS = ("resource.label.model_user_id", "resource.label.publisher", "resource.label.location")
ENDPOINT_LABELS = ("resource.label.endpoint_id", "resource.label.location", "metric.label.deployed_model_id")

SeriesSamples = Callable[[list[TimeSeries]], list[Sample]]


@dataclass(frozen=True)
class Family:
    name: str  # names the family in cache keys, warnings and contexts.dropped
    query: TimeSeriesQuery
    mode: str  # "window" | "newest" | "peak" | "sparse"
    scope: str  # the `collect` switch it belongs to: publisher_models | endpoints | quota
    samples: SeriesSamples | None = None  # None: only read by a Combination


@dataclass(frozen=True)
class Combination:
    """Samples that need several families' series. `build` gets each input's series, None where its query
    failed this run; it runs when any input (or, with `needs_all`, every input) has an answer."""

    name: str
    inputs: tuple[str, ...]
    build: Callable[[dict[str, list[TimeSeries] | None]], list[Sample]]
    needs_all: bool = False

    def ready(self, results: dict[str, list[TimeSeries]]) -> bool:
        present = [name in results for name in self.inputs]
        return all(present) if self.needs_all else any(present)


@dataclass(frozen=True)
class Plan:
    families: list[Family]
    combinations: list[Combination]


def _delta(*group_by: str) -> Aggregation:
    return Aggregation("ALIGN_DELTA", "REDUCE_SUM", tuple(group_by), 60)


def build_plan(
    *,
    publisher_models: bool,
    endpoints: bool,
    quota: bool,
    locations=(),
    models=(),
    endpoint_ids=(),
    quota_metrics=(),
    discover_quota_metrics: bool = True,
) -> Plan:
    location_filter = (one_of("resource", "location", locations),) if locations else ()
    families: list[Family] = []
    combinations: list[Combination] = []
    if publisher_models:
        model_filter = location_filter + ((one_of("resource", "model_user_id", models),) if models else ())

        def publisher(name, metric, samples, *extra_labels):
            query = TimeSeriesQuery(
                METRIC_PREFIX + "publisher/online_serving/" + metric,
                _delta(*MODEL_LABELS, *extra_labels),
                PUBLISHER_MODEL,
                model_filter,
            )
            families.append(Family(name, query, "window", "publisher_models", samples))

        publisher(
            "publisher_invocations",
            "model_invocation_count",
            invocation_samples,
            "metric.label.response_code",
            "metric.label.error_category",
        )
        publisher(
            "publisher_latency",
            "model_invocation_latencies",
            partial(percentile_samples, "publisher.latency"),
            "metric.label.latency_type",
        )
        publisher(
            "publisher_first_token",
            "first_token_latencies",
            partial(percentile_samples, "publisher.first_token_latency"),
        )
        publisher("publisher_tokens", "token_count", token_samples, "metric.label.type")
    if endpoints:
        endpoint_filter = location_filter + ((one_of("resource", "endpoint_id", endpoint_ids),) if endpoint_ids else ())

        def endpoint(name, metric, mode, aggregation, samples):
            query = TimeSeriesQuery(
                METRIC_PREFIX + "prediction/online/" + metric, aggregation, ENDPOINT, endpoint_filter
            )
            families.append(Family(name, query, mode, "endpoints", samples))

        endpoint(
            "endpoint_latency",
            "prediction_latencies",
            "window",
            _delta(*ENDPOINT_LABELS, "metric.label.latency_type"),
            partial(percentile_samples, "endpoint.latency"),
        )
        endpoint(
            "endpoint_responses",
            "response_count",
            "window",
            _delta(*ENDPOINT_LABELS, "metric.label.response_code"),
            endpoint_response_samples,
        )
        per_minute_sum = Aggregation("ALIGN_MAX", "REDUCE_SUM", ENDPOINT_LABELS, 60)
        for name, metric in (("endpoint_replicas", "replicas"), ("endpoint_target_replicas", "target_replicas")):
            endpoint(
                name,
                metric,
                "newest",
                per_minute_sum,
                partial(value_samples, f"endpoint.{metric}", "gauge", "newest", ()),
            )
    if quota:
        _quota_families(families, combinations, location_filter, list(quota_metrics), discover_quota_metrics)
        if publisher_models and quota_metrics:
            limits = tuple(f"quota_limit:{metric}" for metric in quota_metrics)
            combinations.append(
                Combination(
                    "dynamic_shared_quota",
                    ("publisher_invocations", *limits),
                    lambda results: dynamic_shared_quota_samples(
                        results["publisher_invocations"], [results[name] for name in limits]
                    ),
                    needs_all=True,
                )
            )
    return Plan(families, combinations)


def _quota_families(families, combinations, location_filter, quota_metrics, discover_quota_metrics) -> None:
    by_model = ("metric.label.base_model", "resource.label.location")
    for metric in quota_metrics:
        base = f"{METRIC_PREFIX}quota/{metric}/"
        usage, limit = f"quota_usage:{metric}", f"quota_limit:{metric}"
        families.append(
            Family(
                usage,
                TimeSeriesQuery(
                    base + "usage", Aggregation("ALIGN_DELTA", "REDUCE_SUM", by_model, 60), LOCATION, location_filter
                ),
                "peak",
                "quota",
            )
        )
        # aiplatform's own per-base-model limits are sampled every minute (unlike serviceruntime's).
        families.append(
            Family(
                limit,
                TimeSeriesQuery(
                    base + "limit", Aggregation("ALIGN_MAX", "REDUCE_MIN", by_model, 60), LOCATION, location_filter
                ),
                "newest",
                "quota",
            )
        )
        families.append(
            Family(
                f"quota_exceeded:{metric}",
                TimeSeriesQuery(base + "exceeded", _delta(*by_model), LOCATION, location_filter),
                "window",
                "quota",
                partial(value_samples, "quota.exceeded", "count", "window", (f"quota_metric:{metric}",)),
            )
        )
        combinations.append(
            Combination(
                f"quota:{metric}",
                (usage, limit),
                lambda results, metric=metric, usage=usage, limit=limit: quota_samples(
                    metric, results.get(usage), results.get(limit)
                ),
            )
        )
    if not discover_quota_metrics:
        return
    service_filter = (f"resource.label.service = {quote(AIPLATFORM_SERVICE)}",) + location_filter
    by_quota = ("metric.label.quota_metric", "resource.label.location")
    read_per_model = set(quota_metrics)

    def service_quota(name, metric, mode, aggregation, samples=None):
        query = TimeSeriesQuery(
            "serviceruntime.googleapis.com/quota/" + metric, aggregation, CONSUMER_QUOTA, service_filter
        )
        families.append(Family(name, query, mode, "quota", samples))

    hourly = SPARSE_ALIGNMENT
    service_quota(
        "service_quota_limit",
        "limit",
        "sparse",
        Aggregation("ALIGN_MAX", "REDUCE_MIN", (*by_quota, "metric.label.limit_name"), hourly),
    )
    service_quota(
        "service_quota_rate_usage", "rate/net_usage", "peak", Aggregation("ALIGN_DELTA", "REDUCE_SUM", by_quota, 60)
    )
    service_quota(
        "service_quota_allocation_usage",
        "allocation/usage",
        "sparse",
        Aggregation("ALIGN_MAX", "REDUCE_SUM", by_quota, hourly),
    )
    service_quota(
        "service_quota_exceeded",
        "exceeded",
        "window",
        Aggregation("ALIGN_COUNT_TRUE", "REDUCE_MAX", by_quota, 60),
        lambda series: value_samples(
            "quota.exceeded_minutes", "count", "window", (), without_quota_metrics(series, read_per_model)
        ),
    )
    parts = ("service_quota_limit", "service_quota_rate_usage", "service_quota_allocation_usage")
    combinations.append(
        Combination(
            "service_quota",
            parts,
            lambda results: service_quota_samples(*(results.get(name) for name in parts), read_per_model),
        )
    )
