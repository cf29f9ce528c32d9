"""Cloud Run Admin API v2 resources (Service, Revision) rendered from a scenario's `cloud_run.services`."""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import uuid

from .errors import ApiError, invalid_argument, not_found
from .monitoring_query import format_time
from .scenario import Scenario

# A revision that failed to start, as Cloud Run reports the most common rollout failure.
DEFAULT_FAILURE_MESSAGE = (
    "The user-provided container failed to start and listen on the port defined provided by the PORT=8080 "
    "environment variable within the allocated timeout. This can happen when the container port is "
    "misconfigured or if the timeout is too short."
)


def _uid(*parts: str) -> str:
    return str(uuid.UUID(hashlib.md5("/".join(parts).encode()).hexdigest()))


def _etag(resource: dict) -> str:
    return '"' + hashlib.sha1(repr(sorted(resource.items())).encode()).hexdigest()[:20] + '"'


def _condition(
    ctype: str,
    state: str,
    when: str,
    *,
    reason: str | None = None,
    revision_reason: str | None = None,
    message: str | None = None,
    severity: str | None = None,
) -> dict:
    condition = {"type": ctype, "state": state, "lastTransitionTime": when}
    if message:
        condition["message"] = message
    if severity:
        condition["severity"] = severity
    if reason:
        condition["reason"] = reason
    if revision_reason:
        condition["revisionReason"] = revision_reason
    return condition


def _page(field: str, items: list, render, page_size: int, page_token: str, scope: str) -> dict:
    """One page of a list method: `page_size` items from the token's offset (no page size: all of them)."""
    offset = _page_offset(page_token, scope) if page_token else 0
    end = len(items) if page_size <= 0 else min(len(items), offset + page_size)
    body: dict = {}
    if offset < end:
        body[field] = [render(item) for item in items[offset:end]]
    if end < len(items):
        body["nextPageToken"] = base64.urlsafe_b64encode(f"{end}:{scope}".encode()).decode()
    return body


def _page_offset(token: str, scope: str) -> int:
    try:
        offset, seen = base64.urlsafe_b64decode(token.encode()).decode().split(":", 1)
        if seen == scope:
            return int(offset)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        pass
    raise invalid_argument("Invalid page token.", "page_token")


def _deep_merge(base: dict, overrides: dict) -> dict:
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


