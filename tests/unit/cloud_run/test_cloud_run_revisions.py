"""Service/revision health rules and Monitoring answer -> metrics, on hand-written API bodies."""

from __future__ import annotations

import pytest

from pettwin_checks.cloud_run.revisions import parse_service, revision_failure, verdict

pytestmark = pytest.mark.unit

BASE = "projects/p/locations/europe-west1/services/api"


def service(state, created="api-00003", ready="api-00002", traffic=None, **terminal):
    return {
        "name": BASE,
        "terminalCondition": {"type": "Ready", "state": state, **terminal},
        "latestCreatedRevision": f"{BASE}/revisions/{created}",
        "latestReadyRevision": f"{BASE}/revisions/{ready}" if ready else None,
        "trafficStatuses": traffic
        if traffic is not None
        else [
            {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": "api-00002", "percent": 90},
            {
                "type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION",
                "revision": "api-00001",
                "percent": 10,
                "tag": "canary",
            },
        ],
    }


def test_healthy_service():
    health = parse_service(service("CONDITION_SUCCEEDED", created="api-00002"))
    assert (health.name, health.location, health.ready, health.latest_revision_ready) == (
        "api",
        "europe-west1",
        True,
        True,
    )
    assert [(t.revision, t.percent, t.tag) for t in health.traffic] == [
        ("api-00002", 90, None),
        ("api-00001", 10, "canary"),
    ]
    assert verdict(health) == ("ok", None)


def test_failed_rollout_names_reason_and_traffic():
    health = parse_service(
        service("CONDITION_FAILED", reason="REVISION_FAILED", message="Revision 'api-00003' is not ready.")
    )
    assert health.rollout_failed
    assert verdict(health, "CONTAINER_MISSING", "Image not found.") == (
        "critical",
        (
            "Service api: revision api-00003 is not ready (CONTAINER_MISSING): Image not found. Rollout "
            "failed; traffic stays on api-00002 (90%), api-00001 (10%)"
        ),
    )
    # Without the revision's own condition, the service's reason is used.
    assert verdict(health)[1].startswith("Service api: revision api-00003 is not ready (REVISION_FAILED)")


def test_rollout_in_progress_is_a_warning():
    health = parse_service(service("CONDITION_RECONCILING"))
    assert verdict(health) == (
        "warning",
        (
            "Service api: rolling out revision api-00003 (latest ready: api-00002; "
            "traffic on api-00002 (90%), api-00001 (10%))"
        ),
    )


def test_latest_traffic_target_resolves_to_latest_ready_and_missing_condition_is_unknown():
    body = service("", created="api-00002", traffic=[{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}])
    health = parse_service(body)
    assert [(t.revision, t.percent) for t in health.traffic] == [("api-00002", 100)]
    assert verdict(health)[0] == "unknown"


def test_revision_failure_prefers_ready_and_ignores_retired():
    revision = {
        "conditions": [
            {"type": "Active", "state": "CONDITION_FAILED", "revisionReason": "RETIRED"},
            {
                "type": "ContainerHealthy",
                "state": "CONDITION_FAILED",
                "revisionReason": "HEALTH_CHECK_CONTAINER_ERROR",
                "message": "container failed",
            },
            {
                "type": "Ready",
                "state": "CONDITION_FAILED",
                "revisionReason": "HEALTH_CHECK_CONTAINER_ERROR",
                "message": "not ready",
            },
        ]
    }
    assert revision_failure(revision) == ("HEALTH_CHECK_CONTAINER_ERROR", "not ready")
    assert revision_failure({"conditions": [{"type": "Ready", "state": "CONDITION_SUCCEEDED"}]}) == (None, None)
