"""Cloud Monitoring timeSeries.list: the request's parameters, checked as Google checks them, and RFC 3339 times."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from .errors import ApiError, invalid_argument
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
}
UNIMPLEMENTED_ALIGNERS = {"ALIGN_INTERPOLATE", "ALIGN_PERCENT_CHANGE"}
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
UNIMPLEMENTED_REDUCERS: set[str] = set()
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


@dataclass
class Query:
    project: str
    predicate: object
    start: float
    end: float
    aligner: str
    period: float | None
    reducer: str
    group_by: list[tuple[str, str]]  # (scope, label)
    page_size: int
    page_token: str
    headers_only: bool
    fingerprint: str


_GROUP_FIELD = re.compile(r'^(metric|resource)\.labels?\.(?:"([^"]+)"|([A-Za-z0-9_./\-]+))$')


def _single(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[-1] if values else None


def parse_query(project: str, params: dict[str, list[str]]) -> Query:
    filter_text = _single(params, "filter")
    if filter_text is None:
        raise invalid_argument('Field filter had an invalid value of "": a filter is required', "filter")
    try:
        predicate = parse_filter(filter_text)
    except FilterError as bad:
        raise invalid_argument(f'Field filter had an invalid value of "{filter_text}": {bad}', "filter") from None

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

    aligner = _single(params, "aggregation.perSeriesAligner") or "ALIGN_NONE"
    reducer = _single(params, "aggregation.crossSeriesReducer") or "REDUCE_NONE"
    for value, field, known, unimplemented, enum in (
        (aligner, "aggregation.per_series_aligner", ALIGNERS, UNIMPLEMENTED_ALIGNERS, "Aligner"),
        (reducer, "aggregation.cross_series_reducer", REDUCERS, UNIMPLEMENTED_REDUCERS, "Reducer"),
    ):
        if value in unimplemented:
            raise ApiError(501, f"{value} is valid in Cloud Monitoring but not implemented by the emulator")
        if value not in known:
            raise invalid_argument(
                f"Invalid value at '{field}' (type.googleapis.com/google.monitoring.v3.Aggregation.{enum}), "
                f'"{value}"',
                field,
            )

    period_text = _single(params, "aggregation.alignmentPeriod")
    period = parse_duration(period_text, "aggregation.alignment_period") if period_text else None
    if aligner != "ALIGN_NONE" and period is None:
        raise invalid_argument(
            "The alignment period must be specified when a per-series aligner is used.", "aggregation.alignmentPeriod"
        )
    if period is not None and period < 60:
        raise invalid_argument(
            "Field aggregation.alignmentPeriod had an invalid value: the alignment period must be at least 60 seconds.",
            "aggregation.alignmentPeriod",
        )
    if period is not None and period > MAX_ALIGNMENT_PERIOD:
        raise invalid_argument(
            f'Field aggregation.alignmentPeriod had an invalid value of "{period_text}": the '
            "alignment period must be at most 104 weeks.",
            "aggregation.alignmentPeriod",
        )
    if reducer != "REDUCE_NONE" and aligner == "ALIGN_NONE":
        raise invalid_argument(
            'Field aggregation.perSeriesAligner had an invalid value of "ALIGN_NONE": a '
            "per-series aligner must be specified when a cross-series reducer is used.",
            "aggregation.perSeriesAligner",
        )

    group_by = []
    for field in params.get("aggregation.groupByFields", []):
        match = _GROUP_FIELD.match(field.strip())
        if not match:
            raise invalid_argument(
                f'Field aggregation.groupByFields had an invalid value of "{field}": expected '
                f"metric.labels.NAME or resource.labels.NAME",
                "aggregation.groupByFields",
            )
        group_by.append((match.group(1), match.group(2) or match.group(3)))

    page_size_text = _single(params, "pageSize")
    page_size = MAX_PAGE_SIZE
    if page_size_text:
        try:
            page_size = int(page_size_text)
        except ValueError:
            raise invalid_argument(
                f"Invalid value at 'page_size' (TYPE_INT32), \"{page_size_text}\"", "pageSize"
            ) from None
        if page_size < 0:
            raise invalid_argument(
                f'Field page_size had an invalid value of "{page_size}": must be a positive number.', "pageSize"
            )
        # proto3 cannot tell 0 from an unset page_size, which means the maximum.
        page_size = min(page_size or MAX_PAGE_SIZE, MAX_PAGE_SIZE)

    if _single(params, "orderBy"):
        raise invalid_argument("Field order_by had an invalid value: Unsupported: must be left blank.", "orderBy")
    if any(
        name.startswith("secondaryAggregation.") and value not in {"", "ALIGN_NONE", "REDUCE_NONE"}
        for name, values in params.items()
        for value in values
    ):
        raise ApiError(501, "secondaryAggregation is valid in Cloud Monitoring but not implemented by the emulator")

    view = _single(params, "view") or "FULL"
    if view not in {"FULL", "HEADERS"}:
        raise invalid_argument(
            f"Invalid value at 'view' (type.googleapis.com/google.monitoring.v3."
            f'ListTimeSeriesRequest.TimeSeriesView), "{view}"',
            "view",
        )

    identity = {k: v for k, v in params.items() if k not in {"pageToken", "pageSize"}}
    fingerprint = hashlib.sha256(json.dumps([project, identity], sort_keys=True).encode()).hexdigest()[:16]
    return Query(
        project,
        predicate,
        start,
        end,
        aligner,
        period,
        reducer,
        group_by,
        page_size,
        _single(params, "pageToken") or "",
        view == "HEADERS",
        fingerprint,
    )
