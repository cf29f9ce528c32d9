"""Cloud Monitoring API v3 projects.timeSeries.list over a scenario's series.

Points are generated at request time from the wall clock: one point per whole minute, the newest being the
last minute that has ended, going back `history_minutes`. A DELTA point covers [m, m+60s); a GAUGE point is
sampled at m+60s; a CUMULATIVE point runs from a fixed origin (history_minutes before the scenario was
loaded) to m+60s.

Alignment windows end at interval.endTime and step back by the alignment period: (t-P, t]. A raw point
belongs to the window that contains its end time.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import json
import math
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from . import distribution as dist
from .errors import ApiError, invalid_argument
from .monitoring_filter import FilterError, parse_filter
from .scenario import Scenario, SeriesSpec

MAX_PAGE_SIZE = 100000

ALIGNERS = {
    "ALIGN_NONE", "ALIGN_DELTA", "ALIGN_RATE", "ALIGN_SUM", "ALIGN_MEAN", "ALIGN_MAX", "ALIGN_MIN",
    "ALIGN_COUNT", "ALIGN_COUNT_TRUE", "ALIGN_COUNT_FALSE", "ALIGN_FRACTION_TRUE", "ALIGN_NEXT_OLDER",
    "ALIGN_PERCENTILE_99", "ALIGN_PERCENTILE_95", "ALIGN_PERCENTILE_50", "ALIGN_PERCENTILE_05",
}
UNIMPLEMENTED_ALIGNERS = {"ALIGN_INTERPOLATE", "ALIGN_STDDEV", "ALIGN_PERCENT_CHANGE"}
REDUCERS = {
    "REDUCE_NONE", "REDUCE_SUM", "REDUCE_MEAN", "REDUCE_MIN", "REDUCE_MAX", "REDUCE_COUNT",
    "REDUCE_PERCENTILE_99", "REDUCE_PERCENTILE_95", "REDUCE_PERCENTILE_50", "REDUCE_PERCENTILE_05",
}
UNIMPLEMENTED_REDUCERS = {"REDUCE_STDDEV", "REDUCE_COUNT_TRUE", "REDUCE_COUNT_FALSE", "REDUCE_FRACTION_TRUE"}


# ---------------------------------------------------------------- time helpers

def format_time(epoch_seconds: float) -> str:
    moment = datetime.fromtimestamp(epoch_seconds, tz=timezone.utc)
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
        raise invalid_argument(f'Invalid value at \'{field}\' (type.googleapis.com/google.protobuf.Timestamp), '
                               f'Field \'{field}\', Invalid time format: "{text}"', field) from None
    if moment.tzinfo is None:
        raise invalid_argument(f"Invalid value at '{field}': the time zone offset is required", field)
    return moment.timestamp()


def parse_duration(text: str, field: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)s", text.strip())
    if not match:
        raise invalid_argument(f"Invalid value at '{field}' (type.googleapis.com/google.protobuf.Duration), "
                               f"Field '{field}', Illegal duration format; duration must end with 's'", field)
    return float(match.group(1))


# ---------------------------------------------------------------- points

@dataclass
class Point:
    end: float
    start: float
    value: object  # int | float | bool | Distribution


def raw_points(spec: SeriesSpec, now: float, history_minutes: int, cumulative_origin_minute: int,
               after: float = float("-inf"), until: float = float("inf")) -> list[Point]:
    """The points of one declared series that exist at `now` with an end time in (after, until], oldest first."""
    newest = int(now // 60) - 1  # the last minute that has fully ended
    first = newest - history_minutes + 1
    if after != float("-inf"):
        first = max(first, math.floor(after / 60))  # the minute ending at `after` is excluded below
    if until != float("inf"):
        newest = min(newest, math.ceil(until / 60) - 1)
    points: list[Point] = []
    for minute in range(first, newest + 1):
        start, end = minute * 60.0, minute * 60.0 + 60.0
        if not after < end <= until:
            continue
        value = spec.value_at_minute(minute)
        if value is None:
            continue
        if spec.kind == "GAUGE":
            start = end
        elif spec.kind == "CUMULATIVE":
            start = cumulative_origin_minute * 60.0
            total = spec.sum_of_minutes(cumulative_origin_minute, minute)
            value = float(total) if spec.value_type == "DOUBLE" else int(total)
        points.append(Point(end, start, value))
    return points


def value_json(value, value_type: str) -> dict:
    if value_type == "INT64":
        return {"int64Value": str(int(value))}
    if value_type == "DOUBLE":
        return {"doubleValue": float(value)}
    if value_type == "BOOL":
        return {"boolValue": bool(value)}
    return {"distributionValue": value.to_json()}


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
        raise invalid_argument("Field filter had an invalid value of \"\": a filter is required", "filter")
    try:
        predicate = parse_filter(filter_text)
    except FilterError as bad:
        raise invalid_argument(f'Field filter had an invalid value of "{filter_text}": {bad}', "filter") from None

    end_text = _single(params, "interval.endTime")
    if not end_text:
        raise invalid_argument("Field interval.endTime had an invalid value: the interval end time is required",
                               "interval.endTime")
    end = parse_time(end_text, "interval.end_time")
    start_text = _single(params, "interval.startTime")
    start = parse_time(start_text, "interval.start_time") if start_text else end
    if start > end:
        raise invalid_argument("Field interval.startTime had an invalid value: the start time must not be later "
                               "than the end time", "interval.startTime")

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
                f'"{value}"', field)

    period_text = _single(params, "aggregation.alignmentPeriod")
    period = parse_duration(period_text, "aggregation.alignment_period") if period_text else None
    if aligner != "ALIGN_NONE" and period is None:
        raise invalid_argument("The alignment period must be specified when a per-series aligner is used.",
                               "aggregation.alignmentPeriod")
    if period is not None and period < 60:
        raise invalid_argument("Field aggregation.alignmentPeriod had an invalid value: the alignment period must "
                               "be at least 60 seconds.", "aggregation.alignmentPeriod")
    if reducer != "REDUCE_NONE" and aligner == "ALIGN_NONE":
        raise invalid_argument("Field aggregation.perSeriesAligner had an invalid value of \"ALIGN_NONE\": a "
                               "per-series aligner must be specified when a cross-series reducer is used.",
                               "aggregation.perSeriesAligner")

    group_by = []
    for field in params.get("aggregation.groupByFields", []):
        match = _GROUP_FIELD.match(field.strip())
        if not match:
            raise invalid_argument(f'Field aggregation.groupByFields had an invalid value of "{field}": expected '
                                   f"metric.labels.NAME or resource.labels.NAME", "aggregation.groupByFields")
        group_by.append((match.group(1), match.group(2) or match.group(3)))

    page_size_text = _single(params, "pageSize")
    page_size = MAX_PAGE_SIZE
    if page_size_text:
        try:
            page_size = int(page_size_text)
        except ValueError:
            raise invalid_argument(f"Invalid value at 'page_size' (TYPE_INT32), \"{page_size_text}\"",
                                   "pageSize") from None
        if page_size <= 0:
            page_size = MAX_PAGE_SIZE
        page_size = min(page_size, MAX_PAGE_SIZE)

    if any(name.startswith("secondaryAggregation.") for name in params):
        raise ApiError(501, "secondaryAggregation is valid in Cloud Monitoring but not implemented by the emulator")

    view = _single(params, "view") or "FULL"
    if view not in {"FULL", "HEADERS"}:
        raise invalid_argument(f"Invalid value at 'view' (type.googleapis.com/google.monitoring.v3."
                               f"ListTimeSeriesRequest.TimeSeriesView), \"{view}\"", "view")

    identity = {k: v for k, v in params.items() if k not in {"pageToken", "pageSize"}}
    fingerprint = hashlib.sha256(json.dumps([project, identity], sort_keys=True).encode()).hexdigest()[:16]
    return Query(project, predicate, start, end, aligner, period, reducer, group_by, page_size,
                 _single(params, "pageToken") or "", view == "HEADERS", fingerprint)


# ---------------------------------------------------------------- alignment

_PERCENTILE = re.compile(r"_PERCENTILE_(\d\d)$")


def _aligner_error(aligner: str, spec: SeriesSpec) -> ApiError:
    return invalid_argument(
        f"The aligner {aligner} is not valid for metric {spec.metric_type} of kind {spec.kind} and value type "
        f"{spec.value_type}.", "aggregation.perSeriesAligner")


def aligned_types(aligner: str, spec: SeriesSpec) -> tuple[str, str]:
    """(metricKind, valueType) of the aligned series; raises 400 when the aligner does not apply."""
    kind, vtype = spec.kind, spec.value_type
    numeric = vtype in {"INT64", "DOUBLE"}
    ok = {
        "ALIGN_NONE": True,
        "ALIGN_DELTA": kind in {"DELTA", "CUMULATIVE"} and vtype != "BOOL",
        "ALIGN_RATE": kind in {"DELTA", "CUMULATIVE"} and numeric,
        "ALIGN_SUM": kind in {"GAUGE", "DELTA"} and vtype != "BOOL",
        "ALIGN_MEAN": kind in {"GAUGE", "DELTA"} and vtype != "BOOL",
        "ALIGN_MAX": kind in {"GAUGE", "DELTA"} and numeric,
        "ALIGN_MIN": kind in {"GAUGE", "DELTA"} and numeric,
        "ALIGN_COUNT": kind in {"GAUGE", "DELTA"} and vtype != "DISTRIBUTION",
        "ALIGN_COUNT_TRUE": kind == "GAUGE" and vtype == "BOOL",
        "ALIGN_COUNT_FALSE": kind == "GAUGE" and vtype == "BOOL",
        "ALIGN_FRACTION_TRUE": kind == "GAUGE" and vtype == "BOOL",
        "ALIGN_NEXT_OLDER": kind in {"GAUGE", "CUMULATIVE"},
    }.get(aligner)
    if ok is None:  # percentiles
        ok = kind in {"GAUGE", "DELTA"} and vtype == "DISTRIBUTION"
    if not ok:
        raise _aligner_error(aligner, spec)
    if aligner == "ALIGN_NONE":
        return kind, vtype
    if aligner == "ALIGN_DELTA":
        return "DELTA", vtype
    if aligner == "ALIGN_SUM":
        return ("DELTA" if kind == "DELTA" else "GAUGE"), vtype
    if aligner in {"ALIGN_MAX", "ALIGN_MIN", "ALIGN_NEXT_OLDER"}:
        return ("GAUGE" if kind != "CUMULATIVE" else kind), vtype
    if aligner in {"ALIGN_COUNT", "ALIGN_COUNT_TRUE", "ALIGN_COUNT_FALSE"}:
        return "GAUGE", "INT64"
    return "GAUGE", "DOUBLE"  # RATE, MEAN, FRACTION_TRUE, percentiles


def _sum(values: list, vtype: str):
    if vtype == "DISTRIBUTION":
        return dist.merge(values)
    return sum(values) if vtype == "INT64" else float(sum(values))


def _align_window(aligner: str, spec: SeriesSpec, window: list[Point], period: float):
    """One aligned value from the raw points whose end time is in the window (oldest first), or None."""
    values = [p.value for p in window]
    vtype = spec.value_type
    if aligner in {"ALIGN_DELTA", "ALIGN_RATE"}:
        if spec.kind == "CUMULATIVE":
            # The growth of the running total over the window is the sum of its minutes' increments.
            delta = spec.sum_of_minutes(int(window[0].end // 60) - 1, int(window[-1].end // 60) - 1)
        else:
            delta = _sum(values, vtype)
        if aligner == "ALIGN_DELTA":
            return delta
        return float(delta) / period
    if aligner == "ALIGN_SUM":
        return _sum(values, vtype)
    if aligner == "ALIGN_MEAN":
        if vtype == "DISTRIBUTION":
            merged = dist.merge(values)
            return merged.mean if merged.count else None
        return float(sum(values)) / len(values)
    if aligner == "ALIGN_MAX":
        return max(values)
    if aligner == "ALIGN_MIN":
        return min(values)
    if aligner == "ALIGN_COUNT":
        return len(values)
    if aligner == "ALIGN_COUNT_TRUE":
        return sum(1 for v in values if v)
    if aligner == "ALIGN_COUNT_FALSE":
        return sum(1 for v in values if not v)
    if aligner == "ALIGN_FRACTION_TRUE":
        return sum(1 for v in values if v) / len(values)
    if aligner == "ALIGN_NEXT_OLDER":
        return values[-1]
    percentile = _PERCENTILE.search(aligner)
    return dist.percentile(dist.merge(values), float(percentile.group(1)))


def window_ends(query: Query) -> list[float]:
    """End times of the alignment windows, newest first."""
    ends = []
    t = query.end
    while t > query.start or (not ends and t == query.start):
        ends.append(t)
        t -= query.period
    return ends


def align(query: Query, spec: SeriesSpec, points: list[Point]) -> list[Point]:
    """Aligned points, newest first, from raw points sorted oldest first. Each output point's `start` is its
    interval start."""
    out_kind, _ = aligned_types(query.aligner, spec)
    ends = [p.end for p in points]
    aligned = []
    for t in window_ends(query):
        lower = t - query.period
        window = points[bisect.bisect_right(ends, lower):bisect.bisect_right(ends, t)]
        if not window:
            continue
        value = _align_window(query.aligner, spec, window, query.period)
        if value is None:
            continue
        aligned.append(Point(t, lower if out_kind == "DELTA" else t, value))
    return aligned


# ---------------------------------------------------------------- reduction

def reduced_types(reducer: str, kind: str, vtype: str) -> tuple[str, str]:
    numeric = vtype in {"INT64", "DOUBLE"}
    if reducer == "REDUCE_SUM":
        ok = vtype != "BOOL"
        result = (kind if kind == "DELTA" else "GAUGE", vtype)
    elif reducer == "REDUCE_MEAN":
        ok = vtype != "BOOL"
        result = ("GAUGE", "DOUBLE")
    elif reducer in {"REDUCE_MIN", "REDUCE_MAX"}:
        ok = numeric
        result = ("GAUGE", vtype)
    elif reducer == "REDUCE_COUNT":
        ok = True
        result = ("GAUGE", "INT64")
    else:  # percentiles over distributions
        ok = vtype == "DISTRIBUTION"
        result = ("GAUGE", "DOUBLE")
    if not ok:
        raise invalid_argument(f"The reducer {reducer} is not valid for aligned value type {vtype}.",
                               "aggregation.crossSeriesReducer")
    return result


def reduce_values(reducer: str, values: list, vtype: str):
    if reducer == "REDUCE_SUM":
        return _sum(values, vtype)
    if reducer == "REDUCE_MEAN":
        if vtype == "DISTRIBUTION":
            merged = dist.merge(values)
            return merged.mean if merged.count else None
        return float(sum(values)) / len(values)
    if reducer == "REDUCE_MIN":
        return min(values)
    if reducer == "REDUCE_MAX":
        return max(values)
    if reducer == "REDUCE_COUNT":
        return len(values)
    percentile = _PERCENTILE.search(reducer)
    return dist.percentile(dist.merge(values), float(percentile.group(1)))


# ---------------------------------------------------------------- the list call

def _series_header(metric_type, metric_labels, resource_type, resource_labels, kind, vtype, unit) -> dict:
    header = {
        "metric": {"type": metric_type},
        "resource": {"type": resource_type},
        "metricKind": kind,
        "valueType": vtype,
    }
    if metric_labels:
        header["metric"]["labels"] = dict(metric_labels)
    if resource_labels:
        header["resource"]["labels"] = dict(resource_labels)
    if unit:
        header["unit"] = unit
    return header


def _point_json(point: Point, vtype: str) -> dict:
    return {
        "interval": {"startTime": format_time(point.start), "endTime": format_time(point.end)},
        "value": value_json(point.value, vtype),
    }


def _aligned_unit(aligner: str, unit: str) -> str:
    if aligner in {"ALIGN_COUNT", "ALIGN_COUNT_TRUE", "ALIGN_COUNT_FALSE"}:
        return "1"
    if aligner == "ALIGN_FRACTION_TRUE":
        return "10^2.%"
    if aligner == "ALIGN_RATE":
        return f"{unit}/s"
    return unit


def _encode_token(offset: int, fingerprint: str) -> str:
    return base64.urlsafe_b64encode(f"{offset}:{fingerprint}".encode()).decode().rstrip("=")


def _decode_token(token: str, fingerprint: str) -> int:
    try:
        offset_text, seen = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().split(":")
        offset = int(offset_text)
    except (ValueError, UnicodeDecodeError):
        offset, seen = -1, ""
    if offset < 0 or seen != fingerprint:
        raise invalid_argument("Field page_token had an invalid value: the page token does not belong to this "
                               "request.", "pageToken")
    return offset


def list_time_series(scenario: Scenario, project: str, params: dict[str, list[str]],
                     cumulative_origin_minute: int, now: float | None = None) -> dict:
    """The JSON body of a successful timeSeries.list, or raises ApiError."""
    query = parse_query(project, params)
    now = time.time() if now is None else now

    produced: list[tuple[dict, list[dict]]] = []
    matching = []
    for spec in scenario.series:
        identity = {
            "metric": {"type": spec.metric_type, "labels": spec.metric_labels},
            "resource": {"type": spec.resource_type, "labels": spec.resource_labels},
            "project": scenario.project_id,
        }
        if query.predicate(identity):
            matching.append(spec)

    if query.aligner == "ALIGN_NONE":
        for spec in matching:
            # An instant interval (no startTime) still returns the point that ends at endTime.
            after = query.start if query.start < query.end else query.end - 1e-6
            points = raw_points(spec, now, scenario.history_minutes, cumulative_origin_minute, after, query.end)
            if not points:
                continue
            header = _series_header(spec.metric_type, spec.metric_labels, spec.resource_type,
                                    spec.resource_labels, spec.kind, spec.value_type, spec.unit)
            produced.append((header, [_point_json(p, spec.value_type) for p in reversed(points)]))
    else:
        aligned_series = []
        earliest = window_ends(query)[-1] - query.period
        for spec in matching:
            points = raw_points(spec, now, scenario.history_minutes, cumulative_origin_minute, earliest, query.end)
            aligned = align(query, spec, points)
            if aligned:
                kind, vtype = aligned_types(query.aligner, spec)
                aligned_series.append((spec, kind, vtype, aligned))
        if query.reducer == "REDUCE_NONE":
            for spec, kind, vtype, aligned in aligned_series:
                header = _series_header(spec.metric_type, spec.metric_labels, spec.resource_type,
                                        spec.resource_labels, kind, vtype, _aligned_unit(query.aligner, spec.unit))
                produced.append((header, [_point_json(p, vtype) for p in aligned]))
        else:
            produced.extend(_reduce(query, aligned_series))

    produced.sort(key=lambda item: json.dumps(
        [item[0]["metric"], item[0]["resource"]], sort_keys=True))
    offset = _decode_token(query.page_token, query.fingerprint) if query.page_token else 0
    page_end = _page_end(produced, offset, query.page_size, query.headers_only)
    body: dict = {}
    if offset < page_end:
        body["timeSeries"] = []
        for header, points in produced[offset:page_end]:
            series = dict(header)
            if not query.headers_only:
                series["points"] = points
            body["timeSeries"].append(series)
    if page_end < len(produced):
        body["nextPageToken"] = _encode_token(page_end, query.fingerprint)
    return body


def _page_end(produced: list, offset: int, page_size: int, headers_only: bool) -> int:
    """Index after the last series of the page starting at `offset`.

    Google's pageSize counts series for view=HEADERS and points for view=FULL. A page holds whole series only
    (at least one), so each series appears on exactly one page.
    """
    if headers_only:
        return min(len(produced), offset + page_size)
    end, points = offset, 0
    while end < len(produced):
        size = len(produced[end][1])
        if end > offset and points + size > page_size:
            break
        points += size
        end += 1
    return end


def _reduce(query: Query, aligned_series: list) -> list[tuple[dict, list[dict]]]:
    groups: dict[str, dict] = {}
    for spec, kind, vtype, aligned in aligned_series:
        metric_labels = {k: spec.metric_labels[k] for s, k in query.group_by
                         if s == "metric" and k in spec.metric_labels}
        resource_labels = {k: spec.resource_labels[k] for s, k in query.group_by
                           if s == "resource" and k in spec.resource_labels}
        key = json.dumps([spec.metric_type, spec.resource_type, metric_labels, resource_labels], sort_keys=True)
        group = groups.setdefault(key, {
            "spec": spec, "metric_labels": metric_labels, "resource_labels": resource_labels,
            "kind": kind, "vtype": vtype, "by_time": {},
        })
        if (group["kind"], group["vtype"]) != (kind, vtype):
            raise invalid_argument("Cannot reduce time series with different value types together.",
                                   "aggregation.crossSeriesReducer")
        for point in aligned:
            group["by_time"].setdefault(point.end, []).append(point)

    out = []
    for group in groups.values():
        kind, vtype = reduced_types(query.reducer, group["kind"], group["vtype"])
        points = []
        for end in sorted(group["by_time"], reverse=True):
            members = group["by_time"][end]
            value = reduce_values(query.reducer, [p.value for p in members], group["vtype"])
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            points.append(_point_json(Point(end, members[0].start if kind == "DELTA" else end, value), vtype))
        if not points:
            continue
        spec = group["spec"]
        unit = "1" if query.reducer == "REDUCE_COUNT" else _aligned_unit(query.aligner, spec.unit)
        header = _series_header(spec.metric_type, group["metric_labels"], spec.resource_type,
                                group["resource_labels"], kind, vtype, unit)
        out.append((header, points))
    return out
