"""`pettwin_cloud_run`: the app container's health seen from its agent sidecar, plus Cloud Run's view of the service.

Instance scope (every sidecar): probes over the shared localhost, cgroup CPU/memory/OOM/pids, uptime and restarts.
Project scope (switch off in all but one collector): revision readiness and traffic from the Admin API v2, and
Cloud Run's request/instance/probe/utilization metrics from Cloud Monitoring.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import replace

import psutil
from datadog_checks.base import AgentCheck

from ..coordination import LeaderElection, collects_here
from ..gcp.deadline import Deadline
from ..gcp.errors import DeadlineExceeded, GcpApiError, GcpAuthError, GcpError
from ..gcp.windows import next_window, window_end
from . import cgroup
from .client import CloudRunClient
from .config_models import ConfigMixin, defaults
from .identity import Identity, identity_tags, resolve
from .probes import ProbeResult, ProbeSpec, ProbeState, judge, parse_status_ranges, run_probe
from .queries import FAMILIES, Family, submissions
from .restarts import Baseline, app_started_at, detect_restart
from .revisions import parse_service, revision_failure, verdict

STATUS = {"ok": AgentCheck.OK, "warning": AgentCheck.WARNING, "critical": AgentCheck.CRITICAL,
          "unknown": AgentCheck.UNKNOWN}
RESTART_CACHE_KEY = "restart_baseline"
# The role each API needs, named in the message when Google answers 403.
ROLES = {"run": "roles/run.viewer", "monitoring": "roles/monitoring.viewer"}
API_NAMES = {"run": "Cloud Run Admin API", "monitoring": "Cloud Monitoring API"}


class PettwinCloudRunCheck(AgentCheck, ConfigMixin):
    __NAMESPACE__ = "pettwin.cloud_run"

    def __init__(self, name, init_config, instances):
        super().__init__(name, init_config, instances)
        # Validate now so a bad option fails at init, naming the field.
        self.load_configuration_models()
        self._probe_specs = build_probe_specs(self.config, os.environ)
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
        self.leader = None
        self._project_scope = self.config.collect_revision_health or self.config.collect_cloud_run_metrics
        if self.config.leader_election and self._project_scope:
            self.leader = LeaderElection.from_config(
                self.config.leader_election, name, str(self.config.project_id), self.config.min_collection_interval,
                self.log,
            )

    # ------------------------------------------------------------------------------------------------- run

    def check(self, _):
        deadline = Deadline(self.config.run_budget)
        # Probes first: a slow metadata server or API must not eat into the app's probe timeouts.
        probe_results = [(spec, run_probe(replace(spec, timeout=deadline.timeout(spec.timeout))))
                         for spec in self._probe_specs]
        identity = self._resolve_identity(deadline)
        base_tags = [*identity_tags(identity, self.config.tag_instance_id), *self.config.tags]
        now = time.time()
        started = self._app_started_at()
        sample = self._read_resources() if self.config.collect_container_resources else None
        self._check_restarts(sample, started, now, base_tags)
        self._submit_probes(probe_results, started, now, base_tags)
        if sample is not None:
            self._submit_resources(sample, base_tags)
        if self._project_scope and collects_here(self, self.leader, base_tags):
            self._check_project(identity, deadline, now)

    def cancel(self):
        if self.leader is not None:
            self.leader.close()

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
            except GcpError as failure:
                # On Cloud Run the metadata server must come back: ask again next run. Elsewhere it is most
                # likely absent, so ask rarely.
                if not os.environ.get("K_SERVICE"):
                    self._metadata_next_try = time.monotonic() + defaults.METADATA_RETRY_INTERVAL
                else:
                    self._warn_once("metadata", f"Cloud Run metadata server unavailable ({failure}); project, "
                                                f"location or instance tags are missing until it answers")
        identity = resolve(configured, os.environ, self._metadata)
        if not identity.on_cloud_run:
            self._log_once("outside", "Not on Cloud Run (no K_SERVICE / K_REVISION): instance tags come from the "
                                      "configuration only")
        return identity

    # ------------------------------------------------------------------------------------------------- probes

    def _submit_probes(self, results: list[tuple[ProbeSpec, ProbeResult]], app_started: float | None, now: float,
                       base_tags: list[str]) -> None:
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

    def _read_resources(self) -> cgroup.Sample:
        if self._layout is None:
            self._layout = cgroup.locate(self.config.cgroup_root, cgroup.read_proc_cgroup(), self.config.cgroup_path)
            if self._layout is None:
                self._warn_once("cgroup-missing", f"No cgroup filesystem under {self.config.cgroup_root}: container "
                                                  f"resources come from psutil (the whole machine)")
        sample = cgroup.CgroupReader(self._layout).read() if self._layout is not None else None
        if sample is not None and sample.unreadable:
            self._warn_once("cgroup-unreadable", "Cannot read cgroup files, using psutil for what they hold: "
                                                 + "; ".join(sample.unreadable))
        return cgroup.fill_from_psutil(sample)

    def _submit_resources(self, sample: cgroup.Sample, tags: list[str]) -> None:
        now = time.monotonic()
        if sample.cpu_usage_seconds is not None:
            previous = self._previous_cpu
            if previous is not None and sample.cpu_usage_seconds >= previous[0] and now > previous[1]:
                self.gauge("container.cpu.usage", (sample.cpu_usage_seconds - previous[0]) / (now - previous[1]),
                           tags=tags)
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
        status, message = memory_status(percent, usage, limit, self.config.memory_warning_threshold,
                                        self.config.memory_critical_threshold)
        self.service_check("container.memory", status, tags=tags, message=message)

    # ------------------------------------------------------------------------------------------------- restarts

    def _app_started_at(self) -> float | None:
        if self._app_pattern is None:
            return None
        started = app_started_at(self._app_pattern)
        if started is None:
            self._warn_once("app-process", f"No process matches app_process {self.config.app_process!r} (is the app "
                                           f"in another PID namespace?); restarts are detected from cgroup counters")
        return started

    def _check_restarts(self, sample: cgroup.Sample | None, app_started: float | None, now: float,
                        tags: list[str]) -> None:
        if self._baseline is None:
            self._baseline = Baseline.loads(self.read_persistent_cache(RESTART_CACHE_KEY))
        boot_time = psutil.boot_time()
        # Only a cgroup counter says anything about this container; psutil's counts the whole machine.
        cpu = sample.cpu_usage_seconds if sample is not None and sample.source.startswith("cgroup") else None
        current = Baseline(boot_time=boot_time, app_started_at=app_started, cpu_usage_seconds=cpu)
        restart = detect_restart(self._baseline, current)
        total = (self._baseline.restarts_total if self._baseline else 0) + restart.detected
        if restart.detected:
            self.log.info("App container restart detected: %s", restart.reason)
            # Consecutive failures of the old container say nothing about the new one.
            for state in self._probe_states.values():
                state.ever_succeeded = False
            self._first_run_at = now
        self.count("container.restarts", restart.detected, tags=tags)
        self.gauge("instance.uptime", max(0.0, now - boot_time), tags=tags)
        if app_started is not None:
            self.gauge("container.uptime", max(0.0, now - app_started), tags=tags)
        self._baseline = Baseline(boot_time, app_started, cpu, total)
        self.write_persistent_cache(RESTART_CACHE_KEY, self._baseline.dumps())

    # ------------------------------------------------------------------------------------------------- project scope

    def _check_project(self, identity: Identity, deadline: Deadline, now: float) -> None:
        project = identity.project_id or self._discover_project(deadline)
        if not project:
            self._warn_once("no-project", "Project-scope collection is on but no project is known: set project_id "
                                          "(or run where the metadata server or a credentials file names it)")
            return
        services = list(self.config.services) or ([identity.service_name] if identity.service_name else [])
        tags = [f"project_id:{project}", *self.config.tags]
        if self.config.collect_revision_health:
            self._check_revisions(project, identity.location, services, tags, deadline)
        if self.config.collect_cloud_run_metrics:
            self._collect_monitoring(project, services, tags, deadline, now)

    def _discover_project(self, deadline: Deadline) -> str | None:
        try:
            return self._client.credentials.discover_project_id(deadline)
        except GcpError:
            return None

    def _check_revisions(self, project: str, location: str | None, services: list[str], tags: list[str],
                         deadline: Deadline) -> None:
        if not location:
            self._warn_once("no-location", "Revision health needs a location: set `location` (the Cloud Run region)")
            return
        location_tags = [*tags, f"location:{location}"]
        try:
            bodies = self._client.list_services(project, location, deadline)
        except GcpError as failure:
            message = self._api_failure_message("run", project, failure)
            self._api_status("run", AgentCheck.CRITICAL, location_tags, message)
            for service in services:
                self.service_check("revision.ready", AgentCheck.UNKNOWN, tags=[*location_tags,
                                   f"service_name:{service}"], message=message)
            return
        self._api_status("run", AgentCheck.OK, location_tags)
        found = {}
        for body in bodies:
            health = parse_service(body)
            if not services or health.name in services:
                found[health.name] = health
        for service in services:
            if service not in found:
                self.service_check("revision.ready", AgentCheck.UNKNOWN,
                                   tags=[*location_tags, f"service_name:{service}"],
                                   message=f"Service {service} not found in {project}/{location}")
        for name, health in sorted(found.items()):
            service_tags = [*tags, f"location:{health.location or location}", f"service_name:{name}"]
            self.gauge("service.ready", 1 if health.ready else 0, tags=service_tags)
            self.gauge("service.latest_revision_ready", 1 if health.latest_revision_ready else 0, tags=service_tags)
            for share in health.traffic:
                share_tags = [*service_tags, f"revision_name:{share.revision}"]
                if share.tag:
                    share_tags.append(f"traffic_tag:{share.tag}")
                self.gauge("service.traffic.percent", share.percent, tags=share_tags)
            reason = detail = None
            if health.state == "CONDITION_FAILED" and health.latest_created:
                # One more call, only when something failed, to name the revision's own reason.
                try:
                    revision = self._client.get_revision(
                        f"projects/{project}/locations/{health.location or location}/services/{name}/revisions/"
                        f"{health.latest_created}", deadline)
                    reason, detail = revision_failure(revision)
                except GcpError as failure:
                    self.log.debug("Could not read revision %s: %s", health.latest_created, failure)
            status, message = verdict(health, reason, detail)
            self.service_check("revision.ready", STATUS[status], tags=service_tags, message=message)

    def _collect_monitoring(self, project: str, services: list[str], tags: list[str], deadline: Deadline,
                            now: float) -> None:
        settled = window_end(now, self.config.metrics_delay)
        api_tags = [*tags]
        failed = False
        for family in FAMILIES:
            window = self._family_window(project, family, now, settled)
            if window is None:
                continue
            start, end = window
            try:
                result = self._client.list_time_series(project, family.query(services), start, end, deadline)
            except GcpError as failure:
                failed = True
                self._api_status("monitoring", AgentCheck.CRITICAL, api_tags,
                                 self._api_failure_message("monitoring", project, failure))
                if isinstance(failure, (GcpAuthError, DeadlineExceeded)) or (
                        isinstance(failure, GcpApiError) and (failure.permission_denied or failure.status == 0)):
                    return  # the other families would fail the same way
                continue
            if result.problems:
                self.warning("Cloud Monitoring %s: skipped malformed data: %s", family.metric_type,
                             "; ".join(result.problems[:3]))
            for submission in submissions(family, result.series, start, end):
                submit = self.count if submission.kind == "count" else self.gauge
                submit(submission.name, submission.value, tags=[*tags, *submission.tags])
            if family.shape == "count":
                self.write_persistent_cache(self._window_key(project, family), str(end))
        if not failed:
            self._api_status("monitoring", AgentCheck.OK, api_tags)

    def _window_key(self, project: str, family: Family) -> str:
        return f"window_end:{project}:{family.key}"

    def _family_window(self, project: str, family: Family, now: float, settled: float) -> tuple[float, float] | None:
        if family.shape != "count":
            return settled - self.config.metrics_window, settled
        cached = self.read_persistent_cache(self._window_key(project, family))
        try:
            last_end = float(cached) if cached else None
        except ValueError:
            last_end = None
        window = next_window(now, last_end, ingestion_delay=self.config.metrics_delay,
                             initial_lookback=self.config.metrics_window, max_lookback=defaults.MAX_LOOKBACK)
        return (window.start, window.end) if window else None

    def _api_status(self, api: str, status: int, tags: list[str], message: str | None = None) -> None:
        self.service_check("api.can_connect", status, tags=[*tags, f"api:{api}"], message=message)

    def _api_failure_message(self, api: str, project: str, failure: GcpError) -> str:
        name = API_NAMES[api]
        if isinstance(failure, GcpApiError) and failure.permission_denied:
            return (f"{name} denied access on project {project} ({failure}). Grant the agent's service account "
                    f"{ROLES[api]} on the project")
        if isinstance(failure, GcpAuthError):
            return f"{name}: {failure}. Set credentials_path or run with an attached service account"
        if isinstance(failure, DeadlineExceeded) or (isinstance(failure, GcpApiError) and failure.status == 0):
            return (f"{name} did not answer within the run budget of {self.config.run_budget:g} s ({failure}); "
                    f"the next run retries")
        return f"{name}: {failure}"

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
    port = config.app_port or int(environ.get("PORT") or 8080)
    if config.probes is None:
        return [ProbeSpec(name="default", kind="tcp", host=config.probe_host, port=port, timeout=1.0)]
    specs = []
    for probe in config.probes:
        common = dict(name=probe.name, host=config.probe_host, timeout=probe.timeout_seconds,
                      failure_threshold=probe.failure_threshold, startup_grace_period=probe.startup_grace_period)
        if probe.http_get is not None:
            action = probe.http_get
            specs.append(ProbeSpec(kind="http", port=action.port or port, path=action.path,
                                   headers=tuple((h.name, h.value) for h in action.http_headers),
                                   expected_status=parse_status_ranges(action.expected_status),
                                   body_contains=action.body_contains, **common))
        else:
            specs.append(ProbeSpec(kind="tcp", port=probe.tcp_socket.port or port, **common))
    return specs
