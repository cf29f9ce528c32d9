"""`pettwin_cloud_run`: the app container's health seen from its agent sidecar, plus Cloud Run's view of the service.

Instance scope (every sidecar): probes of the app over the shared localhost; the cgroup CPU/memory/OOM/pids of the
container the agent runs in, tagged `container:agent`, or `container:app` where the agent shares the app's
container (the app's process is visible and in the agent's cgroup); the app's uptime and restarts only then.
Cloud Run gives each container its own cgroup and PID namespace, so from a sidecar the app's CPU, memory, startup
and probe results come from Cloud Run's per-container series (project scope, tag `container_name`).
Project scope (project_scope.py; switch off in all but one collector): revision readiness and traffic from the
Admin API v2, and Cloud Run's request/instance/probe/utilization metrics from Cloud Monitoring.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import replace

import psutil
from datadog_checks.base import AgentCheck

from pettwin_checks.config_validation import warn_unknown_options
from pettwin_checks.coordination import ScopedElection, collects_here
from pettwin_checks.deadline import Deadline, DeadlineExceeded
from pettwin_checks.gcp.errors import GcpError
from pettwin_checks.kafka.connection import connection_secrets

from . import cgroup
from .client import CloudRunClient
from .config_models import ConfigMixin
from .identity import ENV_PORT, ENV_SERVICE, Identity, identity_tags, resolve
from .probes import ProbeResult, ProbeSpec, ProbeState, judge, parse_status_ranges, run_probe
from .project_scope import STATUS, ProjectScope
from .restarts import Baseline, app_process, detect_restart

RESTART_CACHE_KEY = "restart_baseline"
# Cloud Run's default containerPort: PORT is only set in the ingress container, never in a sidecar.
CLOUD_RUN_DEFAULT_PORT = 8080
# Off Cloud Run the metadata server is most likely absent: ask it again this rarely (seconds).
METADATA_RETRY_INTERVAL = 300.0


class PettwinCloudRunCheck(ProjectScope, AgentCheck, ConfigMixin):
    __NAMESPACE__ = "pettwin.cloud_run"

    def __init__(self, name, init_config, instances):
        super().__init__(name, init_config, instances)
        # Validate now so a bad option fails at init, naming the field.
        self.load_configuration_models()
        warn_unknown_options(self)
        for secret in connection_secrets(self.config.leader_election):  # the election's Kafka credentials
            self.register_secret(secret)
        self._probe_specs = build_probe_specs(self.config, os.environ)
        if self.config.app_port is None and os.environ.get(ENV_SERVICE) and not os.environ.get(ENV_PORT):
            self.log.info(
                "No app_port and no PORT (Cloud Run sets PORT in the ingress container only): probing the "
                "app on %d, Cloud Run's default; set app_port if its containerPort differs",
                CLOUD_RUN_DEFAULT_PORT,
            )
        self._probe_states = {spec.name: ProbeState() for spec in self._probe_specs}
        self._app_pattern = re.compile(self.config.app_process) if self.config.app_process else None
        self._layout: cgroup.Layout | None = None
        self._previous_cpu: tuple[float, float] | None = None  # (usage seconds, monotonic time)
        self._baseline: Baseline | None = None
        self._first_run_at = time.time()
        self._warned: set[str] = set()
        self._metadata: dict[str, str] = {}
        self._metadata_next_try = 0.0
        self._client = CloudRunClient(self.http, self.config, self.log)
        self._families_for: list[str] | None = None  # the services the Cloud Monitoring families were built for
        self._monitoring = None
        self.leader = None
        self._project_scope = self.config.collect_revision_health or self.config.collect_cloud_run_metrics
        election = self.config.leader_election
        if election and election.enabled and self._project_scope:
            self.leader = ScopedElection(
                self.config.leader_election, name, self.config.min_collection_interval, self.log
            )

    # ------------------------------------------------------------------------------------------------- run

    def check(self, _):
        deadline = Deadline(self.config.collection_timeout)
        # Probes first: a slow metadata server or API must not eat into the app's probe timeouts.
        probe_results = [
            (spec, run_probe(replace(spec, timeout=deadline.timeout(spec.timeout)))) for spec in self._probe_specs
        ]
        identity = self._resolve_identity(deadline)
        base_tags = [*identity_tags(identity, self.config.tag_instance_id), *self.config.tags]
        now = time.time()
        started = self._app_started_at()  # None when the app is not in the agent's container
        container_tags = [*base_tags, f"container:{'app' if started is not None else 'agent'}"]
        sample = self._read_resources() if self.config.collect_container_resources else None
        if started is not None:
            self._check_restarts(started, now, container_tags)
        self.gauge("instance.uptime", max(0.0, now - psutil.boot_time()), tags=base_tags)
        self._submit_probes(probe_results, started, now, base_tags)
        if sample is not None:
            self._submit_resources(sample, container_tags)
        if self._project_scope and collects_here(self, self._election(identity), base_tags, deadline.remaining()):
            self._check_project(identity, deadline, now)

    def cancel(self):
        if self.leader is not None:
            self.leader.close()

    def _election(self, identity: Identity):
        """One collector per project, location and watched services (what the project scope reads)."""
        if self.leader is None:
            return None
        services = sorted(self.config.services) or [identity.service_name or ""]
        project = identity.project_id or self.config.project_id or ""
        return self.leader.for_scope(f"{project}/{identity.location or ''}/{','.join(services)}")

    # ------------------------------------------------------------------------------------------------- identity

    def _resolve_identity(self, deadline: Deadline) -> Identity:
        configured = {
            name: getattr(self.config, name)
            for name in ("project_id", "location", "service_name", "revision_name", "configuration_name")
        }
        wanted = {"project_id", "location"} | ({"instance_id"} if self.config.tag_instance_id else set())
        missing = {name for name in wanted if not configured.get(name) and name not in self._metadata}
        if missing and time.monotonic() >= self._metadata_next_try:
            try:
                self._metadata.update(self._client.metadata_identity(missing, deadline))
                self._warned.discard("metadata")
            except (GcpError, DeadlineExceeded) as failure:
                # On Cloud Run the metadata server must come back: ask again next run. Elsewhere it is most
                # likely absent, so ask rarely.
                if not os.environ.get("K_SERVICE"):
                    self._metadata_next_try = time.monotonic() + METADATA_RETRY_INTERVAL
                else:
                    self._warn_once(
                        "metadata",
                        f"Cloud Run metadata server unavailable ({failure}); project, "
                        f"location or instance tags are missing until it answers",
                    )
        identity = resolve(configured, os.environ, self._metadata)
        if not identity.on_cloud_run:
            self._log_once(
                "outside",
                "Not on Cloud Run (no K_SERVICE / K_REVISION): instance tags come from the configuration only",
            )
        return identity

    # ------------------------------------------------------------------------------------------------- probes

    def _submit_probes(
        self, results: list[tuple[ProbeSpec, ProbeResult]], app_started: float | None, now: float, base_tags: list[str]
    ) -> None:
        # The startup grace period counts from the app's start when it is visible, else from the first run.
        since_start = now - (app_started or self._first_run_at)
        for spec, result in results:
            verdict = judge(spec, result, self._probe_states[spec.name], since_start)
            tags = [*base_tags, f"probe:{spec.name}", f"probe_type:{spec.kind}"]
            self.gauge("app.probe.latency", result.latency * 1000.0, tags=tags)
            self.gauge("app.probe.success", 1 if result.success else 0, tags=tags)
            self.gauge("app.probe.consecutive_failures", self._probe_states[spec.name].consecutive_failures, tags=tags)
            self.service_check("app.health", STATUS[verdict.status], tags=tags, message=verdict.message)

    # ------------------------------------------------------------------------------------------------- resources

    def _locate_cgroup(self) -> cgroup.Layout | None:
        """The agent's own cgroup (found once)."""
        if self._layout is None:
            self._layout = cgroup.locate(self.config.cgroup_root, cgroup.read_proc_cgroup(), self.config.cgroup_path)
            if self._layout is None:
                self._warn_once(
                    "cgroup-missing",
                    f"No cgroup filesystem under {self.config.cgroup_root}: container "
                    f"resources come from psutil (the whole machine)",
                )
        return self._layout

    def _read_resources(self) -> cgroup.Sample:
        self._locate_cgroup()
        sample = cgroup.CgroupReader(self._layout).read() if self._layout is not None else None
        if sample is not None and sample.unreadable:
            self._warn_once(
                "cgroup-unreadable",
                "Cannot read cgroup files, using psutil for what they hold: " + "; ".join(sample.unreadable),
            )
        return cgroup.fill_from_psutil(sample)

    def _submit_resources(self, sample: cgroup.Sample, tags: list[str]) -> None:
        now = time.monotonic()
        if sample.cpu_usage_seconds is not None:
            previous = self._previous_cpu
            if previous is not None and sample.cpu_usage_seconds >= previous[0] and now > previous[1]:
                self.gauge(
                    "container.cpu.usage", (sample.cpu_usage_seconds - previous[0]) / (now - previous[1]), tags=tags
                )
            self._previous_cpu = (sample.cpu_usage_seconds, now)
        if sample.cpu_limit_cores is not None:
            self.gauge("container.cpu.limit", sample.cpu_limit_cores, tags=tags)
        if sample.cpu_periods is not None:
            self.monotonic_count("container.cpu.periods", sample.cpu_periods, tags=tags)
            self.monotonic_count("container.cpu.throttled_periods", sample.cpu_throttled_periods, tags=tags)
            self.monotonic_count("container.cpu.throttled_time", sample.cpu_throttled_seconds, tags=tags)
        if sample.oom_kills is not None:
            self.monotonic_count("container.memory.oom_kills", sample.oom_kills, tags=tags)
        if sample.pids_current is not None:
            self.gauge("container.pids.current", sample.pids_current, tags=tags)
        if sample.pids_limit is not None:
            self.gauge("container.pids.limit", sample.pids_limit, tags=tags)
        self._submit_memory(sample, tags)

    def _submit_memory(self, sample: cgroup.Sample, tags: list[str]) -> None:
        usage = sample.memory_usage_bytes
        # No cgroup limit (docker-compose without one): the machine's memory is the ceiling.
        limit = sample.memory_limit_bytes or cgroup.host_memory_bytes()
        self.gauge("container.memory.usage", usage, tags=tags)
        self.gauge("container.memory.limit", limit, tags=tags)
        percent = 100.0 * usage / limit if limit else 0.0
        self.gauge("container.memory.usage_pct", percent, tags=tags)
        status, message = memory_status(
            percent, usage, limit, self.config.memory_warning_threshold, self.config.memory_critical_threshold
        )
        self.service_check("container.memory", status, tags=tags, message=message)

    # ------------------------------------------------------------------------------------------------- restarts

    def _app_started_at(self) -> float | None:
        """Start time of the app's process when the agent shares the app's container (same cgroup), else None."""
        if self._app_pattern is None:
            return None
        found = app_process(self._app_pattern)
        if found is None:
            self._warn_once(
                "app-process",
                f"No process matches app_process {self.config.app_process!r}: the app "
                f"runs in another container (PID namespace), so the cgroup figures are "
                f"the agent container's (container:agent); the app's come from Cloud "
                f"Run's per-container series",
            )
            return None
        pid, started = found
        if not cgroup.in_cgroup(self._locate_cgroup(), pid):
            self._warn_once(
                "app-cgroup",
                f"The app's process ({pid}) is in another cgroup than the agent: the "
                f"cgroup figures are the agent container's (container:agent)",
            )
            return None
        return started

    def _check_restarts(self, app_started: float, now: float, tags: list[str]) -> None:
        """The app's restarts and uptime, known only where the agent shares its container."""
        if self._baseline is None:
            self._baseline = Baseline.loads(self.read_persistent_cache(RESTART_CACHE_KEY))
        boot_time = psutil.boot_time()
        current = Baseline(boot_time=boot_time, app_started_at=app_started)
        restart = detect_restart(self._baseline, current)
        total = (self._baseline.restarts_total if self._baseline else 0) + restart.detected
        if restart.detected:
            self.log.info("App container restart detected: %s", restart.reason)
            # Consecutive failures of the old container say nothing about the new one.
            for state in self._probe_states.values():
                state.ever_succeeded = False
            self._first_run_at = now
        self.count("container.restarts", restart.detected, tags=tags)
        self.gauge("container.uptime", max(0.0, now - app_started), tags=tags)
        self._baseline = Baseline(boot_time, app_started, total)
        self.write_persistent_cache(RESTART_CACHE_KEY, self._baseline.dumps())

    # ------------------------------------------------------------------------------------------------- helpers

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.warning(message)

    def _log_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.log.info(message)


