"""What the Vertex AI check's series become: tags, rates, percentiles, quota headroom, spend. Pure.

Each function here turns the series of one family (or of a few, for quota headroom, dynamic shared quota and
spend) into Samples; families.py says which function each family uses.
"""

from __future__ import annotations

from pettwin_checks.gcp.distribution import Distribution
from pettwin_checks.gcp.families import Sample, distribution_samples, series_value
from pettwin_checks.gcp.timeseries import TimeSeries

METRIC_PREFIX = "aiplatform.googleapis.com/"

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
    """ "429" -> "4xx"; Google's endpoint metrics already send "4xx"; anything else -> "unknown"."""
    code = (code or "").strip().lower()
    if len(code) == 3 and code[0] in "12345" and (code[1:].isdigit() or code[1:] == "xx"):
        return f"{code[0]}xx"
    return "unknown"


def rows_of(series_list, mode, skip=()) -> list[tuple[TimeSeries, tuple[str, ...], object]]:
    """(series, tags, value) of every series with a usable value in `mode`."""
    rows = []
    for series in series_list:
        value = series_value(series, mode)
        if value is not None:
            rows.append((series, tags_of(series, *skip), value))
    return rows


def invocation_samples(series_list: list[TimeSeries]) -> list[Sample]:
    """publisher.invocations by response code class and error category, throttles and rates per model."""
    rows = rows_of(series_list, "window")
    samples = []
    totals: dict[tuple, list[float]] = {}  # model tags -> [total, errors, throttled]
    for series, tags, value in rows:
        code = series.label("response_code")
        code_class = response_code_class(code)
        category = series.label("error_category") or "none"
        model_tags = tuple(t for t in tags if not t.startswith("error_category:"))
        samples.append(
            Sample(
                "publisher.invocations",
                "count",
                value,
                (*model_tags, f"response_code_class:{code_class}", f"error_category:{category}"),
            )
        )
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


def endpoint_response_samples(series_list: list[TimeSeries]) -> list[Sample]:
    """endpoint.responses by response code class, and the error rate per deployed model."""
    rows = rows_of(series_list, "window")
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


def percentile_samples(prefix: str, series_list: list[TimeSeries]) -> list[Sample]:
    """<prefix>.avg/.p50/.p95/.p99 of each series' window distribution."""
    samples = []
    for _, tags, value in rows_of(series_list, "window"):
        if isinstance(value, Distribution):
            samples.extend(distribution_samples(prefix, value, tags))
    return samples


def token_samples(series_list: list[TimeSeries]) -> list[Sample]:
    samples = []
    for series, tags, value in rows_of(series_list, "window"):
        token_type = series.label("type")
        if token_type in {"input", "output"}:
            samples.append(Sample(f"publisher.tokens.{token_type}", "count", value, tags))
    return samples


def price_of(model: str, prices: dict[str, tuple[float, float]]) -> tuple[float, float] | None:
    """(input, output) USD per million tokens of a model: its own entry, else the longest entry it is a version
    of (gemini-2.0-flash-001 is priced as gemini-2.0-flash); None when the table has no price for it."""
    if model in prices:
        return prices[model]
    versions = [name for name in prices if model.startswith(name + "-")]
    return prices[max(versions, key=len)] if versions else None


def cost_samples(prices: dict[str, tuple[float, float]], tokens: list[TimeSeries] | None) -> list[Sample]:
    """publisher.cost: USD per model for the window's input and output tokens. A model without a price gets
    no sample (never 0): the check names it."""
    spend: dict[tuple[str, ...], float] = {}
    for series, tags, value in rows_of(tokens or [], "window"):
        price = price_of(series.label("model_user_id") or "", prices)
        token_type = series.label("type")
        if price is None or token_type not in ("input", "output"):
            continue
        per_million = price[0] if token_type == "input" else price[1]
        spend[tags] = spend.get(tags, 0.0) + value * per_million / 1_000_000
    return [Sample("publisher.cost", "count", usd, tags) for tags, usd in sorted(spend.items())]


