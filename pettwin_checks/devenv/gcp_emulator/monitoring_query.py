"""Cloud Monitoring timeSeries.list: the request's parameters, checked as Google checks them, and RFC 3339 times."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from .descriptors import MetricDescriptor, invalid_combination, metric_not_found
from .errors import invalid_argument
from .monitoring_filter import FilterError, parse_filter

MAX_PAGE_SIZE = 100000

ALIGNERS = {
    "ALIGN_NONE",
    "ALIGN_DELTA",
    "ALIGN_RATE",
    "ALIGN_SUM",
    "ALIGN_MEAN",
    "ALIGN_MAX",
    "ALIGN_MIN",
    "ALIGN_COUNT",
    "ALIGN_COUNT_TRUE",
    "ALIGN_COUNT_FALSE",
    "ALIGN_FRACTION_TRUE",
    "ALIGN_NEXT_OLDER",
    "ALIGN_PERCENTILE_99",
    "ALIGN_PERCENTILE_95",
    "ALIGN_PERCENTILE_50",
    "ALIGN_PERCENTILE_05",
    "ALIGN_STDDEV",
    "ALIGN_INTERPOLATE",
    "ALIGN_PERCENT_CHANGE",
}
REDUCERS = {
    "REDUCE_NONE",
    "REDUCE_SUM",
    "REDUCE_MEAN",
    "REDUCE_MIN",
    "REDUCE_MAX",
    "REDUCE_COUNT",
    "REDUCE_PERCENTILE_99",
    "REDUCE_PERCENTILE_95",
    "REDUCE_PERCENTILE_50",
    "REDUCE_PERCENTILE_05",
    "REDUCE_STDDEV",
    "REDUCE_COUNT_TRUE",
    "REDUCE_COUNT_FALSE",
    "REDUCE_FRACTION_TRUE",
}
# "The maximum value of the alignment_period is 104 weeks (2 years) for charts".
MAX_ALIGNMENT_PERIOD = 104 * 7 * 86400


# ---------------------------------------------------------------- time helpers


def format_time(epoch_seconds: float) -> str:
    moment = datetime.fromtimestamp(epoch_seconds, tz=UTC)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


_FRACTION = re.compile(r"\.(\d+)")


def parse_time(text: str, field: str) -> float:
    # Google accepts RFC 3339 with up to nanoseconds; Python's parser stops at microseconds.
    normalized = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text.strip(), count=1)
    try:
        moment = datetime.fromisoformat(normalized.replace("z", "Z"))
    except ValueError:
        raise invalid_argument(
            f"Invalid value at '{field}' (type.googleapis.com/google.protobuf.Timestamp), "
            f"Field '{field}', Invalid time format: \"{text}\"",
            field,
        ) from None
    if moment.tzinfo is None:
        raise invalid_argument(f"Invalid value at '{field}': the time zone offset is required", field)
    return moment.timestamp()


def parse_duration(text: str, field: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)s", text.strip())
    if not match:
        raise invalid_argument(
            f"Invalid value at '{field}' (type.googleapis.com/google.protobuf.Duration), "
            f"Field '{field}', Illegal duration format; duration must end with 's'",
            field,
        )
    return float(match.group(1))


# ---------------------------------------------------------------- request parsing


@dataclass(frozen=True)
class Aggregation:
    """One google.monitoring.v3.Aggregation: `aggregation`, or `secondaryAggregation` applied to its output."""

    aligner: str
    period: float | None
    reducer: str
    group_by: tuple[tuple[str, str], ...]  # (scope, label)


@dataclass
class Query:
    project: str
    predicate: object
    descriptor: MetricDescriptor
    start: float
    end: float
    aggregation: Aggregation
    secondary: Aggregation | None
    page_size: int
    page_token: str
    headers_only: bool
    fingerprint: str


_GROUP_FIELD = re.compile(r'^(metric|resource)\.labels?\.(?:"([^"]+)"|([A-Za-z0-9_./\-]+))$')


def _single(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[-1] if values else None


def _parse_filter(params: dict[str, list[str]], descriptors: dict[str, MetricDescriptor]):
    """The filter's predicate and the descriptor of its metric type: Google's 400 for a filter that does not name
    exactly one metric type or names a resource type the metric is not written for, 404 for an unknown type."""
    filter_text = _single(params, "filter")
    if filter_text is None:
        raise invalid_argument('Field filter had an invalid value of "": a filter is required', "filter")
    try:
        parsed = parse_filter(filter_text)
    except FilterError as bad:
        raise invalid_argument(f'Field filter had an invalid value of "{filter_text}": {bad}', "filter") from None
    descriptor = descriptors.get(parsed.metric_type)
    if descriptor is None:
        raise metric_not_found(parsed.metric_type)
    if any(r not in descriptor.resource_types for r in parsed.resource_types):
        raise invalid_combination(filter_text)
    return parsed.predicate, descriptor


def _parse_interval(params: dict[str, list[str]]) -> tuple[float, float]:
    end_text = _single(params, "interval.endTime")
    if not end_text:
        raise invalid_argument(
            "Field interval.endTime had an invalid value: the interval end time is required", "interval.endTime"
        )
    end = parse_time(end_text, "interval.end_time")
    start_text = _single(params, "interval.startTime")
    start = parse_time(start_text, "interval.start_time") if start_text else end
    if start > end:
        raise invalid_argument(
            "Field interval.startTime had an invalid value: the start time must not be later than the end time",
            "interval.startTime",
        )
    return start, end


def _parse_aggregation(params: dict[str, list[str]], prefix: str) -> Aggregation:
    """`aggregation.*` or `secondaryAggregation.*`, with Google's rules between its fields."""
    proto = "aggregation" if prefix == "aggregation" else "secondary_aggregation"
    aligner = _single(params, f"{prefix}.perSeriesAligner") or "ALIGN_NONE"
    reducer = _single(params, f"{prefix}.crossSeriesReducer") or "REDUCE_NONE"
    for value, field, known, enum in (
        (aligner, f"{proto}.per_series_aligner", ALIGNERS, "Aligner"),
        (reducer, f"{proto}.cross_series_reducer", REDUCERS, "Reducer"),
    ):
        if value not in known:
            raise invalid_argument(
                f"Invalid value at '{field}' (type.googleapis.com/google.monitoring.v3.Aggregation.{enum}), "
                f'"{value}"',
                field,
            )
    field = f"{prefix}.alignmentPeriod"
    period_text = _single(params, field)
    period = parse_duration(period_text, f"{proto}.alignment_period") if period_text else None
    if aligner != "ALIGN_NONE" and period is None:
        raise invalid_argument("The alignment period must be specified when a per-series aligner is used.", field)
    if period is not None and period < 60:
        raise invalid_argument(
            f"Field {field} had an invalid value: the alignment period must be at least 60 seconds.", field
        )
    if period is not None and period > MAX_ALIGNMENT_PERIOD:
        raise invalid_argument(
            f'Field {field} had an invalid value of "{period_text}": the alignment period must be at most 104 weeks.',
            field,
        )
    if reducer != "REDUCE_NONE" and aligner == "ALIGN_NONE":
        raise invalid_argument(
            f'Field {prefix}.perSeriesAligner had an invalid value of "ALIGN_NONE": a '
            "per-series aligner must be specified when a cross-series reducer is used.",
            f"{prefix}.perSeriesAligner",
        )
    group_by = []
    for text in params.get(f"{prefix}.groupByFields", []):
        match = _GROUP_FIELD.match(text.strip())
        if not match:
            raise invalid_argument(
                f'Field {prefix}.groupByFields had an invalid value of "{text}": expected '
                f"metric.labels.NAME or resource.labels.NAME",
                f"{prefix}.groupByFields",
            )
        group_by.append((match.group(1), match.group(2) or match.group(3)))
    return Aggregation(aligner, period, reducer, tuple(group_by))


