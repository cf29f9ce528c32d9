"""Cloud Monitoring API v3 projects.timeSeries.list over a scenario's series: which series match, their JSON
shape, and pages (see aggregation.py for the values, monitoring_query.py for the request)."""

from __future__ import annotations

import base64
import json
import time

from .aggregation import Point, Series, aggregate, aligned_types, raw_points, reach, reduced_types, value_json
from .descriptors import for_scenario
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


def _check_aggregations(query: Query) -> None:
    """Google checks each aggregation against the metric's descriptor, whether or not any series match."""
    kind, vtype = query.descriptor.kind, query.descriptor.value_type
    for aggregation in (query.aggregation, query.secondary):
        if aggregation is None:
            continue
        kind, vtype = aligned_types(aggregation.aligner, kind, vtype, query.descriptor.type)
        if aggregation.reducer != "REDUCE_NONE":
            kind, vtype = reduced_types(aggregation.reducer, kind, vtype)


def list_time_series(
    scenario: Scenario,
    project: str,
    params: dict[str, list[str]],
    cumulative_origin_minute: int,
    now: float | None = None,
) -> dict:
    """The JSON body of a successful timeSeries.list, or raises ApiError."""
    query = parse_query(project, params, for_scenario(scenario.series))
    now = time.time() if now is None else now
    _check_aggregations(query)
    matching = [
        spec
        for spec in scenario.series
        if query.predicate(
            {
                "metric": {"type": spec.metric_type, "labels": spec.metric_labels},
                "resource": {"type": spec.resource_type, "labels": spec.resource_labels},
                "project": scenario.project_id,
            }
        )
    ]
    if query.aggregation.aligner == "ALIGN_NONE":
        # An instant interval (no startTime) still returns the point that ends at endTime.
        after = query.start if query.start < query.end else query.end - 1e-6
        results = [
            Series.raw(
                spec, raw_points(spec, now, scenario.history_minutes, cumulative_origin_minute, after, query.end)
            )
            for spec in matching
        ]
        results = [series for series in results if series.points]
    else:
        after, until = reach(query.aggregation, query.start, query.end)
        inputs = [
            Series.raw(spec, raw_points(spec, now, scenario.history_minutes, cumulative_origin_minute, after, until))
            for spec in matching
        ]
        results = aggregate(query.aggregation, inputs, query.start, query.end)
        if query.secondary is not None:
            results = aggregate(query.secondary, results, query.start, query.end)

    produced = [
        (
            _series_header(
                series.metric_type,
                series.metric_labels,
                series.resource_type,
                series.resource_labels,
                series.kind,
                series.value_type,
                series.unit,
            ),
            [_point_json(p, series.value_type) for p in reversed(series.points)],
        )
        for series in results
    ]
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
