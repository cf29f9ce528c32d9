"""Which Cloud Monitoring series the Vertex AI check reads, how they are aggregated, and what they become.

Pure: no I/O. One timeSeries.list per family (metric type), aggregated on Google's side (per-series aligner
plus REDUCE_SUM grouped by exactly the labels the check tags with), so the number of calls depends on the
families enabled, never on how many models, endpoints or replicas there are.

Families come in three modes:
- "window": DELTA data over the gap-free window since the previous run (one aligned point per series): counts
  and distributions (percentiles of the window's merged buckets).
- "newest": per-minute alignment over the last `gauge_lookback`, newest point per series (replicas, limits).
- "peak": per-minute alignment over the last `gauge_lookback`, largest point per series (quota usage, so the
  headroom reflects the busiest settled minute).
"""

from __future__ import annotations

from dataclasses import dataclass

from pettwin_checks.gcp.distribution import Distribution, merge, percentile
from pettwin_checks.gcp.timeseries import Aggregation, TimeSeries, TimeSeriesQuery, one_of, quote

PUBLISHER_MODEL = "aiplatform.googleapis.com/PublisherModel"
ENDPOINT = "aiplatform.googleapis.com/Endpoint"
LOCATION = "aiplatform.googleapis.com/Location"
CONSUMER_QUOTA = "consumer_quota"
AIPLATFORM_SERVICE = "aiplatform.googleapis.com"
METRIC_PREFIX = "aiplatform.googleapis.com/"

PERCENTILES = (("p50", 50.0), ("p95", 95.0), ("p99", 99.0))

# Monitoring label -> tag name. Labels not listed here never become tags.
TAG_NAMES = {
    "model_user_id": "model",
    "publisher": "publisher",
    "location": "location",
    "error_category": "error_category",
    "latency_type": "latency_type",
    "endpoint_id": "endpoint_id",
    "deployed_model_id": "deployed_model_id",
    "base_model": "base_model",
    "quota_metric": "quota_metric",
    "limit_name": "limit_name",
}

MODEL_LABELS = ("resource.label.model_user_id", "resource.label.publisher", "resource.label.location")
ENDPOINT_LABELS = ("resource.label.endpoint_id", "resource.label.location", "metric.label.deployed_model_id")


@dataclass(frozen=True)
class Family:
    name: str
    query: TimeSeriesQuery
    mode: str  # "window" | "newest" | "peak"
    scope: str  # the `collect` switch it belongs to: publisher_models | endpoints | quota


@dataclass(frozen=True)
class Sample:
    name: str  # without the check's namespace
    kind: str  # "count" | "gauge"
    value: float
    tags: tuple[str, ...]


def _delta(*group_by: str) -> Aggregation:
    return Aggregation("ALIGN_DELTA", "REDUCE_SUM", tuple(group_by))