def memory_status(percent: float, usage: int, limit: int, warning: float, critical: float) -> tuple[int, str | None]:
    detail = f"memory at {percent:.1f}% of the limit ({usage / 2**20:.0f} MiB of {limit / 2**20:.0f} MiB)"
    if percent >= critical:
        return AgentCheck.CRITICAL, f"{detail}, at or above the critical threshold of {critical:g}%"
    if percent >= warning:
        return AgentCheck.WARNING, f"{detail}, at or above the warning threshold of {warning:g}%"
    return AgentCheck.OK, None


def build_probe_specs(config, environ) -> list[ProbeSpec]:
    """The configured probes; without `probes`, one TCP probe on the app port, like Cloud Run's default
    startup probe. `probes: []` turns probing off."""
    # PORT is in the agent's environment only when the agent runs inside the app's (ingress) container.
    port = config.app_port or int(environ.get(ENV_PORT) or CLOUD_RUN_DEFAULT_PORT)
    if config.probes is None:
        return [ProbeSpec(name="default", kind="tcp", host=config.probe_host, port=port, timeout=1.0)]
    specs = []
    for probe in config.probes:
        common = {
            "name": probe.name,
            "host": config.probe_host,
            "timeout": probe.timeout_seconds,
            "failure_threshold": probe.failure_threshold,
            "startup_grace_period": probe.startup_grace_period,
        }
        if probe.http_get is not None:
            action = probe.http_get
            specs.append(
                ProbeSpec(
                    kind="http",
                    port=action.port or port,
                    path=action.path,
                    headers=tuple((h.name, h.value) for h in action.http_headers),
                    expected_status=parse_status_ranges(action.expected_status),
                    body_contains=action.body_contains,
                    **common,
                )
            )
        else:
            specs.append(ProbeSpec(kind="tcp", port=probe.tcp_socket.port or port, **common))
    return specs
