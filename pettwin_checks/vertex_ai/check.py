"""pettwin_vertex_ai: Vertex AI (Gemini and custom endpoints) from Cloud Monitoring, plus an optional probe.

Orchestration only: the family table (queries.py), the I/O (client.py over pettwin_checks.gcp), what to submit.
Windows of DELTA data are kept per family in the persistent cache so runs neither skip nor repeat a minute, even
across agent restarts; so is the last answer of each "sparse" family (quota series Google writes once a day),
read again only every quota_refresh_interval.
"""

from __future__ import annotations

import time

from datadog_checks.base import AgentCheck

from pettwin_checks.config_validation import warn_unknown_options
from pettwin_checks.coordination import ScopedElection, collects_here
from pettwin_checks.gcp import (
    Deadline,
    DeadlineExceeded,
    GcpApiError,
    GcpAuthError,
    GcpError,
    GcpSession,
    MalformedResponse,
    NotJson,
    RetryPolicy,
    next_window,
)
from pettwin_checks.gcp.snapshot import Snapshot
from pettwin_checks.gcp.windows import Window, window_end
from pettwin_checks.kafka.connection import connection_secrets

from .client import VertexAiClient
from .config_models import ConfigMixin
from .config_models.validators import run_budget
from .queries import SPARSE_LOOKBACK, Plan, build_plan
from .samples import cap_samples

MONITORING_SERVICE_CHECK = "monitoring.can_query"
PROBE_SERVICE_CHECK = "can_connect"
WINDOW_CACHE_PREFIX = "window_end."
SPARSE_CACHE_PREFIX = "sparse."


