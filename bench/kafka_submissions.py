"""Where the benchmark's check submits its metrics, and how the benchmark reads them back after each run.

`--aggregator stub` (the default) is datadog_checks_base's stub, as the test suite uses it. It keeps every
submission as a Python object (a namedtuple holding the check's tag list) until reset: at 68,000 series a run that is
about 130,000 objects the garbage collector walks in each of the run's collections, which the agent's aggregator
does not cause (rtloader copies the name and each tag into C strings and keeps nothing in Python).

`--aggregator copying` takes each metric submission as the agent's does: it copies the name, the value and the tags
(joined into one string) into flat lists of strings and floats, which the collector does not walk, and keeps no
reference to the check's objects. Everything else (service checks, the few submissions through `AgentCheck.gauge`'s
other kinds) still goes to the stub."""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterator
from typing import NamedTuple

from datadog_checks.base.stubs import aggregator as stub

TAG_SEPARATOR = "\x1f"  # not in any tag the check builds


class Metric(NamedTuple):
    name: str
    value: float
    tags: list[str]


class CopyingAggregator:
    def __init__(self) -> None:
        self._names: list[str] = []
        self._values = array("d")
        self._tags: list[str] = []

    def submit_metric(self, check, check_id, mtype, name, value, tags, hostname, flush_first_value) -> None:
        if mtype != stub.GAUGE:
            stub.submit_metric(check, check_id, mtype, name, value, tags, hostname, flush_first_value)
            return
        self._names.append(name)
        self._values.append(value)
        self._tags.append(TAG_SEPARATOR.join(tags))

    def __getattr__(self, name: str):
        return getattr(stub, name)  # service checks, constants, the rest: the stub's

    def metrics(self, name: str) -> Iterator[Metric]:
        """The gauges of `name` this aggregator took (none from the stub: a check that bypassed it reads as empty)."""
        for i, submitted in enumerate(self._names):
            if submitted == name:
                yield Metric(name, self._values[i], self._tags[i].split(TAG_SEPARATOR) if self._tags[i] else [])

    def contexts(self) -> int:
        return len(set(zip(self._names, self._tags))) + stub_contexts()

    def reset(self) -> None:
        self._names, self._values, self._tags = [], array("d"), []
        stub.reset()


def stub_contexts() -> int:
    return sum(len({tuple(m.tags) for m in submitted}) for submitted in stub._metrics.values())


class StubSubmissions:
    """The stub as the benchmark reads it."""

    metrics = staticmethod(stub.metrics)
    reset = staticmethod(stub.reset)
    contexts = staticmethod(stub_contexts)


def install(kind: str):
    """The submissions' reader for `kind`, with the copying aggregator put where AgentCheck submits when asked."""
    if kind == "stub":
        return StubSubmissions()
    copying = CopyingAggregator()
    # datadog_checks_base 38 submits through its module's `aggregator`; 37 (and BulkGauge there) through the agent
    # module's.
    sys.modules["datadog_checks.base.checks.base"].aggregator = copying
    sys.modules["datadog_checks.base.agent"].aggregator = copying
    return copying
