"""The project scope of `pettwin_cloud_run`: revision readiness and traffic from the Admin API v2, and Cloud Run's
request/instance/probe/utilization series from Cloud Monitoring. Run by one collector per project (or by the
elected leader). A mixin of the check: it submits through the check's methods.
"""

from __future__ import annotations

from datadog_checks.base import AgentCheck

from pettwin_checks.deadline import Deadline, DeadlineExceeded
from pettwin_checks.gcp.collection import FamilyCollector
from pettwin_checks.gcp.errors import GcpError, NotJson, persists_within_run
from pettwin_checks.gcp.families import Lookbacks
from pettwin_checks.gcp.messages import failure_message

from .families import PER_CONTAINER, build_families, container_shape
from .identity import Identity
from .revisions import parse_service, revision_failure, verdict

STATUS = {
    "ok": AgentCheck.OK,
    "warning": AgentCheck.WARNING,
    "critical": AgentCheck.CRITICAL,
    "unknown": AgentCheck.UNKNOWN,
}
SHAPES = {
    "per_container": "every series names its container: reported per container_name",
    "whole_revision": "no series names its container: reported as the whole revision's, tagged container_name:all",
    "mixed": "some series name their container (reported per container_name), others not (container_name:all)",
}


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
            message = self._failure_message("run", project, failure)
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
        collection = self._collector(services).run(project, deadline, now, tags)
        self._say_container_shapes(collection.results)
        status, message = collection.status(
            project=project, session=self._client.session, budget=self.config.collection_timeout
        )
        self._api_status("monitoring", STATUS[status], tags, message)

    def _collector(self, services: list[str]) -> FamilyCollector:
        """The family table for the services watched (they may be learned at run time: K_SERVICE)."""
        if self._families_for != services:
            config = self.config
            families = build_families(services, config.app_container_name)
            lookbacks = Lookbacks(
                config.ingestion_delay, config.initial_lookback, config.max_lookback, config.gauge_lookback
            )
            self._monitoring = FamilyCollector(self._client.session, families, lookbacks, self)
            self._families_for = list(services)
        return self._monitoring

    def _say_container_shapes(self, results) -> None:
        """Once per family and shape (INFO): which shape Google sent, and where app_container_name cannot apply."""
        app = self.config.app_container_name
        for name in PER_CONTAINER:
            shape = container_shape(results.get(name, []))
            if shape not in SHAPES:
                continue
            message = f"Cloud Run {name}: {SHAPES[shape]}"
            if app and shape != "per_container":
                message += f"; app_container_name ({app}) cannot be applied to the series without container_name"
            self._log_once(f"shape:{name}:{shape}", message)

    def _api_status(self, api: str, status: int, tags: list[str], message: str | None = None) -> None:
        self.service_check("api.can_connect", status, tags=[*tags, f"api:{api}"], message=message)

    def _failure_message(self, api: str, project: str, failure: GcpError | DeadlineExceeded) -> str:
        return failure_message(
            failure, api=api, project=project, session=self._client.session, budget=self.config.collection_timeout
        )