def _parse_page_size(params: dict[str, list[str]]) -> int:
    page_size_text = _single(params, "pageSize")
    if not page_size_text:
        return MAX_PAGE_SIZE
    try:
        page_size = int(page_size_text)
    except ValueError:
        raise invalid_argument(f"Invalid value at 'page_size' (TYPE_INT32), \"{page_size_text}\"", "pageSize") from None
    if page_size < 0:
        raise invalid_argument(
            f'Field page_size had an invalid value of "{page_size}": must be a positive number.', "pageSize"
        )
    # proto3 cannot tell 0 from an unset page_size, which means the maximum.
    return min(page_size or MAX_PAGE_SIZE, MAX_PAGE_SIZE)


def parse_query(project: str, params: dict[str, list[str]], descriptors: dict[str, MetricDescriptor]) -> Query:
    predicate, descriptor = _parse_filter(params, descriptors)
    start, end = _parse_interval(params)
    aggregation = _parse_aggregation(params, "aggregation")
    secondary = _parse_aggregation(params, "secondaryAggregation")
    if secondary.aligner == "ALIGN_NONE" and secondary.reducer == "REDUCE_NONE":
        secondary = None
    elif aggregation.aligner == "ALIGN_NONE":
        # "May only be specified if aggregation is specified."
        raise invalid_argument(
            "Field secondary_aggregation had an invalid value: a secondary aggregation may only be specified "
            "with an aggregation.",
            "secondaryAggregation",
        )
    page_size = _parse_page_size(params)
    if _single(params, "orderBy"):
        raise invalid_argument("Field order_by had an invalid value: Unsupported: must be left blank.", "orderBy")
    view = _single(params, "view") or "FULL"
    if view not in {"FULL", "HEADERS"}:
        raise invalid_argument(
            f"Invalid value at 'view' (type.googleapis.com/google.monitoring.v3."
            f'ListTimeSeriesRequest.TimeSeriesView), "{view}"',
            "view",
        )

    identity = {k: v for k, v in params.items() if k not in {"pageToken", "pageSize", "fields", "prettyPrint"}}
    fingerprint = hashlib.sha256(json.dumps([project, identity], sort_keys=True).encode()).hexdigest()[:16]
    return Query(
        project,
        predicate,
        descriptor,
        start,
        end,
        aggregation,
        secondary,
        page_size,
        _single(params, "pageToken") or "",
        view == "HEADERS",
        fingerprint,
    )
