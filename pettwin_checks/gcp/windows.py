"""Query windows for DELTA metrics that respect Monitoring's ingestion delay, with no gaps and no overlap.

Pure functions. Each run asks for (start, end] where end is `now - ingestion_delay` rounded down to the step
(a minute: Google's points are per minute), and start is the previous run's end for that query (kept in the
persistent cache by the caller), so consecutive windows meet exactly: every minute is counted once. The first
run (or one after the cache was lost) looks back `initial_lookback`; a run after a long outage looks back at
most `max_lookback`, and says how much history it skipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

STEP_SECONDS = 60


@dataclass(frozen=True)
class Window:
    start: float
    end: float
    skipped_seconds: float = 0.0  # history older than max_lookback that this window leaves out

    @property
    def seconds(self) -> int:
        return int(self.end - self.start)


def window_end(now: float, ingestion_delay: float, step: int = STEP_SECONDS) -> float:
    return math.floor((now - ingestion_delay) / step) * step


def next_window(
    now: float,
    last_end: float | None,
    *,
    ingestion_delay: float,
    initial_lookback: float,
    max_lookback: float,
    step: int = STEP_SECONDS,
) -> Window | None:
    """The next window to query, or None when less than one step of settled data is new.

    A `last_end` in the future of this window (clock moved back, delay raised) yields None until time catches
    up, rather than counting minutes twice. A `last_end` off the step grid restarts from the grid.
    """
    end = window_end(now, ingestion_delay, step)
    lookback = max(step, math.ceil(initial_lookback / step) * step)
    longest = max(lookback, math.floor(max_lookback / step) * step)
    if last_end is None or last_end % step:
        start = end - lookback
    else:
        start = float(last_end)
    if end - start < step:
        return None
    skipped = 0.0
    if end - start > longest:
        skipped = (end - longest) - start
        start = end - longest
    return Window(float(start), float(end), skipped)
