"""Gauges by the tens of thousands a run, submitted as `AgentCheck.gauge` would, for less Python a series
(docs/kafka_lag.md, "Submitting tens of thousands of series")."""

from __future__ import annotations

from datadog_checks.base import AgentCheck
from datadog_checks.base.agent import aggregator as agent_aggregator


def active_aggregator(check: AgentCheck):
    """The aggregator `check` submits to: datadog_checks_base 38 lets a discovery probe swap it per check
    (`_aggregator()`); 37, the agent's, has only the module."""
    of_check = getattr(check, "_aggregator", None)
    return of_check() if of_check is not None else agent_aggregator


class BulkGauge:
    """`gauge(name, value, tags)` as `check.gauge(name, value, tags=tags)`, for one run: the tags must be a list of
    `str` the caller does not change afterwards."""

    def __init__(self, check: AgentCheck) -> None:
        self._check = check
        self._plain = check.metric_limiter is None and not check.disable_generic_tags
        self._aggregator = active_aggregator(check)
        self._names: dict[str, str | None] = {}  # name -> namespaced name, None when metric_patterns drop it

    def __call__(self, name: str, value: float, tags: list[str]) -> None:
        if not self._plain:
            self._check.gauge(name, value, tags=tags)
            return
        full_name = self._names.get(name, "")
        if full_name == "":
            full_name = self._names[name] = self._namespaced(name)
        if full_name is None or value is None:
            return
        check = self._check
        self._aggregator.submit_metric(
            check, check.check_id, agent_aggregator.GAUGE, full_name, float(value), tags, "", False
        )

    def _namespaced(self, name: str) -> str | None:
        namespace = self._check.__NAMESPACE__
        full_name = f"{namespace}.{name}" if namespace else name
        return full_name if self._check.should_send_metric(full_name) else None
