"""Gauges by the tens of thousands a run, submitted as `AgentCheck.gauge` would, for less Python a series
(docs/kafka_lag.md, "Submitting tens of thousands of series")."""

from __future__ import annotations

from collections.abc import Callable

from datadog_checks.base import AgentCheck, agent


def active_aggregator(check: AgentCheck):
    """The aggregator `check` submits to: datadog_checks_base 38 lets a discovery probe swap it per check
    (`_aggregator()`); 37, the agent's, has only the module's."""
    of_check = getattr(check, "_aggregator", None)
    return of_check() if of_check is not None else agent.aggregator


class BulkGauge:
    """`gauge(name, value, tags)` as `check.gauge(name, value, tags=tags)`, for one run, and `sender(name)`, the same
    for one name as a function of (value, tags) for the loops over partitions. The tags must be a list of `str` the
    caller does not change afterwards."""

    def __init__(self, check: AgentCheck) -> None:
        self._check = check
        self._plain = check.metric_limiter is None and not check.disable_generic_tags
        self._aggregator = active_aggregator(check)
        self._senders: dict[str, Callable[[float, list[str]], None]] = {}

    def __call__(self, name: str, value: float | None, tags: list[str]) -> None:
        if value is not None:
            self.sender(name)(value, tags)

    def sender(self, name: str) -> Callable[[float, list[str]], None]:
        send = self._senders.get(name)
        if send is None:
            send = self._senders[name] = self._new_sender(name)
        return send

    def _new_sender(self, name: str) -> Callable[[float, list[str]], None]:
        check = self._check
        if not self._plain:
            return lambda value, tags: check.gauge(name, value, tags=tags)
        namespace = check.__NAMESPACE__
        full_name = f"{namespace}.{name}" if namespace else name
        if not check.should_send_metric(full_name):
            return lambda value, tags: None
        submit, check_id, gauge_type = self._aggregator.submit_metric, check.check_id, agent.aggregator.GAUGE

        def send(value: float, tags: list[str]) -> None:
            submit(check, check_id, gauge_type, full_name, float(value), tags, "", False)

        return send