def unpriced_models(prices: dict[str, tuple[float, float]], tokens: list[TimeSeries] | None) -> set[str]:
    return {
        model for series in tokens or [] if (model := series.label("model_user_id")) and price_of(model, prices) is None
    }


def value_samples(name: str, kind: str, mode: str, extra_tags: tuple[str, ...], series_list) -> list[Sample]:
    """One sample per series: its value in `mode`, tagged with its labels and `extra_tags`."""
    return [Sample(name, kind, value, (*extra_tags, *tags)) for _, tags, value in rows_of(series_list, mode)]


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


def quota_samples(quota_metric: str, usage: list[TimeSeries] | None, limits: list[TimeSeries] | None) -> list[Sample]:
    """usage, limit and headroom per base model and location for one aiplatform quota metric.

    Either list may be None (its query failed): the other's values are still reported, headroom is not.
    """
    quota_tag = f"quota_metric:{quota_metric}"
    samples: list[Sample] = []
    usage_by_key: dict[tuple, float] = {}
    limit_by_key: dict[tuple, float] = {}
    if usage is not None:
        for _, tags, value in rows_of(usage, "peak", skip=("limit_name",)):
            usage_by_key[tags] = value
            samples.append(Sample("quota.usage", "gauge", value, (quota_tag, *tags)))
    if limits is not None:
        for _, tags, value in rows_of(limits, "newest", skip=("limit_name",)):
            if value < 0:
                continue  # -1: unlimited
            limit_by_key[tags] = value
            samples.append(Sample("quota.limit", "gauge", value, (quota_tag, *tags)))
    if usage is not None and limits is not None and is_per_minute(quota_metric):
        for tags, limit in sorted(limit_by_key.items()):
            used = usage_by_key.get(tags, 0.0)
            samples.append(Sample("quota.headroom_pct", "gauge", headroom_pct(used, limit), (quota_tag, *tags)))
    return samples


def without_quota_metrics(series_list: list[TimeSeries], quota_metrics: set[str]) -> list[TimeSeries]:
    """serviceruntime series of quota metrics not already read per base model (so none is reported twice)."""
    return [s for s in series_list if (s.label("quota_metric") or "").removeprefix(METRIC_PREFIX) not in quota_metrics]


def service_quota_samples(
    limits: list[TimeSeries] | None,
    rate_usage: list[TimeSeries] | None,
    allocation_usage: list[TimeSeries] | None,
    skip_quota_metrics: set[str],
) -> list[Sample]:
    """usage, limit and headroom per quota metric and location from serviceruntime's consumer_quota series.

    Quota metrics also read per base model (`skip_quota_metrics`) are left out so no quota is reported twice.
    """
    samples: list[Sample] = []
    limit_rows: dict[tuple, list[tuple[str, float]]] = {}
    if limits is not None:
        for series, tags, value in rows_of(without_quota_metrics(limits, skip_quota_metrics), "newest"):
            if value < 0:
                continue
            samples.append(Sample("quota.limit", "gauge", value, tags))
            key = tuple(t for t in tags if not t.startswith("limit_name:"))
            limit_rows.setdefault(key, []).append((series.label("limit_name") or "", value))
    for usage, mode, allocation in ((rate_usage, "peak", False), (allocation_usage, "newest", True)):
        if usage is None:
            continue
        for series, tags, value in rows_of(without_quota_metrics(usage, skip_quota_metrics), mode):
            samples.append(Sample("quota.usage", "gauge", value, tags))
            if limits is None:
                continue
            quota_metric = series.label("quota_metric") or ""
            candidates = [v for name, v in limit_rows.get(tags, []) if allocation or is_per_minute(quota_metric, name)]
            if candidates:
                samples.append(Sample("quota.headroom_pct", "gauge", headroom_pct(value, min(candidates)), tags))
    return samples


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
