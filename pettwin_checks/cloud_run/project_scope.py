"""The project scope of `pettwin_cloud_run`: revision readiness and traffic from the Admin API v2, and Cloud Run's
request/instance/probe/utilization series from Cloud Monitoring. Run by one collector per project (or by the
elected leader). A mixin of the check: it submits through the check's methods.
"""

from __future__ import annotations

from datadog_checks.base import AgentCheck

from ..deadline import Deadline, DeadlineExceeded
from ..gcp.errors import GcpApiError, GcpAuthError, GcpError, NotJson, persists_within_run
from ..gcp.scopes import is_scope_refusal
from ..gcp.windows import next_window, window_end
from .identity import Identity
from .queries import FAMILIES, Family, submissions
from .revisions import parse_service, revision_failure, verdict

STATUS = {
    "ok": AgentCheck.OK,
    "warning": AgentCheck.WARNING,
    "critical": AgentCheck.CRITICAL,
    "unknown": AgentCheck.UNKNOWN,
}
# The role each API needs, named in the message when Google answers 403.
ROLES = {"run": "roles/run.viewer", "monitoring": "roles/monitoring.viewer"}
API_NAMES = {"run": "Cloud Run Admin API", "monitoring": "Cloud Monitoring API"}
# After an outage, count at most this much missed history (Monitoring keeps far more, but a run must stay cheap).
MAX_LOOKBACK = 3600.0


class ProjectScope:
    def _check_project(self, identity: Identity, deadline: Deadline, now: float) -> None:
        project = identity.project_id or self._discover_project(deadline)
        if not project:
            self._warn_once(
                "no-project",
                "Project-scope collection is on but no project is known: set project_id "
                "(or run where the metadata server or a credentials file names it)",
            )
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
        except (GcpError, DeadlineExceeded):
            return None

    def _check_revisions(
        self, project: str, location: str | None, services: list[str], tags: list[str], deadline: Deadline
    ) -> None:
        if not location:
            self._warn_once("no-location", "Revision health needs a location: set `location` (the Cloud Run region)")
            return
        location_tags = [*tags, f"location:{location}"]
        try:
            bodies = self._client.list_services(project, location, deadline)
        except (GcpError, DeadlineExceeded) as failure:
            message = self._api_failure_message("run", project, failure)
            status = AgentCheck.WARNING if isinstance(failure, NotJson) else AgentCheck.CRITICAL
            self._api_status("run", status, location_tags, message)
            for service in services:
                self.service_check(
                    "revision.ready",
                    AgentCheck.UNKNOWN,
                    tags=[*location_tags, f"service_name:{service}"],
                    message=message,
                )
            return
        self._api_status("run", AgentCheck.OK, location_tags)
        found = {}
        for body in bodies:
            health = parse_service(body)
            if not services or health.name in services:
                found[health.name] = health
        for service in services:
            if service not in found:
                self.service_check(
                    "revision.ready",
                    AgentCheck.UNKNOWN,
                    tags=[*location_tags, f"service_name:{service}"],
                    message=f"Service {service} not found in {project}/{location}",
                )
        revisions_refused = False
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
            if health.state == "CONDITION_FAILED" and health.latest_created and not revisions_refused:
                # One more call, only when something failed, to name the revision's own reason.
                try:
                    revision = self._client.get_revision(
                        f"projects/{project}/locations/{health.location or location}/services/{name}/revisions/"
                        f"{health.latest_created}",
                        deadline,
                    )
                    reason, detail = revision_failure(revision)
                except (GcpError, DeadlineExceeded) as failure:
                    self.log.debug("Could not read revision %s: %s", health.latest_created, failure)
                    revisions_refused = persists_within_run(failure)
            status, message = verdict(health, reason, detail)
            self.service_check("revision.ready", STATUS[status], tags=service_tags, message=message)

    def _collect_monitoring(
        self, project: str, services: list[str], tags: list[str], deadline: Deadline, now: float
    ) -> None:
        settled = window_end(now, self.config.metrics_delay)
        failures: list[str] = []
        stopped = None  # a failure that would repeat for every family: no more calls to Monitoring this run
        for family in FAMILIES:
            window = self._family_window(project, family, now, settled)
            if window is None:
                continue
            start, end = window
            try:
                query = family.query(services, self.config.app_container_name)
                result = self._client.list_time_series(project, query, start, end, deadline)
            except (GcpError, DeadlineExceeded) as failure:
                if persists_within_run(failure):
                    stopped = failure
                    break
                failures.append(f"{family.key}: {failure}")
                continue
            if result.problems:
                self.warning(
                    "Cloud Monitoring %s: skipped malformed data: %s",
                    family.metric_type,
                    "; ".join(result.problems[:3]),
                )
            for submission in submissions(family, result.series, start, end):
                submit = self.count if submission.kind == "count" else self.gauge
                submit(submission.name, submission.value, tags=[*tags, *submission.tags])
            if family.shape == "count":
                self.write_persistent_cache(self._window_key(project, family), str(end))
        # One api.can_connect per run, whatever failed.
        if stopped is not None:
            status = AgentCheck.WARNING if isinstance(stopped, NotJson) else AgentCheck.CRITICAL
            self._api_status("monitoring", status, tags, self._api_failure_message("monitoring", project, stopped))
        elif failures:
            self._api_status(
                "monitoring",
                AgentCheck.WARNING,
                tags,
                "Cloud Monitoring API refused some queries: " + "; ".join(failures),
            )
        else:
            self._api_status("monitoring", AgentCheck.OK, tags)

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
        window = next_window(
            now,
            last_end,
            ingestion_delay=self.config.metrics_delay,
            initial_lookback=self.config.metrics_window,
            max_lookback=MAX_LOOKBACK,
        )
        return (window.start, window.end) if window else None

    def _api_status(self, api: str, status: int, tags: list[str], message: str | None = None) -> None:
        self.service_check("api.can_connect", status, tags=[*tags, f"api:{api}"], message=message)

    def _api_failure_message(self, api: str, project: str, failure: GcpError) -> str:
        name = API_NAMES[api]
        if isinstance(failure, GcpApiError) and failure.permission_denied:
            if is_scope_refusal(failure):
                remedy = self._client.session.denial_remedy(failure, ROLES[api])
                return f"{name} refused the token on project {project}: {remedy}"
            return (
                f"{name} denied access on project {project} ({failure}). Grant the agent's service account "
                f"{ROLES[api]} on the project"
            )
        if isinstance(failure, GcpApiError) and failure.status == 401:
            return (
                f"{name} rejected the access token from {self._client.credentials.source} even after a refresh "
                f"({failure.message}): check that credential source"
            )
        if isinstance(failure, NotJson):
            return (
                f"{name} answered with something other than its JSON ({failure}): a proxy or an endpoint "
                f"override ({api}_endpoint) answers instead of Google; no more calls to it this run"
            )
        if isinstance(failure, GcpApiError) and failure.retryable and failure.status:
            return f"{name}: {failure} (after retries); no more calls to it this run, the next run tries again"
        if isinstance(failure, GcpAuthError):
            return f"{name}: {failure}. Set credentials_path or run with an attached service account"
        if isinstance(failure, DeadlineExceeded) or (isinstance(failure, GcpApiError) and failure.status == 0):
            return (
                f"{name} did not answer within the run budget of {self.config.run_budget:g} s ({failure}); "
                f"the next run retries"
            )
        return f"{name}: {failure}"