def build_families(*, publisher_models: bool, endpoints: bool, quota: bool, locations=(), models=(),
                   endpoint_ids=(), quota_metrics=(), discover_quota_metrics: bool = True) -> list[Family]:
    location_filter = (one_of("resource", "location", locations),) if locations else ()
    families: list[Family] = []
    if publisher_models:
        model_filter = location_filter + ((one_of("resource", "model_user_id", models),) if models else ())

        def publisher(name, metric, *extra_labels):
            query = TimeSeriesQuery(METRIC_PREFIX + "publisher/online_serving/" + metric,
                                    _delta(*MODEL_LABELS, *extra_labels), PUBLISHER_MODEL, model_filter)
            families.append(Family(name, query, "window", "publisher_models"))

        publisher("publisher_invocations", "model_invocation_count",
                  "metric.label.response_code", "metric.label.error_category")
        publisher("publisher_latency", "model_invocation_latencies", "metric.label.latency_type")
        publisher("publisher_first_token", "first_token_latencies")
        publisher("publisher_tokens", "token_count", "metric.label.type")
    if endpoints:
        endpoint_filter = location_filter + ((one_of("resource", "endpoint_id", endpoint_ids),) if endpoint_ids else ())

        def endpoint(name, metric, mode, aggregation):
            query = TimeSeriesQuery(METRIC_PREFIX + "prediction/online/" + metric, aggregation, ENDPOINT,
                                    endpoint_filter)
            families.append(Family(name, query, mode, "endpoints"))

        endpoint("endpoint_latency", "prediction_latencies", "window",
                 _delta(*ENDPOINT_LABELS, "metric.label.latency_type"))
        endpoint("endpoint_responses", "response_count", "window",
                 _delta(*ENDPOINT_LABELS, "metric.label.response_code"))
        per_minute_sum = Aggregation("ALIGN_MAX", "REDUCE_SUM", ENDPOINT_LABELS, 60)
        endpoint("endpoint_replicas", "replicas", "newest", per_minute_sum)
        endpoint("endpoint_target_replicas", "target_replicas", "newest", per_minute_sum)
    if quota:
        by_model = ("metric.label.base_model", "resource.label.location")
        for metric in quota_metrics:
            base = f"{METRIC_PREFIX}quota/{metric}/"
            families.append(Family(f"quota_usage:{metric}", TimeSeriesQuery(
                base + "usage", Aggregation("ALIGN_DELTA", "REDUCE_SUM", by_model, 60), LOCATION, location_filter),
                "peak", "quota"))
            families.append(Family(f"quota_limit:{metric}", TimeSeriesQuery(
                base + "limit", Aggregation("ALIGN_MAX", "REDUCE_MIN", by_model, 60), LOCATION, location_filter),
                "newest", "quota"))
            families.append(Family(f"quota_exceeded:{metric}", TimeSeriesQuery(
                base + "exceeded", _delta(*by_model), LOCATION, location_filter), "window", "quota"))
        if discover_quota_metrics:
            service_filter = (f"resource.label.service = {quote(AIPLATFORM_SERVICE)}",) + location_filter
            by_quota = ("metric.label.quota_metric", "resource.label.location")

            def service_quota(name, metric, mode, aggregation):
                query = TimeSeriesQuery("serviceruntime.googleapis.com/quota/" + metric, aggregation, CONSUMER_QUOTA,
                                        service_filter)
                families.append(Family(name, query, mode, "quota"))

            service_quota("service_quota_limit", "limit", "newest",
                          Aggregation("ALIGN_MAX", "REDUCE_MIN", (*by_quota, "metric.label.limit_name"), 60))
            service_quota("service_quota_rate_usage", "rate/net_usage", "peak",
                          Aggregation("ALIGN_DELTA", "REDUCE_SUM", by_quota, 60))
            service_quota("service_quota_allocation_usage", "allocation/usage", "newest",
                          Aggregation("ALIGN_MAX", "REDUCE_SUM", by_quota, 60))
            service_quota("service_quota_exceeded", "exceeded", "window",
                          Aggregation("ALIGN_COUNT_TRUE", "REDUCE_MAX", by_quota))
    return families


# ---------------------------------------------------------------- from series to values


def series_value(series: TimeSeries, mode: str):
    """The one value a series stands for in its family's mode; None when it has no usable point."""
    values = [p.value for p in series.points]
    if not values:
        return None
    if mode == "newest":
        return series.newest().value
    if all(isinstance(v, Distribution) for v in values):
        return merge(values) if mode == "window" else None
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(numbers) != len(values):
        return None  # mixed or boolean values where numbers are expected
    return sum(numbers) if mode == "window" else max(numbers)


def tags_of(series: TimeSeries, *skip: str) -> tuple[str, ...]:
    tags = []
    for label, tag in TAG_NAMES.items():
        if tag in skip:
            continue
        value = series.label(label)
        if value not in (None, ""):
            if label == "quota_metric":
                value = value.removeprefix(METRIC_PREFIX)
            tags.append(f"{tag}:{value}")
    return tuple(tags)


def response_code_class(code: str | None) -> str:
    """"429" -> "4xx"; Google's endpoint metrics already send "4xx"; anything else -> "unknown"."""
    code = (code or "").strip().lower()
    if len(code) == 3 and code[0] in "12345" and (code[1:].isdigit() or code[1:] == "xx"):
        return f"{code[0]}xx"
    return "unknown"


def cap_samples(samples: list[Sample], max_contexts: int) -> tuple[list[Sample], int]:
    """At most `max_contexts` tag sets per metric name, the heaviest (largest |value|) kept.

    Capping happens after every value was computed from all series, so rates and headroom are never skewed
    by what was dropped. Returns the kept samples and the most tag sets dropped for any one metric name.
    """
    by_name: dict[str, list[Sample]] = {}
    for sample in samples:
        by_name.setdefault(sample.name, []).append(sample)
    kept: list[Sample] = []
    dropped = 0
    for name, group in by_name.items():
        if len(group) > max_contexts:
            dropped = max(dropped, len(group) - max_contexts)
            group = sorted(group, key=lambda sample: (-abs(sample.value), sample.tags))[:max_contexts]
        kept.extend(group)
    return kept, dropped


