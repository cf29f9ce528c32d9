"""Alignment and reduction of timeSeries.list, and the raw points they start from.

Points are generated at request time from the wall clock: one point per whole minute (or per `every_minutes` for a
sampled series), the newest being the last minute that has ended, going back `history_minutes`. A DELTA point
covers [m, m+60s); a GAUGE point is sampled at m+60s; a CUMULATIVE point runs from a fixed origin
(history_minutes before the scenario was loaded) to m+60s.

Alignment windows end at interval.endTime and step back by the alignment period: (t-P, t]. A raw point belongs to
the window that contains its end time. Which aligner and reducer apply to which metric kind and value type follows
the Aggregation enum descriptions of Google's discovery document. A secondary aggregation runs the same steps over
the series the first one produced.
"""

from __future__ import annotations

import bisect
import json
import math
import re
import statistics
from dataclasses import dataclass, field, replace

from . import distribution as dist
from .errors import invalid_argument
from .monitoring_query import Aggregation
from .scenario import SeriesSpec

# ---------------------------------------------------------------- points


@dataclass
class Point:
    end: float
    start: float
    value: object  # int | float | bool | Distribution


def raw_points(
    spec: SeriesSpec,
    now: float,
    history_minutes: int,
    cumulative_origin_minute: int,
    after: float = float("-inf"),
    until: float = float("inf"),
) -> list[Point]:
    """The points of one declared series that exist at `now` with an end time in (after, until], oldest first."""
    newest = int(now // 60) - 1  # the last minute that has fully ended
    first = newest - (spec.history_minutes or history_minutes) + 1
    if after != float("-inf"):
        first = max(first, math.floor(after / 60))  # the minute ending at `after` is excluded below
    if until != float("inf"):
        newest = min(newest, math.ceil(until / 60) - 1)
    points: list[Point] = []
    for minute in range(first, newest + 1):
        start, end = minute * 60.0, minute * 60.0 + 60.0
        if not after < end <= until:
            continue
        value = spec.value_at_minute(minute) if spec.sampled_at(minute) else None
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


@dataclass
class Series:
    """A time series entering or leaving an aggregation; points oldest first."""

    metric_type: str
    resource_type: str
    metric_labels: dict[str, str]
    resource_labels: dict[str, str]
    kind: str
    value_type: str
    unit: str
    points: list[Point] = field(default_factory=list)
    source: SeriesSpec | None = None  # the scenario's series, for raw input (a CUMULATIVE delta reads it)

    @classmethod
    def raw(cls, spec: SeriesSpec, points: list[Point]) -> Series:
        return cls(
            spec.metric_type,
            spec.resource_type,
            spec.metric_labels,
            spec.resource_labels,
            spec.kind,
            spec.value_type,
            spec.unit,
            points,
            spec,
        )


def value_json(value, value_type: str) -> dict:
    if value_type == "INT64":
        return {"int64Value": str(int(value))}
    if value_type == "DOUBLE":
        value = float(value)
        # proto3's JSON mapping writes non-finite doubles as strings (ALIGN_PERCENT_CHANGE gives Infinity).
        return {
            "doubleValue": value
            if math.isfinite(value)
            else {math.inf: "Infinity", -math.inf: "-Infinity"}.get(value, "NaN")
        }
    if value_type == "BOOL":
        return {"boolValue": bool(value)}
    return {"distributionValue": value.to_json()}


# ---------------------------------------------------------------- alignment

_PERCENTILE = re.compile(r"_PERCENTILE_(\d\d)$")
# ALIGN_PERCENT_CHANGE compares 10-minute moving means (the Aligner enum description).
PERCENT_CHANGE_SMOOTHING = 600.0


def aligned_types(aligner: str, kind: str, vtype: str, metric_type: str) -> tuple[str, str]:
    """(metricKind, valueType) of the aligned series; raises 400 when the aligner does not apply."""
    numeric = vtype in {"INT64", "DOUBLE"}
    ok = {
        "ALIGN_NONE": True,
        "ALIGN_DELTA": kind in {"DELTA", "CUMULATIVE"} and vtype != "BOOL",
        "ALIGN_RATE": kind in {"DELTA", "CUMULATIVE"} and numeric,
        "ALIGN_INTERPOLATE": kind == "GAUGE" and numeric,
        "ALIGN_SUM": kind in {"GAUGE", "DELTA"} and vtype != "BOOL",
        "ALIGN_MEAN": kind in {"GAUGE", "DELTA"} and numeric,
        "ALIGN_STDDEV": kind in {"GAUGE", "DELTA"} and numeric,
        "ALIGN_MAX": kind in {"GAUGE", "DELTA"} and numeric,
        "ALIGN_MIN": kind in {"GAUGE", "DELTA"} and numeric,
        "ALIGN_COUNT": kind in {"GAUGE", "DELTA"} and vtype != "DISTRIBUTION",
        "ALIGN_COUNT_TRUE": kind == "GAUGE" and vtype == "BOOL",
        "ALIGN_COUNT_FALSE": kind == "GAUGE" and vtype == "BOOL",
        "ALIGN_FRACTION_TRUE": kind == "GAUGE" and vtype == "BOOL",
        "ALIGN_NEXT_OLDER": kind == "GAUGE",
        "ALIGN_PERCENT_CHANGE": kind in {"GAUGE", "DELTA"} and numeric,
    }.get(aligner)
    if ok is None:  # percentiles
        ok = kind in {"GAUGE", "DELTA"} and vtype == "DISTRIBUTION"
    if not ok:
        raise invalid_argument(
            f"The aligner {aligner} is not valid for metric {metric_type} of kind {kind} and value type {vtype}.",
            "aggregation.perSeriesAligner",
        )
    if aligner == "ALIGN_NONE":
        return kind, vtype
    if aligner == "ALIGN_DELTA":
        return "DELTA", vtype
    if aligner == "ALIGN_SUM":
        return ("DELTA" if kind == "DELTA" else "GAUGE"), vtype
    if aligner in {"ALIGN_MAX", "ALIGN_MIN", "ALIGN_NEXT_OLDER", "ALIGN_INTERPOLATE"}:
        return "GAUGE", vtype
    if aligner in {"ALIGN_COUNT", "ALIGN_COUNT_TRUE", "ALIGN_COUNT_FALSE"}:
        return "GAUGE", "INT64"
    return "GAUGE", "DOUBLE"  # RATE, MEAN, STDDEV, FRACTION_TRUE, PERCENT_CHANGE, percentiles


def aligned_unit(aligner: str, unit: str) -> str:
    if aligner in {"ALIGN_COUNT", "ALIGN_COUNT_TRUE", "ALIGN_COUNT_FALSE"}:
        return "1"
    if aligner in {"ALIGN_FRACTION_TRUE", "ALIGN_PERCENT_CHANGE"}:
        return "10^2.%"
    if aligner == "ALIGN_RATE":
        return f"{unit}/s"
    return unit


def _sum(values: list, vtype: str):
    if vtype == "DISTRIBUTION":
        return dist.merge(values)
    return sum(values) if vtype == "INT64" else float(sum(values))


# What ALIGN_<OP> does to a window's values and REDUCE_<OP> to a group's, for numbers and booleans.
_SCALAR_OPS = {
    "MEAN": lambda values: float(sum(values)) / len(values),
    "STDDEV": lambda values: statistics.pstdev(float(v) for v in values),
    "MAX": max,
    "MIN": min,
    "COUNT": len,
    "COUNT_TRUE": lambda values: sum(1 for v in values if v),
    "COUNT_FALSE": lambda values: sum(1 for v in values if not v),
    "FRACTION_TRUE": lambda values: sum(1 for v in values if v) / len(values),
}


def _align_window(aligner: str, series: Series, window: list[Point], period: float):
    """One aligned value from the points whose end time is in the window (oldest first)."""
    values = [p.value for p in window]
    vtype = series.value_type
    if aligner in {"ALIGN_DELTA", "ALIGN_RATE"}:
        if series.kind == "CUMULATIVE":
            # The growth of the running total over the window is the sum of its minutes' increments.
            delta = series.source.sum_of_minutes(int(window[0].end // 60) - 1, int(window[-1].end // 60) - 1)
        else:
            delta = _sum(values, vtype)
        if aligner == "ALIGN_DELTA":
            return delta
        return float(delta) / period
    if aligner == "ALIGN_SUM":
        return _sum(values, vtype)
    scalar = _SCALAR_OPS.get(aligner.removeprefix("ALIGN_"))
    if scalar is not None:
        return scalar(values)
    if aligner == "ALIGN_NEXT_OLDER":
        return values[-1]
    percentile = _PERCENTILE.search(aligner)
    return dist.percentile(dist.merge(values), float(percentile.group(1)))


def _interpolate(points: list[Point], ends: list[float], t: float, lower: float, vtype: str):
    """ALIGN_INTERPOLATE: the value at t, linear between the points either side of it (the newest one in the
    window alone when nothing follows)."""
    index = bisect.bisect_right(ends, t)
    if index == 0 or ends[index - 1] <= lower:
        return None
    before = points[index - 1]
    value = before.value
    if before.end < t and index < len(points):
        after = points[index]
        value = before.value + (after.value - before.value) * (t - before.end) / (after.end - before.end)
    return round(value) if vtype == "INT64" else float(value)


def _moving_mean(points: list[Point], ends: list[float], t: float) -> float | None:
    values = [
        float(p.value)
        for p in points[bisect.bisect_right(ends, t - PERCENT_CHANGE_SMOOTHING) : bisect.bisect_right(ends, t)]
        if p.value >= 0
    ]
    return sum(values) / len(values) if values else None


def _percent_change(points: list[Point], ends: list[float], t: float, period: float) -> float | None:
    """ALIGN_PERCENT_CHANGE: ((current - previous) / previous) * 100 over 10-minute moving means, previous one
    alignment period earlier; 0 when both are 0, infinity when only previous is."""
    current, previous = _moving_mean(points, ends, t), _moving_mean(points, ends, t - period)
    if current is None or previous is None:
        return None
    if previous == 0:
        return 0.0 if current == 0 else math.inf
    return (current - previous) / previous * 100


def window_ends(start: float, end: float, period: float) -> list[float]:
    """End times of the alignment windows, newest first."""
    ends = []
    t = end
    while t > start or (not ends and t == start):
        ends.append(t)
        t -= period
    return ends


def reach(aggregation: Aggregation, start: float, end: float) -> tuple[float, float]:
    """(after, until]: the raw point end times the aggregation reads for windows ending in [start, end]."""
    after = window_ends(start, end, aggregation.period)[-1] - aggregation.period
    until = end
    if aggregation.aligner == "ALIGN_PERCENT_CHANGE":
        after -= PERCENT_CHANGE_SMOOTHING
    if aggregation.aligner == "ALIGN_INTERPOLATE":
        until += aggregation.period  # the point after the last window's end
    return after, until


def align(aggregation: Aggregation, series: Series, start: float, end: float) -> Series:
    """The series aligned by the aggregation's aligner over windows ending in [start, end]."""
    aligner, period = aggregation.aligner, aggregation.period
    out_kind, out_type = aligned_types(aligner, series.kind, series.value_type, series.metric_type)
    points = series.points
    ends = [p.end for p in points]
    aligned = []
    for t in reversed(window_ends(start, end, period)):
        lower = t - period
        if aligner == "ALIGN_INTERPOLATE":
            value = _interpolate(points, ends, t, lower, series.value_type)
        elif aligner == "ALIGN_PERCENT_CHANGE":
            value = _percent_change(points, ends, t, period)
        else:
            window = points[bisect.bisect_right(ends, lower) : bisect.bisect_right(ends, t)]
            value = _align_window(aligner, series, window, period) if window else None
        if value is not None:
            aligned.append(Point(t, lower if out_kind == "DELTA" else t, value))
    unit = aligned_unit(aligner, series.unit)
    return replace(series, kind=out_kind, value_type=out_type, unit=unit, points=aligned, source=None)


# ---------------------------------------------------------------- reduction


def reduced_types(reducer: str, kind: str, vtype: str) -> tuple[str, str]:
    numeric = vtype in {"INT64", "DOUBLE"}
    if reducer == "REDUCE_SUM":
        ok = vtype != "BOOL"
        result = (kind if kind == "DELTA" else "GAUGE", vtype)
    elif reducer in {"REDUCE_MEAN", "REDUCE_STDDEV"}:
        ok = vtype != "BOOL"
        result = ("GAUGE", "DOUBLE")
    elif reducer in {"REDUCE_COUNT_TRUE", "REDUCE_COUNT_FALSE", "REDUCE_FRACTION_TRUE"}:
        ok = vtype == "BOOL"
        result = ("GAUGE", "DOUBLE" if reducer == "REDUCE_FRACTION_TRUE" else "INT64")
    elif reducer in {"REDUCE_MIN", "REDUCE_MAX"}:
        ok = numeric
        result = ("GAUGE", vtype)
    elif reducer == "REDUCE_COUNT":
        ok = True
        result = ("GAUGE", "INT64")
    else:  # percentiles, of numbers or of distributions
        ok = vtype != "BOOL"
        result = ("GAUGE", "DOUBLE")
    if not ok:
        raise invalid_argument(
            f"The reducer {reducer} is not valid for aligned value type {vtype}.", "aggregation.crossSeriesReducer"
        )
    return result


def reduce_values(reducer: str, values: list, vtype: str):
    if reducer == "REDUCE_SUM":
        return _sum(values, vtype)
    if vtype == "DISTRIBUTION" and reducer in {"REDUCE_MEAN", "REDUCE_STDDEV"}:
        merged = dist.merge(values)
        if not merged.count:
            return None
        return merged.mean if reducer == "REDUCE_MEAN" else math.sqrt(merged.sum_of_squared_deviation / merged.count)
    scalar = _SCALAR_OPS.get(reducer.removeprefix("REDUCE_"))
    if scalar is not None:
        return scalar(values)
    rank = float(_PERCENTILE.search(reducer).group(1))
    if vtype == "DISTRIBUTION":
        return dist.percentile(dist.merge(values), rank)
    return _percentile_of_numbers(sorted(float(v) for v in values), rank)


def _percentile_of_numbers(ordered: list[float], rank: float) -> float:
    """Linear interpolation between the closest ranks (Google does not publish its method for numbers)."""
    position = rank / 100 * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def _reduce(aggregation: Aggregation, aligned: list[Series]) -> list[Series]:
    """One series per group of the aggregation's groupByFields, its points reduced per end time."""
    groups: dict[str, list[Series]] = {}
    for series in aligned:
        metric_labels = {
            k: series.metric_labels[k] for s, k in aggregation.group_by if s == "metric" and k in series.metric_labels
        }
        resource_labels = {
            k: series.resource_labels[k]
            for s, k in aggregation.group_by
            if s == "resource" and k in series.resource_labels
        }
        key = json.dumps([series.metric_type, series.resource_type, metric_labels, resource_labels], sort_keys=True)
        members = groups.setdefault(key, [])
        if members and (members[0].kind, members[0].value_type) != (series.kind, series.value_type):
            raise invalid_argument(
                "Cannot reduce time series with different value types together.", "aggregation.crossSeriesReducer"
            )
        members.append(replace(series, metric_labels=metric_labels, resource_labels=resource_labels))
    out = []
    for members in groups.values():
        first = members[0]
        kind, vtype = reduced_types(aggregation.reducer, first.kind, first.value_type)
        by_time: dict[float, list[Point]] = {}
        for series in members:
            for point in series.points:
                by_time.setdefault(point.end, []).append(point)
        points = []
        for end in sorted(by_time):
            group = by_time[end]
            value = reduce_values(aggregation.reducer, [p.value for p in group], first.value_type)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            points.append(Point(end, group[0].start if kind == "DELTA" else end, value))
        if points:
            unit = "1" if aggregation.reducer == "REDUCE_COUNT" else first.unit
            out.append(replace(first, kind=kind, value_type=vtype, unit=unit, points=points))
    return out


def aggregate(aggregation: Aggregation, inputs: list[Series], start: float, end: float) -> list[Series]:
    """What one Aggregation makes of the series: aligned, then reduced when it has a reducer."""
    aligned = [s for s in (align(aggregation, series, start, end) for series in inputs) if s.points]
    if aggregation.reducer == "REDUCE_NONE":
        return aligned
    return _reduce(aggregation, aligned)
