"""pettwin_vertex_ai: Vertex AI (Gemini and custom endpoints) from Cloud Monitoring, plus an optional probe.

Orchestration only: which families to query (queries.py), the I/O (client.py over pettwin_checks.gcp), what
to submit. Windows of DELTA data are kept per family in the persistent cache so runs neither skip nor repeat
a minute, even across agent restarts.
"""

from __future__ import annotations

import time

from datadog_checks.base import AgentCheck

from pettwin_checks.coordination import LeaderElection, collects_here
from pettwin_checks.gcp import (
    Deadline,
    DeadlineExceeded,
    GcpApiError,
    GcpAuthError,
    GcpError,
    GcpSession,
    MalformedResponse,
    RetryPolicy,
    next_window,
)
from pettwin_checks.gcp.windows import Window, window_end

from .client import VertexAiClient
from .config_models import ConfigMixin
from .queries import (
    FamilyResult,
    build_families,
    cap_samples,
    dynamic_shared_quota_samples,
    family_samples,
    quota_samples,
    service_quota_samples,
    without_quota_metrics,
)

MONITORING_SERVICE_CHECK = "monitoring.can_query"
PROBE_SERVICE_CHECK = "can_connect"
WINDOW_CACHE_PREFIX = "window_end."
# Families whose samples are built together with another family's (headroom needs usage and limit).
COMBINED_FAMILIES = ("quota_usage", "quota_limit", "service_quota_limit", "service_quota_rate_usage",
                     "service_quota_allocation_usage")