class PettwinVertexAiCheck(AgentCheck, ConfigMixin):
    __NAMESPACE__ = "pettwin.vertex_ai"

    def __init__(self, name, init_config, instances):
        super().__init__(name, init_config, instances)
        # Validate now, so bad config fails at init naming the field (the base class would wait for the first run).
        self.load_configuration_models()
        warn_unknown_options(self)
        for secret in connection_secrets(self.config.leader_election):  # the election's Kafka credentials
            self.register_secret(secret)
        config = self.config
        self.run_budget = run_budget(config)  # collection_timeout, else a share of the interval
        retry = RetryPolicy(config.max_attempts, config.backoff_base, config.backoff_max, config.call_timeout)
        # countTokens accepts only cloud-platform; Monitoring reads alone need only monitoring.read.
        apis = (("monitoring",) if config.collect_project_metrics else ()) + (
            ("aiplatform",) if config.probe.enabled else ()
        )
        self.session = GcpSession(self.http, self.instance, apis=apis, retry=retry, log=self.log)
        self.client = VertexAiClient(self.session, config.page_size)
        plan = Plan([], [])
        if config.collect_project_metrics:
            plan = build_plan(
                publisher_models=config.collect.publisher_models,
                endpoints=config.collect.endpoints,
                quota=config.collect.quota,
                locations=config.locations,
                models=config.models,
                endpoint_ids=config.endpoint_ids,
                quota_metrics=config.quota_metrics,
                discover_quota_metrics=config.discover_quota_metrics,
            )
        self.families, self.combinations = plan.families, plan.combinations
        self._snapshots: dict[str, Snapshot] = {}  # sparse families' last answers, also in the persistent cache
        self.leader = None
        if config.leader_election and self.families:
            self.leader = ScopedElection(config.leader_election, name, config.min_collection_interval, self.log)
        # Wall clock for query windows; tests move it to stand in for time passing between runs.
        self.wall_clock = time.time
        self._last_probe_at: float | None = None
        self._last_probe = None

    # ---------------------------------------------------------------- run

    def check(self, _):
        config = self.config
        self.session.stats.reset()
        deadline = Deadline(self.run_budget)
        base_tags = list(config.tags)
        try:
            project = self.session.project_id(deadline)
        except (GcpError, DeadlineExceeded) as failure:
            message = f"cannot tell which project to watch: {failure}. Set project_id in the instance config."
            self.warning(message)
            self._submit_project_failure(base_tags, message)
            self._submit_api_calls(base_tags)
            return
        base_tags.append(f"project_id:{project}")
        if config.probe.enabled:
            self._probe(project, base_tags, deadline)
        leader = self.leader and self.leader.for_scope(f"{project}/{','.join(sorted(config.locations or ()))}")
        if self.families and collects_here(self, leader, base_tags, deadline.remaining()):
            self._collect(project, base_tags, deadline)
        self._submit_api_calls(base_tags)

    def cancel(self):
        if self.leader is not None:
            self.leader.close()

    def _submit_project_failure(self, tags, message):
        if self.families:
            self.service_check(MONITORING_SERVICE_CHECK, self.CRITICAL, tags=tags, message=message)
        if self.config.probe.enabled:
            self.service_check(PROBE_SERVICE_CHECK, self.CRITICAL, tags=tags, message=message)

    def _submit_api_calls(self, tags):
        for api, calls in sorted(self.session.stats.calls.items()):
            self.gauge("api.calls", calls, tags=[*tags, f"api:{api}"])

    # ---------------------------------------------------------------- probe

    def _probe(self, project, base_tags, deadline):
        probe = self.config.probe
        tags = [*base_tags, f"model:{probe.model}", f"location:{probe.location}"]
        now = time.monotonic()
        if self._last_probe_at is None or now - self._last_probe_at >= probe.min_interval:
            self._last_probe_at = now
            self._last_probe = self.client.probe(
                project,
                model=probe.model,
                publisher=probe.publisher,
                location=probe.location,
                method=probe.method,
                prompt=probe.prompt,
                timeout=probe.timeout,
                deadline=deadline,
            )
            if self._last_probe.latency_ms is not None:
                self.gauge(
                    "probe.latency",
                    self._last_probe.latency_ms,
                    tags=[*tags, f"probe_method:{probe.method}", f"outcome:{self._last_probe.outcome}"],
                )
        # Between probes the last outcome is repeated, so the service check does not go stale.
        outcome = self._last_probe
        status = {"ok": self.OK, "warning": self.WARNING}.get(outcome.status, self.CRITICAL)
        self.service_check(PROBE_SERVICE_CHECK, status, tags=tags, message=outcome.message or None)

    # ---------------------------------------------------------------- Cloud Monitoring

    def _window_for(self, family, now) -> Window | None:
        config = self.config
        if family.mode == "sparse":
            end = window_end(now, config.ingestion_delay)
            return Window(end - SPARSE_LOOKBACK, end)
        if family.mode != "window":
            end = window_end(now, config.ingestion_delay)
            return Window(end - config.gauge_lookback, end)
        cached = self.read_persistent_cache(WINDOW_CACHE_PREFIX + family.name)
        try:
            last_end = float(cached) if cached else None
        except ValueError:
            last_end = None
        return next_window(
            now,
            last_end,
            ingestion_delay=config.ingestion_delay,
            initial_lookback=max(config.initial_lookback, config.min_collection_interval),
            max_lookback=config.max_lookback,
        )

    def _collect(self, project, base_tags, deadline):
        now = self.wall_clock()
        results: dict[str, list] = {}
        finished_windows: dict[str, Window] = {}
        failures: list[str] = []
        problems: list[str] = []
        skipped_history: list[str] = []
        fatal = None  # (status, message): stop querying, nothing else will work this run
        queried = 0
        for position, family in enumerate(self.families):
            window = self._window_for(family, now)
            if window is None:
                continue  # less than a minute of settled data since the last run
            snapshot = self._snapshot(family) if family.mode == "sparse" else None
            if snapshot is not None:
                results[family.name] = snapshot.series  # the last known values, whether or not asked again
                if snapshot.age(now) < self.config.quota_refresh_interval:
                    continue
            try:
                result = self.client.fetch(project, family, window, deadline)
            except GcpAuthError as failure:
                fatal = (self.CRITICAL, f"{failure}. Fix the credentials the agent uses; collection resumes by itself.")
            except GcpApiError as failure:
                if failure.permission_denied:
                    remedy = self.session.denial_remedy(failure, "roles/monitoring.viewer")
                    fatal = (
                        self.CRITICAL,
                        (f"Cloud Monitoring denied timeSeries.list on project {project} ({failure.message}): {remedy}"),
                    )
                elif failure.status == 401:
                    fatal = (
                        self.CRITICAL,
                        (
                            f"Cloud Monitoring rejected the access token from "
                            f"{self.session.credentials.source} even after a refresh "
                            f"({failure.message}): check that credential source"
                        ),
                    )
                elif failure.persists_within_run:
                    # Retries are spent: the other families would wait and fail the same way.
                    fatal = (
                        self.WARNING if queried else self.CRITICAL,
                        (
                            f"{family.name}: {failure} (after retries); no more Cloud Monitoring queries this run, "
                            f"they catch up next run"
                        ),
                    )
                else:
                    failures.append(f"{family.name}: {failure}")
                    continue
            except DeadlineExceeded:
                left = len(self.families) - position
                fatal = (
                    self.WARNING,
                    (
                        f"the run's budget of {self.run_budget:g} s (collection_timeout) ran out with "
                        f"{left} of {len(self.families)} queries left; they catch up next run"
                    ),
                )
            except NotJson as failure:
                fatal = (
                    self.WARNING,
                    (
                        f"{family.name}: {failure}: a proxy or monitoring_endpoint answers instead "
                        f"of Cloud Monitoring; no more queries this run"
                    ),
                )
            except MalformedResponse as failure:
                failures.append(f"{family.name}: {failure}")
                continue
            if fatal:
                # Next run starts with the queries this one could not reach.
                self.families = self.families[position:] + self.families[:position]
                break
            queried += 1
            results[family.name] = result.series
            if family.mode == "sparse":
                self._keep_snapshot(family, Snapshot(now, result.series))
            if result.problems:
                problems.append(
                    f"{family.name}: skipped {len(result.problems)} malformed item(s), first: {result.problems[0]}"
                )
            if family.mode == "window":
                finished_windows[family.name] = window
                if window.skipped_seconds:
                    skipped_history.append(f"{family.name} ({window.skipped_seconds:g} s)")

        self._submit_samples(results, base_tags)
        for name, window in finished_windows.items():
            self.write_persistent_cache(WINDOW_CACHE_PREFIX + name, str(int(window.end)))

        for message in problems:
            self.warning("Malformed Cloud Monitoring data left out: %s", message)
        if skipped_history:
            self.warning(
                "History older than max_lookback (%ss) was not collected for: %s",
                self.config.max_lookback,
                ", ".join(skipped_history),
            )
        self._monitoring_status(base_tags, fatal, failures, queried)

    def _monitoring_status(self, tags, fatal, failures, queried):
        if fatal and fatal[0] == self.CRITICAL:
            self.service_check(MONITORING_SERVICE_CHECK, self.CRITICAL, tags=tags, message=fatal[1])
            self.warning(fatal[1])
            return
        messages = ([fatal[1]] if fatal else []) + failures
        if failures and not queried and not fatal:
            message = "every Cloud Monitoring query failed: " + "; ".join(failures)
            self.service_check(MONITORING_SERVICE_CHECK, self.CRITICAL, tags=tags, message=message[:1500])
            self.warning(message)
        elif messages:
            message = "; ".join(messages)
            self.service_check(MONITORING_SERVICE_CHECK, self.WARNING, tags=tags, message=message[:1500])
            self.warning("Some Vertex AI metrics are missing this run: %s", message)
        else:
            self.service_check(MONITORING_SERVICE_CHECK, self.OK, tags=tags)

    def _snapshot(self, family) -> Snapshot | None:
        """A sparse family's last answer: in memory, else from the persistent cache (after an agent restart)."""
        if family.name not in self._snapshots:
            snapshot = Snapshot.loads(self.read_persistent_cache(SPARSE_CACHE_PREFIX + family.name))
            if snapshot is None:
                return None
            self._snapshots[family.name] = snapshot
        return self._snapshots[family.name]

    def _keep_snapshot(self, family, snapshot: Snapshot) -> None:
        self._snapshots[family.name] = snapshot
        self.write_persistent_cache(SPARSE_CACHE_PREFIX + family.name, snapshot.dumps())

    def _submit_samples(self, results, base_tags):
        max_contexts = self.config.max_contexts
        outcomes = {
            family.name: family.samples(results[family.name])
            for family in self.families
            if family.samples is not None and family.name in results
        }
        for combination in self.combinations:
            if combination.ready(results):
                outcomes[combination.name] = combination.build({name: results.get(name) for name in combination.inputs})
        for name, samples in sorted(outcomes.items()):
            kept, dropped = cap_samples(samples, max_contexts)
            for sample in kept:
                submit = self.count if sample.kind == "count" else self.gauge
                submit(sample.name, sample.value, tags=[*base_tags, *sample.tags])
            self.gauge("contexts.dropped", dropped, tags=[*base_tags, f"family:{name}"])
            if dropped:
                self.warning("%s: %d tag sets over max_contexts (%d) were dropped", name, dropped, max_contexts)
