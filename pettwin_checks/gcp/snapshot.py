"""The newest point of each series as JSON, for a persistent cache: series Google writes about once a day
(serviceruntime quota limits) are read over a long window now and then, and their last known value kept between
reads, across agent restarts. Pure; numbers only (distributions are never sampled that rarely)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from .timeseries import Point, TimeSeries


@dataclass(frozen=True)
class Snapshot:
    fetched_at: float  # wall-clock time of the read the series come from
    series: list[TimeSeries]  # one point each: its newest

    def age(self, now: float) -> float:
        return now - self.fetched_at

    def dumps(self) -> str:
        rows = []
        for series in self.series:
            newest = series.newest()
            if newest is None or isinstance(newest.value, bool) or not isinstance(newest.value, (int, float)):
                continue
            rows.append(
                [
                    series.metric_type,
                    series.metric_labels,
                    series.resource_type,
                    series.resource_labels,
                    series.metric_kind,
                    series.value_type,
                    newest.start,
                    newest.end,
                    newest.value,
                ]
            )
        return json.dumps({"fetched_at": self.fetched_at, "series": rows}, sort_keys=True)

    @classmethod
    def loads(cls, text: str) -> Snapshot | None:
        """None for an empty or unreadable cache entry (it is then read anew)."""
        if not text:
            return None
        try:
            raw = json.loads(text)
            series = []
            for metric, metric_labels, resource, resource_labels, kind, value_type, start, end, value in raw["series"]:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise TypeError("not a number")
                series.append(
                    TimeSeries(
                        metric,
                        dict(metric_labels),
                        resource,
                        dict(resource_labels),
                        kind,
                        value_type,
                        [Point(float(start), float(end), value)],
                    )
                )
            return cls(float(raw["fetched_at"]), series)
        except (ValueError, TypeError, KeyError):
            return None
