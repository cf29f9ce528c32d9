"""Alignment and reduction of timeSeries.list, and the raw points they start from.

Points are generated at request time from the wall clock: one point per whole minute (or per `every_minutes` for a
sampled series), the newest being the last minute that has ended, going back `history_minutes`. A DELTA point
covers [m, m+60s); a GAUGE point is sampled at m+60s; a CUMULATIVE point runs from a fixed origin
(history_minutes before the scenario was loaded) to m+60s.

Alignment windows end at interval.endTime and step back by the alignment period: (t-P, t]. A raw point belongs to
the window that contains its end time. Which aligner and reducer apply to which metric kind and value type follows
the Aggregation enum descriptions of Google's discovery document.
"""

from __future__ import annotations

import bisect
import math
import re
import statistics
from dataclasses import dataclass

from . import distribution as dist
from .errors import ApiError, invalid_argument
from .monitoring_query import Query
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


def value_json(value, value_type: str) -> dict:
    if value_type == "INT64":
        return {"int64Value": str(int(value))}
    if value_type == "DOUBLE":
        return {"doubleValue": float(value)}
    if value_type == "BOOL":
        return {"boolValue": bool(value)}
    return {"distributionValue": value.to_json()}


# ---------------------------------------------------------------- alignment

_PERCENTILE = re.compile(r"_PERCENTILE_(\d\d)$")


def _aligner_error(aligner: str, spec: SeriesSpec) -> ApiError:
    return invalid_argument(
        f"The aligner {aligner} is not valid for metric {spec.metric_type} of kind {spec.kind} and value type "
        f"{spec.value_type}.",
        "aggregation.perSeriesAligner",
    )


def aligned_types(aligner: str, spec: SeriesSpec) -> tuple[str, str]:
    """(metricKind, valueType) of the aligned series; raises 400 when the aligner does not apply."""
    kind, vtype = spec.kind, spec.value_type
    numeric = vtype in {"INT64", "DOUBLE"}
    ok = {
        "ALIGN_NONE": True,
        "ALIGN_DELTA": kind in {"DELTA", "CUMULATIVE"} and vtype != "BOOL",
        "ALIGN_RATE": kind in {"DELTA", "CUMULATIVE"} and numeric,
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
        return "GAUGE", vtype
    if aligner in {"ALIGN_COUNT", "ALIGN_COUNT_TRUE", "ALIGN_COUNT_FALSE"}:
        return "GAUGE", "INT64"
    return "GAUGE", "DOUBLE"  # RATE, MEAN, STDDEV, FRACTION_TRUE, percentiles


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
    scalar = _SCALAR_OPS.get(aligner.removeprefix("ALIGN_"))
    if scalar is not None:
        return scalar(values)
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
        window = points[bisect.bisect_right(ends, lower) : bisect.bisect_right(ends, t)]
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
