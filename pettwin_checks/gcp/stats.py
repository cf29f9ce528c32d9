"""Counting the API calls a run makes, per API, so a benchmark (and a metric) can show them."""

from __future__ import annotations

from collections import Counter


class ApiCallStats:
    """Calls (every HTTP attempt, retries included), retries and failures per API since the last `reset`."""

    def __init__(self):
        self.calls: Counter[str] = Counter()
        self.retries: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()

    def record(self, api: str) -> None:
        self.calls[api] += 1

    def record_retry(self, api: str) -> None:
        self.retries[api] += 1

    def record_failure(self, api: str) -> None:
        self.failures[api] += 1

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def reset(self) -> None:
        self.calls.clear()
        self.retries.clear()
        self.failures.clear()
