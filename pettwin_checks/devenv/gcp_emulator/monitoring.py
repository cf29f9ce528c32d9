"""Cloud Monitoring API v3 projects.timeSeries.list over a scenario's series: which series match, their JSON
shape, and pages (see aggregation.py for the values, monitoring_query.py for the request)."""

from __future__ import annotations

import base64
import json
import math
import time

from .aggregation import (
    Point,
    align,
    aligned_types,
    raw_points,
    reduce_values,
    reduced_types,
    value_json,
    window_ends,
)
from .errors import invalid_argument
from .monitoring_query import Query, format_time, parse_query
from .scenario import Scenario

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
        raise invalid_argument(
            "Field page_token had an invalid value: the page token does not belong to this request.", "pageToken"
        )
    return offset


def list_time_series(
    scenario: Scenario,
    project: str,
    params: dict[str, list[str]],
    cumulative_origin_minute: int,
    now: float | None = None,
) -> dict:
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
            header = _series_header(
                spec.metric_type,
                spec.metric_labels,
                spec.resource_type,
                spec.resource_labels,
                spec.kind,
                spec.value_type,
                spec.unit,
            )
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
                header = _series_header(
                    spec.metric_type,
                    spec.metric_labels,
                    spec.resource_type,
                    spec.resource_labels,
                    kind,
                    vtype,
                    _aligned_unit(query.aligner, spec.unit),
                )
                produced.append((header, [_point_json(p, vtype) for p in aligned]))
        else:
            produced.extend(_reduce(query, aligned_series))

    produced.sort(key=lambda item: json.dumps([item[0]["metric"], item[0]["resource"]], sort_keys=True))
    start = _decode_token(query.page_token, query.fingerprint) if query.page_token else 0
    page, next_start = _page(produced, start, query.page_size, query.headers_only)
    body: dict = {"timeSeries": page} if page else {}
    if next_start is not None:
        body["nextPageToken"] = _encode_token(next_start, query.fingerprint)
    return body


def _page(produced: list, start: int, page_size: int, headers_only: bool) -> tuple[list[dict], int | None]:
    """The series of one page and where the next page starts (None: this is the last).

    Google's pageSize counts series for view=HEADERS and points for view=FULL; with FULL a page ends after
    `page_size` points, so a series can continue on the next page under the same metric and resource.
    `start` counts series (HEADERS) or points across all series in order (FULL).
    """
    if headers_only:
        end = min(len(produced), start + page_size)
        return [dict(header) for header, _ in produced[start:end]], end if end < len(produced) else None
    total = sum(len(points) for _, points in produced)
    end = min(total, start + page_size)
    page, base = [], 0
    for header, points in produced:
        low, high = max(start, base), min(end, base + len(points))
        if low < high:
            page.append({**header, "points": points[low - base : high - base]})
        base += len(points)
    return page, end if end < total else None


def _reduce(query: Query, aligned_series: list) -> list[tuple[dict, list[dict]]]:
    groups: dict[str, dict] = {}
    for spec, kind, vtype, aligned in aligned_series:
        metric_labels = {
            k: spec.metric_labels[k] for s, k in query.group_by if s == "metric" and k in spec.metric_labels
        }
        resource_labels = {
            k: spec.resource_labels[k] for s, k in query.group_by if s == "resource" and k in spec.resource_labels
        }
        key = json.dumps([spec.metric_type, spec.resource_type, metric_labels, resource_labels], sort_keys=True)
        group = groups.setdefault(
            key,
            {
                "spec": spec,
                "metric_labels": metric_labels,
                "resource_labels": resource_labels,
                "kind": kind,
                "vtype": vtype,
                "by_time": {},
            },
        )
        if (group["kind"], group["vtype"]) != (kind, vtype):
            raise invalid_argument(
                "Cannot reduce time series with different value types together.", "aggregation.crossSeriesReducer"
            )
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
        header = _series_header(
            spec.metric_type, group["metric_labels"], spec.resource_type, group["resource_labels"], kind, vtype, unit
        )
        out.append((header, points))
    return out
