"""Runs a check's table of families (gcp.families) against Cloud Monitoring for one project.

One timeSeries.list per queried family per run, in table order, each within the run's Deadline. A failure that
would repeat for every further call (gcp.errors.persists_within_run: credentials, retries spent, a proxy answering,
the budget gone) stops the run's queries, and the next run starts with the families this one did not reach; a
failure of one query alone (a 400, a malformed answer) costs that family only. Window ends and the last answers
of sparse families are kept in the persistent cache under keys naming the project and the family, so windows
neither skip nor repeat a minute across runs and agent restarts, and two projects never share one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pettwin_checks.deadline import Deadline, DeadlineExceeded

from .errors import GcpError, NotJson, persists_within_run
from .families import Family, Lookbacks, Sample, cap_samples, family_window
from .messages import failure_message
from .monitoring import DEFAULT_PAGE_SIZE
from .session import GcpSession
from .snapshot import Snapshot
from .timeseries import TimeSeries
from .windows import Window

MAX_STATUS_MESSAGE = 1500


@dataclass
class Collection:
    """What one run of a family table got."""

    samples: dict[str, list[Sample]] = field(default_factory=dict)  # by family name
    results: dict[str, list[TimeSeries]] = field(default_factory=dict)  # series by family name
    queried: int = 0  # queries answered this run
    stopped: GcpError | DeadlineExceeded | None = None  # the failure that stopped the run's queries
    stopped_at: str = ""  # the family it came from
    failures: list[str] = field(default_factory=list)  # "family: error" of queries that failed alone
    problems: list[str] = field(default_factory=list)  # malformed data left out, per family
    skipped_history: list[str] = field(default_factory=list)  # families whose window skipped old history
    windows: dict[str, Window] = field(default_factory=dict)  # windows answered, kept by `commit`

    def status(self, *, project: str, session: GcpSession, budget: float) -> tuple[str, str | None]:
        """("ok" | "warning" | "critical", message or None) of the run's Cloud Monitoring queries: critical when
        nothing could be read (stopped before any answer, or every query refused), warning when figures are missing.
        """
        messages, status = [], "ok"
        if self.stopped is not None:
            what = self.stopped_at
            messages.append(
                failure_message(
                    self.stopped, api="monitoring", project=project, session=session, budget=budget, what=what
                )
            )
            status = "critical" if not self.queried and not isinstance(self.stopped, NotJson) else "warning"
        if self.failures:
            messages.append("queries failed: " + "; ".join(self.failures))
            if status == "ok":
                status = "warning" if self.queried else "critical"
        return status, ("; ".join(messages)[:MAX_STATUS_MESSAGE] if messages else None)

    def warnings(self, max_lookback: float) -> list[str]:
        """What the run left out of otherwise good answers: malformed data, history past max_lookback."""
        messages = [f"Malformed Cloud Monitoring data left out: {problem}" for problem in self.problems]
        if self.skipped_history:
            messages.append(
                f"History older than max_lookback ({max_lookback:g}s) was not collected for: "
                + ", ".join(self.skipped_history)
            )
        return messages


class FamilyCollector:
    """`check` is the AgentCheck: its persistent cache keeps the windows, `run` submits through it."""

    def __init__(
        self,
        session: GcpSession,
        families: list[Family],
        lookbacks: Lookbacks,
        check,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        refresh_interval: float = 3600.0,
    ):
        self.session = session
        self.queried = [family for family in families if not family.derived]
        self.derived = [family for family in families if family.derived]
        self.lookbacks = lookbacks
        self._check = check
        self.page_size = page_size
        self.refresh_interval = refresh_interval
        self._snapshots: dict[str, Snapshot] = {}

    @staticmethod
    def window_key(project: str, family: Family) -> str:
        return f"window_end:{project}:{family.name}"

    @staticmethod
    def sparse_key(project: str, family: Family) -> str:
        return f"sparse:{project}:{family.name}"

    def collect(self, project: str, deadline: Deadline, now: float) -> Collection:
        collection = Collection()
        monitoring = self.session.monitoring(project, self.page_size)
        for position, family in enumerate(self.queried):
            window = family_window(family.mode, now, self._last_end(project, family), self.lookbacks)
            if window is None:
                continue  # less than a minute of settled data since the last run
            if family.mode == "sparse" and self._known(project, family, now, collection):
                continue
            try:
                result = monitoring.list_time_series(family.query, window.start, window.end, deadline)
            except (GcpError, DeadlineExceeded) as failure:
                if persists_within_run(failure):
                    collection.stopped, collection.stopped_at = failure, family.name
                    # The next run starts with the queries this one could not reach.
                    self.queried = self.queried[position:] + self.queried[:position]
                    break
                collection.failures.append(f"{family.name}: {failure}")
                continue
            collection.queried += 1
            series = [_within(s, window) for s in result.series]
            collection.results[family.name] = series
            if result.problems:
                collection.problems.append(
                    f"{family.name}: skipped {len(result.problems)} malformed item(s), first: {result.problems[0]}"
                )
            if family.mode == "sparse":
                self._keep(project, family, Snapshot(now, series))
            elif family.mode == "window":
                collection.windows[family.name] = window
                if window.skipped_seconds:
                    collection.skipped_history.append(f"{family.name} ({window.skipped_seconds:g} s)")
        self._samples(collection)
        return collection

    def run(self, project: str, deadline: Deadline, now: float, tags: list[str], *, max_contexts=None) -> Collection:
        """collect, submit every sample through the check (at most `max_contexts` tag sets per metric name, the
        number dropped as contexts.dropped per family), then move the windows on and warn what was left out."""
        check = self._check
        collection = self.collect(project, deadline, now)
        for name, samples in sorted(collection.samples.items()):
            kept, dropped = cap_samples(samples, max_contexts) if max_contexts else (samples, 0)
            for sample in kept:
                submit = check.count if sample.kind == "count" else check.gauge
                submit(sample.name, sample.value, tags=[*tags, *sample.tags])
            if max_contexts:
                check.gauge("contexts.dropped", dropped, tags=[*tags, f"family:{name}"])
            if dropped:
                check.warning(f"{name}: {dropped} tag sets over max_contexts ({max_contexts}) were dropped")
        self.commit(project, collection)
        for message in collection.warnings(self.lookbacks.max_lookback):
            check.warning(message)
        return collection

    def commit(self, project: str, collection: Collection) -> None:
        """After the samples were submitted: the answered windows' ends, where the next windows start."""
        for family in self.queried:
            window = collection.windows.get(family.name)
            if window is not None:
                self._check.write_persistent_cache(self.window_key(project, family), str(int(window.end)))

    def _samples(self, collection: Collection) -> None:
        results = collection.results
        for family in self.queried:
            if family.samples is not None and family.name in results:
                collection.samples[family.name] = family.samples(results[family.name])
        for family in self.derived:
            if family.ready(results):
                collection.samples[family.name] = family.samples({name: results.get(name) for name in family.inputs})

    def _last_end(self, project: str, family: Family) -> float | None:
        if family.mode != "window":
            return None
        cached = self._check.read_persistent_cache(self.window_key(project, family))
        try:
            return float(cached) if cached else None
        except ValueError:
            return None

    def _known(self, project: str, family: Family, now: float, collection: Collection) -> bool:
        """A sparse family's last answer (in memory, else from the persistent cache after an agent restart) is
        used whether or not it is asked again; True when it is recent enough not to ask."""
        key = self.sparse_key(project, family)
        snapshot = self._snapshots.get(key) or Snapshot.loads(self._check.read_persistent_cache(key))
        if snapshot is None:
            return False
        self._snapshots[key] = snapshot
        collection.results[family.name] = snapshot.series
        return snapshot.age(now) < self.refresh_interval

    def _keep(self, project: str, family: Family, snapshot: Snapshot) -> None:
        key = self.sparse_key(project, family)
        self._snapshots[key] = snapshot
        self._check.write_persistent_cache(key, snapshot.dumps())


def _within(series: TimeSeries, window: Window) -> TimeSeries:
    """Only the points whose interval ends inside the window asked for (start, end]."""
    series.points = [p for p in series.points if window.start < p.end <= window.end]
    return series
