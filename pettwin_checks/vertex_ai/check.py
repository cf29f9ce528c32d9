"""pettwin_vertex_ai: Vertex AI (Gemini and custom endpoints) from Cloud Monitoring, plus an optional probe.

Orchestration only: the family table (families.py) run by the GCP engine (pettwin_checks.gcp.collection), the
probe (probe.py), what to submit and say.
"""

from __future__ import annotations

import time

from datadog_checks.base import AgentCheck

from pettwin_checks.config_validation import warn_unknown_options
from pettwin_checks.coordination import ScopedElection, collects_here
from pettwin_checks.deadline import Deadline, DeadlineExceeded
from pettwin_checks.gcp import GcpError, GcpSession, RetryPolicy
from pettwin_checks.gcp.collection import Collection, FamilyCollector
from pettwin_checks.gcp.families import Lookbacks
from pettwin_checks.kafka.connection import connection_secrets

from .config_models import ConfigMixin
from .config_models.validators import collection_timeout, token_prices
from .families import TOKENS, configured_families
from .probe import VertexAiProbe
from .samples import unpriced_models

MONITORING_SERVICE_CHECK = "monitoring.can_query"
PROBE_SERVICE_CHECK = "can_connect"


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
        self.collection_timeout = collection_timeout(config)  # as configured, else a share of the interval
        retry = RetryPolicy(config.max_attempts, config.backoff_base, config.backoff_max, config.timeout)
        # countTokens accepts only cloud-platform; Monitoring reads alone need only monitoring.read.
        apis = (("monitoring",) if config.collect_project_metrics else ()) + (
            ("aiplatform",) if config.probe.enabled else ()
        )
        self.session = GcpSession(self.http, self.instance, apis=apis, retry=retry, log=self.log)
        self.probe = VertexAiProbe(self.session)
        self.prices = token_prices(config)
        self.families = configured_families(config, self.prices) if config.collect_project_metrics else []
        lookbacks = Lookbacks(
            config.ingestion_delay,
            max(config.initial_lookback, config.min_collection_interval),
            config.max_lookback,
            config.gauge_lookback,
        )
        self.collector = FamilyCollector(
            self.session,
            self.families,
            lookbacks,
            self,
            page_size=config.page_size,
            refresh_interval=config.quota_refresh_interval,
        )
        self._unpriced_said: set[str] = set()
        self.leader = None
        if config.leader_election and config.leader_election.enabled and self.families:
            self.leader = ScopedElection(config.leader_election, name, config.min_collection_interval, self.log)
        # Wall clock for query windows; tests move it to stand in for time passing between runs.
        self.wall_clock = time.time
        self._last_probe_at: float | None = None
        self._last_probe = None

    # ---------------------------------------------------------------- run

    def check(self, _):
        config = self.config
        self.session.stats.reset()
        deadline = Deadline(self.collection_timeout)
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
            self._last_probe = self.probe.call(project, probe, deadline)
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

    def _collect(self, project, base_tags, deadline):
        collection = self.collector.run(
            project, deadline, self.wall_clock(), base_tags, max_contexts=self.config.max_contexts
        )
        self._say_unpriced(collection)
        status, message = collection.status(project=project, session=self.session, budget=self.collection_timeout)
        self.service_check(MONITORING_SERVICE_CHECK, STATUS[status], tags=base_tags, message=message)
        if message:
            self.warning("Some Vertex AI metrics are missing this run: %s", message)

    def _say_unpriced(self, collection: Collection):
        """Once per model: its spend is not estimated (no price in token_prices), rather than reported as 0."""
        unpriced = sorted(unpriced_models(self.prices, collection.results.get(TOKENS)) - self._unpriced_said)
        if unpriced:
            self._unpriced_said.update(unpriced)
            self.warning(
                "No price in token_prices for %s: their spend (publisher.cost) is not estimated; add "
                "token_prices: {<model>: {input: <USD per 1M input tokens>, output: <USD per 1M output tokens>}}",
                ", ".join(unpriced),
            )


STATUS = {"ok": AgentCheck.OK, "warning": AgentCheck.WARNING, "critical": AgentCheck.CRITICAL}
