"""A run's time budget, shared by every check: each network call takes its timeout from what is left of it."""

from __future__ import annotations

import time
from collections.abc import Callable


class DeadlineExceeded(Exception):
    """The run's time budget ran out before a call could be made or finished."""


class Deadline:
    """`seconds` from now on the monotonic clock.

    `timeout(cap)` is the timeout to give the next call: the smaller of `cap` and what is left; it raises
    DeadlineExceeded when nothing (or less than `minimum`) is left, so a slow API costs at most the budget.
    """

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self.budget = float(seconds)
        self._ends_at = clock() + self.budget

    def remaining(self) -> float:
        return max(0.0, self._ends_at - self._clock())

    def timeout(self, cap: float | None = None, minimum: float = 0.05) -> float:
        left = self.remaining()
        if left < minimum:
            raise DeadlineExceeded(f"the run's time budget of {self.budget:g} s is used up")
        return left if cap is None else min(float(cap), left)

    @classmethod
    def unbounded(cls) -> Deadline:
        """For calls made outside a run (tools, tests of a single call): one hour."""
        return cls(3600.0)
