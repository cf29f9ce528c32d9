"""Methods Google has answer as Google does, not 404: every method of the four discovery documents the emulator
serves is routed, its scopes and request checked; the ones the emulator does not model answer as to its identity, a
read-only service account (a write: 403 IAM_PERMISSION_DENIED naming the permission). Run v2 lists revisions
across services with "-"."""

import time

import pytest
import requests

from tests.integration.gcp.emulator_calls import (
    CLOUD_PLATFORM,
    INVOCATIONS,
    MONITORING_READ,
    RUN_READONLY,
    assert_scope_insufficient,
    bad_request,
    bearer,
    google_error,
    http_error,
    rfc3339,
    service,
    services_url,
)

pytestmark = pytest.mark.integration


def _point_body(emulator) -> dict:
    end = rfc3339((int(time.time() // 60) - 1) * 60)
    return {
        "timeSeries": [
            {
                "metric": {"type": "custom.googleapis.com/pettwin/probe"},
                "resource": {"type": "global", "labels": {"project_id": emulator.project_id}},
                "points": [{"interval": {"endTime": end}, "value": {"int64Value": "1"}}],
            }
        ]
    }


def _create_time_series(emulator, body, scopes=(CLOUD_PLATFORM,)):
    return requests.post(
        f"{emulator.url}/v3/projects/{emulator.project_id}/timeSeries",
        json=body,
        headers=bearer(emulator.issue_access_token(scopes=scopes)),
        timeout=5,
    )


def _assert_iam_denied(response, permission: str, resource: str) -> None:
    error = google_error(response, 403, "PERMISSION_DENIED")
    assert permission in error["message"]
    (detail,) = error["details"]
    assert detail["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    assert (detail["reason"], detail["domain"]) == ("IAM_PERMISSION_DENIED", "iam.googleapis.com")
    assert detail["metadata"] == {"permission": permission, "resource": resource}


def test_time_series_create_needs_a_write_scope_then_the_permission(gcp_env):
    project = f"projects/{gcp_env.project_id}"
    assert_scope_insufficient(
        _create_time_series(gcp_env, _point_body(gcp_env), scopes=(MONITORING_READ,)),
        "monitoring.googleapis.com",
        "google.monitoring.v3.MetricService.CreateTimeSeries",
    )
    _assert_iam_denied(_create_time_series(gcp_env, _point_body(gcp_env)), "monitoring.timeSeries.create", project)


def test_time_series_create_body_is_checked_against_its_schema(gcp_env):
    body = _point_body(gcp_env)
    body["timeSeries"][0]["points"][0]["value"]["intValue"] = "1"
    (violation,) = bad_request(_create_time_series(gcp_env, body))
    assert violation["field"] == "time_series[0].points[0].value"
    assert 'Unknown name "intValue"' in violation["description"]


def test_services_delete_is_denied_to_a_read_only_identity(gcp_env):
    url = f"{services_url(gcp_env)}/pettwin-backend"
    readonly = requests.delete(url, headers=bearer(gcp_env.issue_access_token(scopes=[RUN_READONLY])), timeout=5)
    assert_scope_insufficient(readonly, "run.googleapis.com", "google.cloud.run.v2.Services.DeleteService")
    answer = requests.delete(url, headers=bearer(gcp_env.issue_access_token()), timeout=5)
    _assert_iam_denied(
        answer, "run.services.delete", f"projects/{gcp_env.project_id}/locations/us-central1/services/pettwin-backend"
    )
    # Nothing was deleted.
    assert requests.get(url, headers=bearer(gcp_env.issue_access_token()), timeout=5).status_code == 200


def test_methods_the_emulator_does_not_model_answer_as_to_a_project_without_those_resources(gcp_env):
    token = bearer(gcp_env.issue_access_token())
    base = f"{gcp_env.url}/v3/projects/{gcp_env.project_id}"
    listed = requests.get(f"{base}/alertPolicies", headers=token, timeout=5)
    assert (listed.status_code, listed.json()) == (200, {})
    missing = requests.get(f"{base}/alertPolicies/123", headers=token, timeout=5)
    assert google_error(missing, 404, "NOT_FOUND")["message"] == "Requested entity was not found."
    unknown = requests.get(f"{gcp_env.url}/v3/projects/{gcp_env.project_id}/timeSeriez", headers=token, timeout=5)
    assert google_error(unknown, 404, "NOT_FOUND")


TWO_SERVICES = """
extends: default
cloud_run:
  services:
    - name: pettwin-backend
      revisions:
        - {name: pettwin-backend-00001-abc, created_minutes_ago: 300}
        - {name: pettwin-backend-00002-def, created_minutes_ago: 100}
    - name: pettwin-ingest
      revisions:
        - {name: pettwin-ingest-00001-xyz, created_minutes_ago: 50}
"""


def test_revisions_across_services_with_the_dash(gcp_env):
    gcp_env.load_scenario(TWO_SERVICES)
    token = bearer(gcp_env.issue_access_token())
    services = requests.get(services_url(gcp_env), headers=token, timeout=5).json()["services"]
    expected = set()
    for svc in services:
        listed = requests.get(f"{gcp_env.url}/v2/{svc['name']}/revisions", headers=token, timeout=5).json()
        expected |= {r["name"] for r in listed["revisions"]}
    answer = requests.get(f"{services_url(gcp_env)}/-/revisions", headers=token, timeout=5)
    assert answer.status_code == 200, answer.text
    assert {r["name"] for r in answer.json()["revisions"]} == expected
    assert len(expected) == 3


def test_google_clients_read_the_same_answers(gcp_env):
    monitoring = service(gcp_env, "monitoring", "v3", [CLOUD_PLATFORM])
    error = http_error(
        monitoring.projects().timeSeries().create(name=f"projects/{gcp_env.project_id}", body=_point_body(gcp_env))
    )
    assert error.status_code == 403 and error.error_details[0]["reason"] == "IAM_PERMISSION_DENIED"
    gcp_env.load_scenario(TWO_SERVICES)
    run = service(gcp_env, "run", "v2", [CLOUD_PLATFORM])
    parent = f"projects/{gcp_env.project_id}/locations/us-central1/services/-"
    revisions = run.projects().locations().services().revisions().list(parent=parent).execute()["revisions"]
    assert {r["service"].rsplit("/", 1)[-1] for r in revisions} == {"pettwin-backend", "pettwin-ingest"}
    descriptor = (
        monitoring.projects()
        .metricDescriptors()
        .get(name=f"projects/{gcp_env.project_id}/metricDescriptors/{INVOCATIONS}")
        .execute()
    )
    assert descriptor["type"] == INVOCATIONS
