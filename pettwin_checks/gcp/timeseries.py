"""Cloud Monitoring v3 timeSeries.list: request building and response parsing. Pure functions, no I/O.

A query names one metric type (the API requires exactly one), optional extra filter terms, and an
aggregation: a per-series aligner over `alignment_period`, a cross-series reducer, and the labels to group
by (the labels the check tags with), so Google returns one series per tag set instead of one per replica,
method or token bucket.

Responses are parsed defensively: a series or point that does not have the documented shape is skipped with a
problem string, never guessed at.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .distribution import Distribution, parse_distribution

_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def format_rfc3339(epoch_seconds: float) -> str:
    moment = datetime.fromtimestamp(epoch_seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{moment.microsecond:06d}Z" if moment.microsecond else "Z")


_FRACTION = re.compile(r"\.(\d+)")


def parse_rfc3339(text: str) -> float:
    """Epoch seconds from an RFC 3339 timestamp (Google sends up to nanoseconds). Raises ValueError."""
    if not isinstance(text, str):
        raise ValueError("timestamp is not a string")  # noqa: TRY004 - callers treat any unreadable timestamp alike
    normalized = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text.strip(), count=1)
    moment = datetime.fromisoformat(normalized.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("timestamp has no time zone")
    return moment.timestamp()


def quote(value: str) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def label_field(scope: str, name: str) -> str:
    """`metric.label.NAME` / `resource.label.NAME`, quoted when NAME is not a plain identifier."""
    if scope not in {"metric", "resource"}:
        raise ValueError("scope is metric or resource")
    return f"{scope}.label.{name}" if _LABEL_NAME.match(name) else f"{scope}.label.{quote(name)}"


def one_of(scope: str, name: str, values) -> str:
    """A filter term restricting a label to some values."""
    values = sorted(set(values))
    if len(values) == 1:
        return f"{label_field(scope, name)} = {quote(values[0])}"
    return f"{label_field(scope, name)} = one_of({', '.join(quote(v) for v in values)})"


@dataclass(frozen=True)
class Aggregation:
    aligner: str = "ALIGN_NONE"
    reducer: str = "REDUCE_NONE"
    group_by: tuple[str, ...] = ()  # "metric.label.x" / "resource.label.y"
    period_seconds: int | None = None


@dataclass(frozen=True)
class TimeSeriesQuery:
    metric_type: str
    aggregation: Aggregation = Aggregation()
    resource_type: str | None = None
    extra_filter: tuple[str, ...] = ()  # terms ANDed to the metric (and resource) type

    @property
    def filter(self) -> str:
        terms = [f"metric.type = {quote(self.metric_type)}"]
        if self.resource_type:
            terms.append(f"resource.type = {quote(self.resource_type)}")
        terms.extend(self.extra_filter)
        return " AND ".join(terms)

    def params(
        self,
        start: float,
        end: float,
        page_size: int | None = None,
        page_token: str | None = None,
        period_seconds: int | None = None,
    ) -> list[tuple[str, str]]:
        """Query parameters of timeSeries.list for the interval (start, end]; a list, as groupByFields repeats."""
        params = [
            ("filter", self.filter),
            ("interval.startTime", format_rfc3339(start)),
            ("interval.endTime", format_rfc3339(end)),
        ]
        aggregation = self.aggregation
        period = period_seconds or aggregation.period_seconds
        if aggregation.aligner != "ALIGN_NONE":
            params.append(("aggregation.alignmentPeriod", f"{int(period)}s"))
            params.append(("aggregation.perSeriesAligner", aggregation.aligner))
        if aggregation.reducer != "REDUCE_NONE":
            params.append(("aggregation.crossSeriesReducer", aggregation.reducer))
            params.extend(("aggregation.groupByFields", field_name) for field_name in aggregation.group_by)
        if page_size:
            params.append(("pageSize", str(int(page_size))))
        if page_token:
            params.append(("pageToken", page_token))
        return params


@dataclass(frozen=True)
class Point:
    start: float
    end: float
    value: int | float | bool | Distribution


@dataclass
class TimeSeries:
    metric_type: str
    metric_labels: dict[str, str]
    resource_type: str
    resource_labels: dict[str, str]
    metric_kind: str
    value_type: str
    points: list[Point] = field(default_factory=list)  # newest first, as Google returns them

    @property
    def identity(self) -> tuple:
        return (
            self.metric_type,
            tuple(sorted(self.metric_labels.items())),
            self.resource_type,
            tuple(sorted(self.resource_labels.items())),
        )

    def label(self, name: str) -> str | None:
        """A label by name, metric labels first (grouped-by labels of either scope end up here)."""
        if name in self.metric_labels:
            return self.metric_labels[name]
        return self.resource_labels.get(name)

    def newest(self) -> Point | None:
        return max(self.points, key=lambda p: p.end) if self.points else None


class MalformedPage(ValueError):
    """The page as a whole is unusable (not an object, timeSeries not a list, bad nextPageToken)."""


def _labels(raw, where: str, problems: list[str]) -> dict[str, str] | None:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(k, str) for k in raw):
        problems.append(f"{where}: labels are not a string map")
        return None
    return {k: str(v) for k, v in raw.items() if isinstance(v, (str, int, float, bool))}


def parse_value(value, value_type: str):
    """The Python value of a TypedValue JSON object. Raises ValueError (or MalformedDistribution)."""
    if not isinstance(value, dict) or len(value) != 1:
        raise ValueError("value must hold exactly one typed field")
    ((key, raw),) = value.items()
    if key == "int64Value":
        if isinstance(raw, (bool, float)):
            raise ValueError("int64Value is not an integer")
        return int(raw)  # a string on the wire; ValueError when it is not an integer
    if key == "doubleValue":
        if isinstance(raw, bool):
            raise ValueError("doubleValue is a boolean")
        number = float(raw)  # proto3 JSON may send "NaN"/"Infinity" strings
        if not math.isfinite(number):
            raise ValueError("doubleValue is not finite")
        return number
    if key == "boolValue":
        if not isinstance(raw, bool):
            raise ValueError("boolValue is not a boolean")
        return raw
    if key == "distributionValue":
        return parse_distribution(raw)
    raise ValueError(f"unsupported value field {key}")


def parse_series(raw, index: int, problems: list[str]) -> TimeSeries | None:
    where = f"timeSeries[{index}]"
    if not isinstance(raw, dict):
        problems.append(f"{where}: not an object")
        return None
    metric, resource = raw.get("metric"), raw.get("resource")
    if not isinstance(metric, dict) or not isinstance(metric.get("type"), str):
        problems.append(f"{where}: no metric.type")
        return None
    if resource is not None and not isinstance(resource, dict):
        problems.append(f"{where}: resource is not an object")
        return None
    resource = resource or {}
    metric_labels = _labels(metric.get("labels"), where, problems)
    resource_labels = _labels(resource.get("labels"), where, problems)
    if metric_labels is None or resource_labels is None:
        return None
    series = TimeSeries(
        metric["type"],
        metric_labels,
        str(resource.get("type", "")),
        resource_labels,
        str(raw.get("metricKind", "")),
        str(raw.get("valueType", "")),
    )
    points = raw.get("points", [])
    if not isinstance(points, list):
        problems.append(f"{where}: points is not a list")
        return None
    for number, point in enumerate(points):
        try:
            interval = point["interval"]
            end = parse_rfc3339(interval["endTime"])
            start = parse_rfc3339(interval["startTime"]) if interval.get("startTime") else end
            value = parse_value(point["value"], series.value_type)
        except (KeyError, TypeError, ValueError, OverflowError) as bad:
            problems.append(f"{where}.points[{number}]: {type(bad).__name__}: {str(bad)[:80]}")
            continue
        series.points.append(Point(start, end, value))
    return series


def parse_page(body) -> tuple[list[TimeSeries], str, list[str]]:
    """(series, next page token or "", problems) of one ListTimeSeriesResponse. Raises MalformedPage."""
    if not isinstance(body, dict):
        raise MalformedPage("the answer is not a JSON object")
    raw_series = body.get("timeSeries", [])
    if not isinstance(raw_series, list):
        raise MalformedPage("timeSeries is not a list")
    token = body.get("nextPageToken", "")
    if not isinstance(token, str):
        raise MalformedPage("nextPageToken is not a string")
    problems: list[str] = []
    execution_errors = body.get("executionErrors") or []
    for failure in execution_errors if isinstance(execution_errors, list) else [execution_errors]:
        if isinstance(failure, dict):
            problems.append(f"execution error: {str(failure.get('message', ''))[:120]}")
    series = [s for i, raw in enumerate(raw_series) if (s := parse_series(raw, i, problems)) is not None]
    return series, token, problems


def merge_pages(pages: list[list[TimeSeries]]) -> list[TimeSeries]:
    """One TimeSeries per identity: with view FULL, pageSize counts points, so a series may span pages."""
    merged: dict[tuple, TimeSeries] = {}
    for page in pages:
        for series in page:
            existing = merged.get(series.identity)
            if existing is None:
                merged[series.identity] = series
            else:
                known = {(p.start, p.end) for p in existing.points}
                existing.points.extend(p for p in series.points if (p.start, p.end) not in known)
    return list(merged.values())