class PettwinVertexAiCheck(AgentCheck, ConfigMixin):
    __NAMESPACE__ = "pettwin.vertex_ai"

    def __init__(self, name, init_config, instances):
        super().__init__(name, init_config, instances)
        # Validate now, so bad config fails at init naming the field (the base class would wait for the first run).
        self.load_configuration_models()
        config = self.config
        retry = RetryPolicy(config.max_attempts, config.backoff_base, config.backoff_max, config.call_timeout)
        self.session = GcpSession(self.http, self.instance, retry=retry, log=self.log)
        self.client = VertexAiClient(self.session, config.page_size)
        self.families = []
        if config.collect_project_metrics:
            self.families = build_families(
                publisher_models=config.collect.publisher_models, endpoints=config.collect.endpoints,
                quota=config.collect.quota, locations=config.locations, models=config.models,
                endpoint_ids=config.endpoint_ids, quota_metrics=config.quota_metrics,
                discover_quota_metrics=config.discover_quota_metrics,
            )
        self.leader = None
        if config.leader_election and self.families:
            self.leader = LeaderElection.from_config(
                config.leader_election, name, str(config.project_id), config.min_collection_interval, self.log
            )
        # Wall clock for query windows; tests move it to stand in for time passing between runs.
        self.wall_clock = time.time
        self._last_probe_at: float | None = None
        self._last_probe = None

    # ---------------------------------------------------------------- run

    def check(self, _):
        config = self.config
        self.session.stats.reset()
        deadline = Deadline(config.collection_timeout)
        base_tags = list(config.tags)
        try:
            project = self.session.project_id(deadline)
        except GcpError as failure:
            message = f"cannot tell which project to watch: {failure}. Set project_id in the instance config."
            self.warning(message)
            self._submit_project_failure(base_tags, message)
            self._submit_api_calls(base_tags)
            return
        base_tags.append(f"project_id:{project}")
        if config.probe.enabled:
            self._probe(project, base_tags, deadline)
        if self.families and collects_here(self, self.leader, base_tags):
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
                project, model=probe.model, publisher=probe.publisher, location=probe.location, method=probe.method,
                prompt=probe.prompt, timeout=probe.timeout, deadline=deadline,
            )
            if self._last_probe.latency_ms is not None:
                self.gauge("probe.latency", self._last_probe.latency_ms,
                           tags=[*tags, f"probe_method:{probe.method}", f"outcome:{self._last_probe.outcome}"])
        # Between probes the last outcome is repeated, so the service check does not go stale.
        outcome = self._last_probe
        status = {"ok": self.OK, "warning": self.WARNING}.get(outcome.status, self.CRITICAL)
        self.service_check(PROBE_SERVICE_CHECK, status, tags=tags, message=outcome.message or None)

    # ---------------------------------------------------------------- Cloud Monitoring

    def _window_for(self, family, now) -> Window | None:
        config = self.config
        if family.mode != "window":
            end = window_end(now, config.ingestion_delay)
            return Window(end - config.gauge_lookback, end)
        cached = self.read_persistent_cache(WINDOW_CACHE_PREFIX + family.name)
        try:
            last_end = float(cached) if cached else None
        except ValueError:
            last_end = None
        return next_window(now, last_end, ingestion_delay=config.ingestion_delay,
                           initial_lookback=max(config.initial_lookback, config.min_collection_interval),
                           max_lookback=config.max_lookback)

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
            try:
                result = self.client.fetch(project, family, window, deadline)
            except GcpAuthError as failure:
                fatal = (self.CRITICAL, f"{failure}. Fix the credentials the agent uses; collection resumes by itself.")
            except GcpApiError as failure:
                if failure.permission_denied:
                    fatal = (self.CRITICAL, (
                        f"Cloud Monitoring denied timeSeries.list on project {project} ({failure.message}): grant "
                        f"roles/monitoring.viewer to the agent's identity ({self.session.credentials.source})"))
                else:
                    failures.append(f"{family.name}: {failure}")
                    continue
            except DeadlineExceeded:
                left = len(self.families) - position
                fatal = (self.WARNING, (
                    f"the run's budget of {self.config.collection_timeout:g} s (collection_timeout) ran out with "
                    f"{left} of {len(self.families)} queries left; they catch up next run"))
                # Next run starts with the queries this one could not reach.
                self.families = self.families[position:] + self.families[:position]
            except MalformedResponse as failure:
                failures.append(f"{family.name}: {failure}")
                continue
            if fatal:
                break
            queried += 1
            results[family.name] = result.series
            if result.problems:
                problems.append(f"{family.name}: skipped {len(result.problems)} malformed item(s), first: "
                                f"{result.problems[0]}")
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
            self.warning("History older than max_lookback (%ss) was not collected for: %s",
                         self.config.max_lookback, ", ".join(skipped_history))
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

    def _submit_samples(self, results, base_tags):
        max_contexts = self.config.max_contexts
        outcomes: dict[str, FamilyResult] = {}
        for family in self.families:
            if family.name in results and family.name.split(":", 1)[0] not in COMBINED_FAMILIES:
                series = results[family.name]
                if family.name == "service_quota_exceeded":
                    series = without_quota_metrics(series, set(self.config.quota_metrics))
                outcomes[family.name] = family_samples(family, series, max_contexts)
        limit_families = [f"quota_limit:{m}" for m in self.config.quota_metrics] if self.config.collect.quota else []
        for metric in self.config.quota_metrics if self.config.collect.quota else []:
            usage, limits = results.get(f"quota_usage:{metric}"), results.get(f"quota_limit:{metric}")
            if usage is not None or limits is not None:
                outcomes[f"quota:{metric}"] = quota_samples(metric, usage, limits, max_contexts)
        service = [results.get(name) for name in ("service_quota_limit", "service_quota_rate_usage",
                                                  "service_quota_allocation_usage")]
        if any(part is not None for part in service):
            outcomes["service_quota"] = service_quota_samples(*service, set(self.config.quota_metrics), max_contexts)
        if "publisher_invocations" in results and limit_families and all(n in results for n in limit_families):
            dsq = dynamic_shared_quota_samples(results["publisher_invocations"], [results[n] for n in limit_families])
            outcomes["dynamic_shared_quota"] = FamilyResult(*cap_samples(dsq, max_contexts))

        for name, outcome in sorted(outcomes.items()):
            for sample in outcome.samples:
                submit = self.count if sample.kind == "count" else self.gauge
                submit(sample.name, sample.value, tags=[*base_tags, *sample.tags])
            self.gauge("contexts.dropped", outcome.dropped, tags=[*base_tags, f"family:{name}"])
            if outcome.dropped:
                self.warning("%s: %d tag sets over max_contexts (%d) were dropped", name, outcome.dropped,
                             max_contexts)
