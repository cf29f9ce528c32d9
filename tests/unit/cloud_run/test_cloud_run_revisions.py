"""Service/revision health rules and Monitoring answer -> metrics, on hand-written API bodies."""

from __future__ import annotations

import pytest

from pettwin_checks.cloud_run.queries import FAMILIES, submissions
from pettwin_checks.cloud_run.revisions import parse_service, revision_failure, verdict
from pettwin_checks.gcp.distribution import Distribution
from pettwin_checks.gcp.timeseries import Point, TimeSeries

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


def family(key):
    return next(f for f in FAMILIES if f.key == key)


def series(metric_labels, points, revision="api-00002"):
    return TimeSeries(
        "m",
        metric_labels,
        "cloud_run_revision",
        {"service_name": "api", "revision_name": revision, "location": "europe-west1"},
        "DELTA",
        "INT64",
        points,
    )


TAGS = ("service_name:api", "revision_name:api-00002", "location:europe-west1")


def test_counts_only_points_inside_the_window():
    answer = [series({"response_code_class": "2xx"}, [Point(0, 60, 5), Point(60, 120, 7), Point(120, 180, 11)])]
    (only,) = submissions(family("request_count"), answer, 60, 180)
    assert (only.kind, only.name, only.value, only.tags) == (
        "count",
        "request.count",
        18,
        (*TAGS, "response_code_class:2xx"),
    )


def test_probe_failures_keep_only_unhealthy_but_report_zero():
    answer = [
        series({"probe_type": "Liveness", "is_healthy": "true"}, [Point(0, 60, 6)]),
        series({"probe_type": "Liveness", "is_healthy": "false"}, [Point(0, 60, 2)]),
        series({"probe_type": "Startup", "is_healthy": "true"}, [Point(0, 60, 1)]),
    ]
    result = {s.tags[-1]: s.value for s in submissions(family("completed_probe_count"), answer, 0, 60)}
    assert result == {"probe_type:Liveness": 2, "probe_type:Startup": 0}


def test_gauge_takes_newest_point_and_utilization_is_percent():
    answer = [series({"state": "active"}, [Point(0, 60, 3), Point(60, 120, 4)])]
    (gauge,) = submissions(family("instance_count"), answer, 0, 120)
    assert (gauge.value, gauge.tags[-1]) == (4, "state:active")
    bounds = tuple(round(0.05 * i, 2) for i in range(21))
    counts = [0] * 22
    counts[11] = 4  # [0.50, 0.55)
    dist = Distribution(4, 0.52, bounds, tuple(counts))
    result = {
        s.name: s.value for s in submissions(family("memory_utilizations"), [series({}, [Point(0, 60, dist)])], 0, 60)
    }
    assert result == pytest.approx(
        {
            "container.memory.utilization.p50": 52.5,
            "container.memory.utilization.p95": 54.75,
            "container.memory.utilization.p99": 54.95,
        }
    )


def test_one_query_per_family_filters_services():
    query = family("request_latencies").query(["api", "worker"])
    assert query.filter == (
        'metric.type = "run.googleapis.com/request_latencies" AND resource.type = '
        '"cloud_run_revision" AND resource.label.service_name = one_of("api", "worker")'
    )
    assert family("request_latencies").query([]).filter.count("AND") == 1
