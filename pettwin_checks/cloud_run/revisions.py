"""Service and revision health from Cloud Run Admin API v2 resources. Pure functions, no I/O.

A Service's `terminalCondition` (type Ready) says whether its latest configuration is serving:
CONDITION_SUCCEEDED, CONDITION_FAILED, or CONDITION_PENDING / CONDITION_RECONCILING while a rollout runs.
`latestCreatedRevision` ahead of `latestReadyRevision` with a failed condition is a failed rollout: traffic
stays on the last ready revision. `trafficStatuses` is the split actually in effect.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SUCCEEDED, FAILED = "CONDITION_SUCCEEDED", "CONDITION_FAILED"
IN_PROGRESS = {"CONDITION_PENDING", "CONDITION_RECONCILING"}
LATEST = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"


def short_name(resource_name: str | None) -> str | None:
    """projects/p/locations/l/services/s/revisions/r -> r (and .../services/s -> s)."""
    return resource_name.rstrip("/").rsplit("/", 1)[-1] if resource_name else None


def location_of(resource_name: str) -> str | None:
    parts = resource_name.split("/")
    return parts[parts.index("locations") + 1] if "locations" in parts[:-1] else None


@dataclass(frozen=True)
class TrafficShare:
    revision: str
    percent: int
    tag: str | None = None


@dataclass(frozen=True)
class ServiceHealth:
    name: str
    location: str | None
    state: str  # terminalCondition.state, "" when absent
    reason: str | None
    message: str | None
    latest_created: str | None
    latest_ready: str | None
    traffic: tuple[TrafficShare, ...] = field(default=())

    @property
    def ready(self) -> bool:
        return self.state == SUCCEEDED

    @property
    def latest_revision_ready(self) -> bool:
        return self.latest_created is not None and self.latest_created == self.latest_ready

    @property
    def rollout_failed(self) -> bool:
        return self.state == FAILED and not self.latest_revision_ready


def parse_service(body: dict) -> ServiceHealth:
    terminal = body.get("terminalCondition") or {}
    latest_ready = short_name(body.get("latestReadyRevision"))
    traffic = []
    for status in body.get("trafficStatuses") or []:
        revision = short_name(status.get("revision"))
        if not revision and status.get("type") == LATEST:
            revision = latest_ready  # a LATEST target serves the newest ready revision
        percent = int(status.get("percent") or 0)
        if revision:
            traffic.append(TrafficShare(revision, percent, status.get("tag") or None))
    name = body.get("name", "")
    return ServiceHealth(
        name=short_name(name) or "",
        location=location_of(name),
        state=str(terminal.get("state") or ""),
        reason=terminal.get("reason") or terminal.get("revisionReason"),
        message=terminal.get("message"),
        latest_created=short_name(body.get("latestCreatedRevision")),
        latest_ready=latest_ready,
        traffic=tuple(traffic),
    )


def revision_failure(revision: dict) -> tuple[str | None, str | None]:
    """(reason, message) of a revision's failed condition, the Ready one preferred."""
    failed = [c for c in revision.get("conditions") or [] if c.get("state") == FAILED and c.get("type") != "Active"]
    failed.sort(key=lambda c: c.get("type") != "Ready")
    for condition in failed:
        reason = condition.get("revisionReason") or condition.get("reason")
        if reason or condition.get("message"):
            return reason, condition.get("message")
    return None, None


def traffic_summary(health: ServiceHealth) -> str:
    shares = [f"{share.revision} ({share.percent}%)" for share in health.traffic if share.percent]
    return ", ".join(shares) if shares else "no revision"


def verdict(
    health: ServiceHealth, failed_reason: str | None = None, failed_message: str | None = None
) -> tuple[str, str | None]:
    """("ok" | "warning" | "critical" | "unknown", message) for the service's revision.ready check."""
    if health.ready and health.latest_revision_ready:
        return "ok", None
    if health.state == FAILED:
        reason = failed_reason or health.reason or "no reason given"
        detail = failed_message or health.message or ""
        revision = health.latest_created or "the latest revision"
        message = f"Service {health.name}: revision {revision} is not ready ({reason})"
        if detail:
            message += f": {detail.strip().rstrip('.')}"
        if health.rollout_failed:
            message += f". Rollout failed; traffic stays on {traffic_summary(health)}"
        return "critical", message
    if health.state in IN_PROGRESS or (health.ready and not health.latest_revision_ready):
        return "warning", (
            f"Service {health.name}: rolling out revision {health.latest_created} "
            f"(latest ready: {health.latest_ready or 'none'}; traffic on {traffic_summary(health)})"
        )
    return "unknown", f"Service {health.name}: no Ready condition in the Admin API answer"