def distribution_samples(prefix: str, dist: Distribution, tags: tuple[str, ...]) -> list[Sample]:
    if dist.count == 0:
        return []
    samples = [Sample(f"{prefix}.avg", "gauge", dist.mean, tags)]
    for suffix, q in PERCENTILES:
        value = percentile(dist, q)
        if value is not None:
            samples.append(Sample(f"{prefix}.{suffix}", "gauge", value, tags))
    return samples


@dataclass
class FamilyResult:
    samples: list[Sample]
    dropped: int


def _rows(series_list, mode, skip=()):
    rows = []
    for series in series_list:
        value = series_value(series, mode)
        if value is not None:
            rows.append((series, tags_of(series, *skip), value))
    return rows


def family_samples(family: Family, series_list: list[TimeSeries], max_contexts: int) -> FamilyResult:
    """Samples of one family on its own (quota headroom and dynamic shared quota need several: see below)."""
    name = family.name.split(":", 1)[0]
    rows = _rows(series_list, family.mode)
    samples: list[Sample] = []
    if name == "publisher_invocations":
        samples.extend(_invocation_samples(rows))
    elif name in {"publisher_latency", "publisher_first_token", "endpoint_latency"}:
        prefix = {"publisher_latency": "publisher.latency", "publisher_first_token": "publisher.first_token_latency",
                  "endpoint_latency": "endpoint.latency"}[name]
        for _, tags, value in rows:
            if isinstance(value, Distribution):
                samples.extend(distribution_samples(prefix, value, tags))
    elif name == "publisher_tokens":
        for series, tags, value in rows:
            token_type = series.label("type")
            if token_type in {"input", "output"}:
                samples.append(Sample(f"publisher.tokens.{token_type}", "count", value, tags))
    elif name == "endpoint_responses":
        samples.extend(_endpoint_response_samples(rows))
    elif name in {"endpoint_replicas", "endpoint_target_replicas"}:
        metric = "endpoint.replicas" if name == "endpoint_replicas" else "endpoint.target_replicas"
        samples.extend(Sample(metric, "gauge", value, tags) for _, tags, value in rows)
    elif name == "quota_exceeded":
        quota_tag = f"quota_metric:{family.name.split(':', 1)[1]}"
        samples.extend(Sample("quota.exceeded", "count", value, (quota_tag, *tags)) for _, tags, value in rows)
    elif name == "service_quota_exceeded":
        samples.extend(Sample("quota.exceeded_minutes", "count", value, tags) for _, tags, value in rows)
    # quota usage / limit families become samples in quota_samples(), together.
    return FamilyResult(*cap_samples(samples, max_contexts))


def _invocation_samples(rows) -> list[Sample]:
    samples = []
    totals: dict[tuple, list[float]] = {}  # model tags -> [total, errors, throttled]
    for series, tags, value in rows:
        code = series.label("response_code")
        code_class = response_code_class(code)
        category = series.label("error_category") or "none"
        model_tags = tuple(t for t in tags if not t.startswith("error_category:"))
        samples.append(Sample("publisher.invocations", "count", value,
                              (*model_tags, f"response_code_class:{code_class}", f"error_category:{category}")))
        total = totals.setdefault(model_tags, [0.0, 0.0, 0.0])
        total[0] += value
        if code_class != "2xx":
            total[1] += value
        if (code or "").strip() == "429":
            total[2] += value
    for model_tags, (total, errors, throttled) in sorted(totals.items()):
        samples.append(Sample("publisher.throttled", "count", throttled, model_tags))
        if total > 0:
            samples.append(Sample("publisher.error_rate", "gauge", errors / total * 100.0, model_tags))
            samples.append(Sample("publisher.throttle_rate", "gauge", throttled / total * 100.0, model_tags))
    return samples


def _endpoint_response_samples(rows) -> list[Sample]:
    samples = []
    totals: dict[tuple, list[float]] = {}
    for series, tags, value in rows:
        code_class = response_code_class(series.label("response_code"))
        samples.append(Sample("endpoint.responses", "count", value, (*tags, f"response_code_class:{code_class}")))
        total = totals.setdefault(tags, [0.0, 0.0])
        total[0] += value
        if code_class != "2xx":
            total[1] += value
    for tags, (total, errors) in sorted(totals.items()):
        if total > 0:
            samples.append(Sample("endpoint.error_rate", "gauge", errors / total * 100.0, tags))
    return samples


def is_per_minute(quota_metric: str, limit_name: str = "") -> bool:
    """Headroom compares the busiest minute with the limit: only meaningful for per-minute rate quotas."""
    return "per_minute" in quota_metric.lower() or "perminute" in limit_name.lower()


def headroom_pct(usage: float, limit: float) -> float | None:
    """Percent of the limit still free (negative when over); None for an unlimited (-1) limit."""
    if limit < 0:
        return None
    if limit == 0:
        return 0.0  # a zero limit (quota withheld) leaves nothing free
    return (limit - usage) / limit * 100.0


