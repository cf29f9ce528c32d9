"""The Vertex AI check's family table: which Cloud Monitoring series it reads and what they become. Pure.

One timeSeries.list per family (metric type), aggregated on Google's side (a per-minute aligner plus a reducer
grouped by exactly the labels the check tags with), so the number of calls depends on the families enabled,
never on how many models, endpoints or replicas there are. Modes and the engine: pettwin_checks.gcp.families.
Derived families (no query) join others: quota headroom (usage and limit), dynamic shared quota, spend (token
counts and the price table).
"""

from __future__ import annotations

from functools import partial

from pettwin_checks.gcp.families import SPARSE_ALIGNMENT, Family
from pettwin_checks.gcp.timeseries import Aggregation, TimeSeriesQuery, one_of, quote

from .samples import (
    METRIC_PREFIX,
    cost_samples,
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

MODEL_LABELS = ("resource.label.model_user_id", "resource.label.publisher", "resource.label.location")
ENDPOINT_LABELS = ("resource.label.endpoint_id", "resource.label.location", "metric.label.deployed_model_id")
TOKENS = "publisher_tokens"


def _delta(*group_by: str) -> Aggregation:
    return Aggregation("ALIGN_DELTA", "REDUCE_SUM", tuple(group_by), 60)


def build_families(
    *,
    publisher_models: bool,
    endpoints: bool,
    quota: bool,
    locations=(),
    models=(),
    endpoint_ids=(),
    quota_metrics=(),
    discover_quota_metrics: bool = True,
    token_prices=None,
) -> list[Family]:
    """The families the options enable, queried ones in the order they are asked. `token_prices`: model ->
    (input, output) USD per million tokens; None leaves spend out."""
    location_filter = (one_of("resource", "location", locations),) if locations else ()
    families: list[Family] = []
    if publisher_models:
        families.extend(_publisher_families(location_filter, models, token_prices))
    if endpoints:
        families.extend(_endpoint_families(location_filter, endpoint_ids))
    if quota:
        families.extend(_quota_families(location_filter, list(quota_metrics)))
        if discover_quota_metrics:
            families.extend(_service_quota_families(location_filter, set(quota_metrics)))
        if publisher_models and quota_metrics:
            limits = tuple(f"quota_limit:{metric}" for metric in quota_metrics)
            families.append(
                Family(
                    "dynamic_shared_quota",
                    inputs=("publisher_invocations", *limits),
                    needs_all=True,
                    samples=lambda results: dynamic_shared_quota_samples(
                        results["publisher_invocations"], [results[name] for name in limits]
                    ),
                )
            )
    return families


def configured_families(config, token_prices) -> list[Family]:
    """The table an instance's options enable."""
    return build_families(
        publisher_models=config.collect.publisher_models,
        endpoints=config.collect.endpoints,
        quota=config.collect.quota,
        locations=config.locations,
        models=config.models,
        endpoint_ids=config.endpoint_ids,
        quota_metrics=config.quota_metrics,
        discover_quota_metrics=config.discover_quota_metrics,
        token_prices=token_prices,
    )


def _publisher_families(location_filter, models, token_prices) -> list[Family]:
    model_filter = location_filter + ((one_of("resource", "model_user_id", models),) if models else ())

    def publisher(name, metric, samples, *extra_labels):
        query = TimeSeriesQuery(
            METRIC_PREFIX + "publisher/online_serving/" + metric,
            _delta(*MODEL_LABELS, *extra_labels),
            PUBLISHER_MODEL,
            model_filter,
        )
        return Family(name, query, "window", samples)

    families = [
        publisher(
            "publisher_invocations",
            "model_invocation_count",
            invocation_samples,
            "metric.label.response_code",
            "metric.label.error_category",
        ),
        publisher(
            "publisher_latency",
            "model_invocation_latencies",
            partial(percentile_samples, "publisher.latency"),
            "metric.label.latency_type",
        ),
        publisher(
            "publisher_first_token",
            "first_token_latencies",
            partial(percentile_samples, "publisher.first_token_latency"),
        ),
        publisher(TOKENS, "token_count", token_samples, "metric.label.type"),
    ]
    if token_prices is not None:
        families.append(
            Family("publisher_cost", inputs=(TOKENS,), samples=lambda r: cost_samples(token_prices, r[TOKENS]))
        )
    return families


def _endpoint_families(location_filter, endpoint_ids) -> list[Family]:
    endpoint_filter = location_filter + ((one_of("resource", "endpoint_id", endpoint_ids),) if endpoint_ids else ())

    def endpoint(name, metric, mode, aggregation, samples):
        query = TimeSeriesQuery(METRIC_PREFIX + "prediction/online/" + metric, aggregation, ENDPOINT, endpoint_filter)
        return Family(name, query, mode, samples)

    per_minute_sum = Aggregation("ALIGN_MAX", "REDUCE_SUM", ENDPOINT_LABELS, 60)
    return [
        endpoint(
            "endpoint_latency",
            "prediction_latencies",
            "window",
            _delta(*ENDPOINT_LABELS, "metric.label.latency_type"),
            partial(percentile_samples, "endpoint.latency"),
        ),
        endpoint(
            "endpoint_responses",
            "response_count",
            "window",
            _delta(*ENDPOINT_LABELS, "metric.label.response_code"),
            endpoint_response_samples,
        ),
        *(
            endpoint(
                name,
                metric,
                "newest",
                per_minute_sum,
                partial(value_samples, f"endpoint.{metric}", "gauge", "newest", ()),
            )
            for name, metric in (("endpoint_replicas", "replicas"), ("endpoint_target_replicas", "target_replicas"))
        ),
    ]


def _quota_families(location_filter, quota_metrics) -> list[Family]:
    by_model = ("metric.label.base_model", "resource.label.location")
    families = []
    for metric in quota_metrics:
        base = f"{METRIC_PREFIX}quota/{metric}/"
        usage, limit = f"quota_usage:{metric}", f"quota_limit:{metric}"

        def query(kind, aligner, reducer, base=base):
            return TimeSeriesQuery(base + kind, Aggregation(aligner, reducer, by_model, 60), LOCATION, location_filter)

        families += [
            Family(usage, query("usage", "ALIGN_DELTA", "REDUCE_SUM"), "peak"),
            # aiplatform's own per-base-model limits are sampled every minute (unlike serviceruntime's).
            Family(limit, query("limit", "ALIGN_MAX", "REDUCE_MIN"), "newest"),
            Family(
                f"quota_exceeded:{metric}",
                query("exceeded", "ALIGN_DELTA", "REDUCE_SUM"),
                "window",
                partial(value_samples, "quota.exceeded", "count", "window", (f"quota_metric:{metric}",)),
            ),
            Family(
                f"quota:{metric}",
                inputs=(usage, limit),
                samples=lambda results, metric=metric, usage=usage, limit=limit: quota_samples(
                    metric, results.get(usage), results.get(limit)
                ),
            ),
        ]
    return families


def _service_quota_families(location_filter, read_per_model: set[str]) -> list[Family]:
    service_filter = (f"resource.label.service = {quote(AIPLATFORM_SERVICE)}",) + location_filter
    by_quota = ("metric.label.quota_metric", "resource.label.location")

    def service_quota(name, metric, mode, aggregation, samples=None):
        query = TimeSeriesQuery(
            "serviceruntime.googleapis.com/quota/" + metric, aggregation, CONSUMER_QUOTA, service_filter
        )
        return Family(name, query, mode, samples)

    parts = ("service_quota_limit", "service_quota_rate_usage", "service_quota_allocation_usage")
    return [
        service_quota(
            "service_quota_limit",
            "limit",
            "sparse",
            Aggregation("ALIGN_MAX", "REDUCE_MIN", (*by_quota, "metric.label.limit_name"), SPARSE_ALIGNMENT),
        ),
        service_quota(
            "service_quota_rate_usage", "rate/net_usage", "peak", Aggregation("ALIGN_DELTA", "REDUCE_SUM", by_quota, 60)
        ),
        service_quota(
            "service_quota_allocation_usage",
            "allocation/usage",
            "sparse",
            Aggregation("ALIGN_MAX", "REDUCE_SUM", by_quota, SPARSE_ALIGNMENT),
        ),
        service_quota(
            "service_quota_exceeded",
            "exceeded",
            "window",
            Aggregation("ALIGN_COUNT_TRUE", "REDUCE_MAX", by_quota, 60),
            lambda series: value_samples(
                "quota.exceeded_minutes", "count", "window", (), without_quota_metrics(series, read_per_model)
            ),
        ),
        Family(
            "service_quota",
            inputs=parts,
            samples=lambda results: service_quota_samples(*(results.get(name) for name in parts), read_per_model),
        ),
    ]
