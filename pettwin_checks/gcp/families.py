"""Cloud Monitoring metric families: what a check reads and what it submits. Pure: no I/O.

A Family is one timeSeries.list (one metric type, aggregated on Google's side by the labels the check tags with)
and the function that turns its series into Samples; or, with `inputs` instead of a query, a family derived from
other families' series (quota headroom from usage and limit; spend from token counts). A check is a table of
families; gcp.collection runs any such table.

Modes say which interval a family reads and which of its points count:
- "window": DELTA data over gap-free windows since the previous run (kept per project and family in the
  persistent cache), so every settled minute is counted once; counts are summed, distributions merged.
- "span": the last `gauge_lookback` of settled data, every point: counts summed, distributions merged
  (percentiles over a stable span, whatever the run interval).
- "newest": the last `gauge_lookback`, the newest point of each series (gauges: replicas, instances, limits).
- "peak": the last `gauge_lookback`, the largest point of each series (the busiest minute of quota usage).
- "sparse": GAUGE series Google writes about once a day: read over SPARSE_LOOKBACK at most every
  refresh interval, the newest point kept in the persistent cache in between.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .distribution import Distribution, merge, percentile
from .timeseries import TimeSeries, TimeSeriesQuery
from .windows import Window, next_window, window_end

MODES = ("window", "span", "newest", "peak", "sparse")
# "Sampled every 86400 seconds": 25 h always hold the newest daily point, whatever its phase.
SPARSE_LOOKBACK = 25 * 3600
SPARSE_ALIGNMENT = 3600
PERCENTILES = (("p50", 50.0), ("p95", 95.0), ("p99", 99.0))


@dataclass(frozen=True)
class Sample:
    name: str  # without the check's namespace
    kind: str  # "count" | "gauge"
    value: float
    tags: tuple[str, ...]


@dataclass(frozen=True)
class Family:
    """One metric family. A queried family's `samples` gets its series; a derived family's (no query, `inputs`
    set) gets {input family name: its series, or None where that query failed this run} and runs when any input
    (with `needs_all`, every input) has an answer. `samples` None: read only as another family's input."""

    name: str  # names the family in cache keys, warnings and contexts.dropped
    query: TimeSeriesQuery | None = None
    mode: str = "window"
    samples: Callable | None = None
    inputs: tuple[str, ...] = ()
    needs_all: bool = False

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"{self.name}: mode {self.mode!r} is not one of {MODES}")
        if (self.query is None) == (not self.inputs):
            raise ValueError(f"{self.name}: a family has either a query or inputs")

    @property
    def derived(self) -> bool:
        return self.query is None

    def ready(self, results: dict[str, list[TimeSeries]]) -> bool:
        present = [name in results for name in self.inputs]
        return all(present) if self.needs_all else any(present)


@dataclass(frozen=True)
class Lookbacks:
    """The look-back options every GCP check shares (seconds)."""

    ingestion_delay: float
    initial_lookback: float
    max_lookback: float
    gauge_lookback: float


def family_window(mode: str, now: float, last_end: float | None, lookbacks: Lookbacks) -> Window | None:
    """The interval a family reads this run; None when a "window" family has no new settled minute."""
    end = window_end(now, lookbacks.ingestion_delay)
    if mode == "sparse":
        return Window(end - SPARSE_LOOKBACK, end)
    if mode != "window":
        return Window(end - lookbacks.gauge_lookback, end)
    return next_window(
        now,
        last_end,
        ingestion_delay=lookbacks.ingestion_delay,
        initial_lookback=lookbacks.initial_lookback,
        max_lookback=lookbacks.max_lookback,
    )


def series_value(series: TimeSeries, mode: str):
    """The one value a series stands for in its family's mode; None when it has no usable point."""
    values = [p.value for p in series.points]
    if not values:
        return None
    if mode in ("newest", "sparse"):
        return series.newest().value
    if all(isinstance(v, Distribution) for v in values):
        return merge(values) if mode in ("window", "span") else None
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(numbers) != len(values):
        return None  # mixed or boolean values where numbers are expected
    return sum(numbers) if mode in ("window", "span") else max(numbers)


def distribution_samples(
    prefix: str, dist: Distribution, tags: tuple[str, ...], *, scale: float = 1.0, average: bool = True
) -> list[Sample]:
    """<prefix>.p50/.p95/.p99 (and .avg) of a distribution, times `scale`; nothing for an empty one."""
    if dist.count == 0:
        return []
    samples = [Sample(f"{prefix}.avg", "gauge", dist.mean * scale, tags)] if average else []
    for suffix, q in PERCENTILES:
        value = percentile(dist, q)
        if value is not None:
            samples.append(Sample(f"{prefix}.{suffix}", "gauge", value * scale, tags))
    return samples


def cap_samples(samples: list[Sample], max_contexts: int) -> tuple[list[Sample], int]:
    """At most `max_contexts` tag sets per metric name, the heaviest (largest |value|) kept.

    Capping happens after every value was computed from all series, so rates and headroom are never skewed
    by what was dropped. Returns the kept samples and the most tag sets dropped for any one metric name.
    """
    by_name: dict[str, list[Sample]] = {}
    for sample in samples:
        by_name.setdefault(sample.name, []).append(sample)
    kept: list[Sample] = []
    dropped = 0
    for group in by_name.values():
        if len(group) > max_contexts:
            dropped = max(dropped, len(group) - max_contexts)
            group = sorted(group, key=lambda sample: (-abs(sample.value), sample.tags))[:max_contexts]
        kept.extend(group)
    return kept, dropped