class CloudRunAdmin:
    def __init__(self, scenario: Scenario, now: float):
        self.scenario = scenario
        self.now = now

    # ---------------------------------------------------------------- lookup

    def _specs(self, location: str) -> list[dict]:
        return [s for s in self.scenario.run_services if location in {"-", s.get("location", self.scenario.region)}]

    def _check_project(self, project: str) -> None:
        if project not in {self.scenario.project_id, self.scenario.project_number}:
            raise ApiError(
                403, f"Permission 'run.services.list' denied on resource 'projects/{project}' (or it may not exist)."
            )

    def _service_spec(self, project: str, location: str, name: str) -> dict:
        self._check_project(project)
        for spec in self._specs(location):
            if spec["name"] == name:
                return spec
        raise not_found(
            f"Resource '{name}' of kind 'SERVICE' in region '{location}' in project '{project}' does not exist."
        )

    # ---------------------------------------------------------------- rendering

    def _time(self, minutes_ago: float) -> str:
        return format_time(int(self.now // 60) * 60 - minutes_ago * 60)

    def _revision_created(self, service: dict, index: int) -> str:
        # Default ages: one hour apart, the newest revision an hour old.
        revision = service["revisions"][index]
        return self._time(float(revision.get("created_minutes_ago", 60 * (len(service["revisions"]) - index))))

    def _revision(self, service: dict, index: int) -> dict:
        scenario = self.scenario
        location = service.get("location", scenario.region)
        rev = service["revisions"][index]
        created = self._revision_created(service, index)
        name = f"projects/{scenario.project_id}/locations/{location}/services/{service['name']}/revisions/{rev['name']}"
        serving = any(t.get("revision") == rev["name"] and t.get("percent", 0) > 0 for t in self._traffic(service))
        conditions = _revision_conditions(rev, created, serving)
        generation = str(rev.get("generation", 1))
        container = _revision_container(service, rev, location, scenario.project_id)
        revision = {
            "name": name,
            "uid": _uid(name),
            "generation": generation,
            "labels": {"managed-by": "gcloud"},
            "createTime": created,
            "updateTime": created,
            "launchStage": "GA",
            "service": service["name"],
            "scaling": {
                "minInstanceCount": rev.get("min_instances", 0),
                "maxInstanceCount": rev.get("max_instances", 100),
            },
            "maxInstanceRequestConcurrency": rev.get("concurrency", 80),
            "timeout": "300s",
            "serviceAccount": scenario.service_account,
            "containers": [container],
            "executionEnvironment": "EXECUTION_ENVIRONMENT_GEN2",
            "conditions": conditions,
            "observedGeneration": generation,
            "logUri": (
                f"https://console.cloud.google.com/logs/viewer?project={scenario.project_id}"
                f"&resource=cloud_run_revision/service_name/{service['name']}/revision_name/{rev['name']}"
            ),
        }
        if rev.get("min_instances") is None:
            revision["scaling"].pop("minInstanceCount")
        revision["etag"] = _etag(revision)
        return _deep_merge(revision, rev.get("overrides") or {})

    def _traffic(self, service: dict) -> list[dict]:
        explicit = [
            {"revision": r["name"], "percent": int(r["traffic"])} for r in service["revisions"] if r.get("traffic")
        ]
        if explicit:
            return explicit
        ready = [r for r in service["revisions"] if r.get("ready", True)]
        return [{"revision": ready[-1]["name"], "percent": 100}] if ready else []

    def _service(self, service: dict) -> dict:
        scenario = self.scenario
        location = service.get("location", scenario.region)
        name = f"projects/{scenario.project_id}/locations/{location}/services/{service['name']}"
        revisions = service["revisions"]
        latest_created = revisions[-1]
        ready = [r for r in revisions if r.get("ready", True)]
        generation = str(service.get("generation", len(revisions)))
        created = self._revision_created(service, 0)
        updated = self._revision_created(service, len(revisions) - 1)
        revision_path = f"{name}/revisions/"
        traffic = self._traffic(service)
        terminal, conditions = _service_conditions(latest_created, updated)
        spec_traffic = _spec_traffic(service, traffic)
        body = {
            "name": name,
            "uid": _uid(name),
            "generation": generation,
            "labels": service.get("labels", {"app": "pettwin"}),
            "createTime": created,
            "updateTime": updated,
            "creator": f"deployer@{scenario.project_id}.iam.gserviceaccount.com",
            "lastModifier": f"deployer@{scenario.project_id}.iam.gserviceaccount.com",
            "ingress": "INGRESS_TRAFFIC_ALL",
            "launchStage": "GA",
            "template": {
                "scaling": {"maxInstanceCount": latest_created.get("max_instances", 100)},
                "containers": [
                    {
                        "image": latest_created.get("image", service.get("image", "")),
                        "ports": [{"name": "http1", "containerPort": 8080}],
                    }
                ],
                "maxInstanceRequestConcurrency": latest_created.get("concurrency", 80),
                "serviceAccount": scenario.service_account,
            },
            "traffic": spec_traffic,
            "observedGeneration": generation,
            "terminalCondition": terminal,
            "conditions": conditions,
            "latestCreatedRevision": revision_path + latest_created["name"],
            # After reconciliation the statuses mirror the spec: LATEST stays LATEST (no revision named).
            "trafficStatuses": [dict(t) for t in spec_traffic],
            "uri": f"https://{service['name']}-{scenario.project_number}.{location}.run.app",
            "urls": [f"https://{service['name']}-{scenario.project_number}.{location}.run.app"],
        }
        if ready:
            body["latestReadyRevision"] = revision_path + ready[-1]["name"]
        body["etag"] = _etag(body)
        return _deep_merge(body, service.get("overrides") or {})

    # ---------------------------------------------------------------- API methods

    def list_services(self, project: str, location: str, page_size: int = 0, page_token: str = "") -> dict:
        if location == "-":
            raise invalid_argument('Location must be a valid region; it cannot be the "-" wildcard.', "parent")
        self._check_project(project)
        return _page("services", self._specs(location), self._service, page_size, page_token, f"{project}/{location}")

    def get_service(self, project: str, location: str, name: str) -> dict:
        return self._service(self._service_spec(project, location, name))

    def list_revisions(
        self, project: str, location: str, service: str, page_size: int = 0, page_token: str = ""
    ) -> dict:
        """Newest first, as the API lists them; service "-" lists the revisions of every service in the location
        (run v2 revisions.list: "To list all Revisions across Services, use "-" instead of Service name")."""
        if service == "-":
            self._check_project(project)
            specs = self._specs(location)
        else:
            specs = [self._service_spec(project, location, service)]
        items = [(spec, index) for spec in specs for index in reversed(range(len(spec["revisions"])))]
        return _page(
            "revisions",
            items,
            lambda item: self._revision(*item),
            page_size,
            page_token,
            f"{project}/{location}/{service}",
        )

    def get_revision(self, project: str, location: str, service: str, revision: str) -> dict:
        spec = self._service_spec(project, location, service)
        for index, rev in enumerate(spec["revisions"]):
            if rev["name"] == revision:
                return self._revision(spec, index)
        raise not_found(
            f"Resource '{revision}' of kind 'REVISION' in region '{location}' in project '{project}' does not exist."
        )


def _revision_conditions(rev: dict, created: str, serving: bool) -> list[dict]:
    """A revision's conditions: Ready with its resources and container, retired when it serves no traffic; or failed
    as the scenario's `failure` says."""
    if rev.get("ready", True):
        conditions = [
            _condition("ResourcesAvailable", "CONDITION_SUCCEEDED", created),
            _condition("ContainerHealthy", "CONDITION_SUCCEEDED", created),
            _condition("Ready", "CONDITION_SUCCEEDED", created),
        ]
        if not serving:
            conditions.append(
                _condition(
                    "Active",
                    "CONDITION_FAILED",
                    created,
                    revision_reason="RETIRED",
                    severity="INFO",
                    message="Revision retired.",
                )
            )
    else:
        failure = rev.get("failure") or {}
        message = failure.get("message", DEFAULT_FAILURE_MESSAGE)
        failed_type = failure.get("type", "ContainerHealthy")
        reason = failure.get("reason", "HEALTH_CHECK_CONTAINER_ERROR")
        conditions = [_condition("ResourcesAvailable", "CONDITION_SUCCEEDED", created)]
        if failed_type != "ResourcesAvailable":
            conditions.append(
                _condition(
                    failed_type,
                    "CONDITION_FAILED",
                    created,
                    message=message,
                    revision_reason=reason,
                    severity="ERROR",
                )
            )
        else:
            conditions[0] = _condition(
                "ResourcesAvailable",
                "CONDITION_FAILED",
                created,
                message=message,
                revision_reason=reason,
                severity="ERROR",
            )
        conditions.append(
            _condition("Ready", "CONDITION_FAILED", created, message=message, revision_reason=reason, severity="ERROR")
        )
    return conditions


def _revision_container(service: dict, rev: dict, location: str, project_id: str) -> dict:
    """The revision's one container as the Admin API shows it: the revision's image, else the service's, else one in
    the project's Artifact Registry."""
    return {
        "name": "app",
        "image": rev.get(
            "image",
            service.get("image", f"{location}-docker.pkg.dev/{project_id}/pettwin/{service['name']}:latest"),
        ),
        "ports": [{"name": "http1", "containerPort": 8080}],
        "resources": {"limits": {"cpu": "1000m", "memory": "512Mi"}, "cpuIdle": True, "startupCpuBoost": True},
        "startupProbe": {
            "timeoutSeconds": 240,
            "periodSeconds": 240,
            "failureThreshold": 1,
            "tcpSocket": {"port": 8080},
        },
    }


def _service_conditions(latest_created: dict, updated: str) -> tuple[dict, list[dict]]:
    """The service's terminal condition and its others: Ready, or failed because its latest revision is not."""
    if latest_created.get("ready", True):
        terminal = _condition("Ready", "CONDITION_SUCCEEDED", updated)
        return terminal, [
            _condition("RoutesReady", "CONDITION_SUCCEEDED", updated),
            _condition("ConfigurationsReady", "CONDITION_SUCCEEDED", updated),
        ]
    failure = latest_created.get("failure") or {}
    detail = failure.get("message", DEFAULT_FAILURE_MESSAGE)
    message = f"Revision '{latest_created['name']}' is not ready and cannot serve traffic. {detail}"
    failed = {"message": message, "severity": "ERROR", "reason": "REVISION_FAILED"}
    return _condition("Ready", "CONDITION_FAILED", updated, **failed), [
        _condition("RoutesReady", "CONDITION_SUCCEEDED", updated),
        _condition("ConfigurationsReady", "CONDITION_FAILED", updated, **failed),
    ]


def _spec_traffic(service: dict, traffic: list[dict]) -> list[dict]:
    """The service's traffic as its spec says it: to the latest revision, or to the revisions named."""
    if service.get("traffic_latest", True) and not any(r.get("traffic") for r in service["revisions"]):
        return [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}]
    return [
        {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": t["revision"], "percent": t["percent"]}
        for t in traffic
    ]