def quota_samples(quota_metric: str, usage: list[TimeSeries] | None, limits: list[TimeSeries] | None,
                  max_contexts: int) -> FamilyResult:
    """usage, limit and headroom per base model and location for one aiplatform quota metric.

    Either list may be None (its query failed): the other's values are still reported, headroom is not.
    """
    quota_tag = f"quota_metric:{quota_metric}"
    samples: list[Sample] = []
    usage_by_key: dict[tuple, float] = {}
    limit_by_key: dict[tuple, float] = {}
    if usage is not None:
        for _, tags, value in _rows(usage, "peak", skip=("limit_name",)):
            usage_by_key[tags] = value
            samples.append(Sample("quota.usage", "gauge", value, (quota_tag, *tags)))
    if limits is not None:
        for _, tags, value in _rows(limits, "newest", skip=("limit_name",)):
            if value < 0:
                continue  # -1: unlimited
            limit_by_key[tags] = value
            samples.append(Sample("quota.limit", "gauge", value, (quota_tag, *tags)))
    if usage is not None and limits is not None and is_per_minute(quota_metric):
        for tags, limit in sorted(limit_by_key.items()):
            used = usage_by_key.get(tags, 0.0)
            samples.append(Sample("quota.headroom_pct", "gauge", headroom_pct(used, limit), (quota_tag, *tags)))
    return FamilyResult(*cap_samples(samples, max_contexts))


def without_quota_metrics(series_list: list[TimeSeries], quota_metrics: set[str]) -> list[TimeSeries]:
    """serviceruntime series of quota metrics not already read per base model (so none is reported twice)."""
    return [s for s in series_list
            if (s.label("quota_metric") or "").removeprefix(METRIC_PREFIX) not in quota_metrics]


def service_quota_samples(limits: list[TimeSeries] | None, rate_usage: list[TimeSeries] | None,
                          allocation_usage: list[TimeSeries] | None, skip_quota_metrics: set[str],
                          max_contexts: int) -> FamilyResult:
    """usage, limit and headroom per quota metric and location from serviceruntime's consumer_quota series.

    Quota metrics also read per base model (`skip_quota_metrics`) are left out so no quota is reported twice.
    """
    samples: list[Sample] = []
    limit_rows: dict[tuple, list[tuple[str, float]]] = {}
    if limits is not None:
        for series, tags, value in _rows(without_quota_metrics(limits, skip_quota_metrics), "newest"):
            if value < 0:
                continue
            samples.append(Sample("quota.limit", "gauge", value, tags))
            key = tuple(t for t in tags if not t.startswith("limit_name:"))
            limit_rows.setdefault(key, []).append((series.label("limit_name") or "", value))
    for usage, mode, allocation in ((rate_usage, "peak", False), (allocation_usage, "newest", True)):
        if usage is None:
            continue
        for series, tags, value in _rows(without_quota_metrics(usage, skip_quota_metrics), mode):
            samples.append(Sample("quota.usage", "gauge", value, tags))
            if limits is None:
                continue
            quota_metric = series.label("quota_metric") or ""
            candidates = [v for name, v in limit_rows.get(tags, []) if allocation or is_per_minute(quota_metric, name)]
            if candidates:
                samples.append(Sample("quota.headroom_pct", "gauge", headroom_pct(value, min(candidates)), tags))
    return FamilyResult(*cap_samples(samples, max_contexts))


def dynamic_shared_quota_samples(invocations: list[TimeSeries], limits: list[list[TimeSeries]]) -> list[Sample]:
    """quota.dynamic_shared per invoked model: 1 when no per-base-model limit covers it (dynamic shared quota,
    where throttling, not a limit, is the signal), 0 when one does."""
    limited = set()
    for series_list in limits:
        for series in series_list:
            base_model = series.label("base_model")
            value = series_value(series, "newest")
            if base_model and isinstance(value, (int, float)) and value >= 0:
                limited.add((base_model, series.label("location") or ""))
    samples = []
    seen = set()
    for series in invocations:
        model, location = series.label("model_user_id"), series.label("location") or ""
        if not model or (model, location) in seen:
            continue
        seen.add((model, location))
        covered = any(location == loc and (model == base or model.startswith(base + "-")) for base, loc in limited)
        tags = tuple(t for t in tags_of(series) if t.split(":", 1)[0] in {"model", "publisher", "location"})
        samples.append(Sample("quota.dynamic_shared", "gauge", 0.0 if covered else 1.0, tags))
    return samples
