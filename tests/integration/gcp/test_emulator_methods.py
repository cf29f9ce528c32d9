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
    count_tokens_url,
    google_error,
    http_error,
    list_series,
    rfc3339,
    series_params,
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


# ---------------------------------------------------------------- system parameters: fields, prettyPrint


HELLO_BODY = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}


def test_fields_keeps_what_it_selects_on_every_method(gcp_env):
    token = bearer(gcp_env.issue_access_token())
    params = {**series_params(), "fields": "timeSeries(metric/type,points/value)"}
    answer = list_series(gcp_env, params)
    assert answer.status_code == 200, answer.text
    series = answer.json()["timeSeries"]
    assert series and all(set(s) == {"metric", "points"} and set(s["metric"]) == {"type"} for s in series)
    assert all(set(p) == {"value"} for s in series for p in s["points"])

    got = requests.get(
        f"{services_url(gcp_env)}/pettwin-backend",
        params={"fields": "name,terminalCondition/state"},
        headers=token,
        timeout=5,
    )
    assert got.json() == {
        "name": f"projects/{gcp_env.project_id}/locations/us-central1/services/pettwin-backend",
        "terminalCondition": {"state": "CONDITION_SUCCEEDED"},
    }
    counted = requests.post(
        count_tokens_url(gcp_env),
        params={"fields": "totalTokens"},
        json={"contents": [{"role": "user", "parts": [{"text": "sixteen chars.."}]}]},
        headers=token,
        timeout=5,
    )
    assert counted.json() == {"totalTokens": 4}
    header = {**token, "X-Goog-FieldMask": "promptTokensDetails.tokenCount"}
    counted = requests.post(count_tokens_url(gcp_env), json=HELLO_BODY, headers=header, timeout=5)
    assert counted.json() == {"promptTokensDetails": [{"tokenCount": 2}]}


def test_fields_naming_what_the_response_message_lacks_is_googles_400(gcp_env):
    fields = "timeSeries(metric/type,pointz)"
    error = google_error(list_series(gcp_env, {**series_params(), "fields": fields}), 400, "INVALID_ARGUMENT")
    assert error["message"] == "Request contains an invalid argument."
    assert error["details"] == [
        {
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [
                {
                    "field": fields,
                    "description": "Error expanding 'fields' parameter. Cannot find matching fields for path "
                    "'timeSeries.pointz'.",
                }
            ],
        }
    ]


def test_pretty_print_false_is_compact_and_the_default_is_indented(gcp_env):
    compact = list_series(gcp_env, {**series_params(), "prettyPrint": "false"})
    pretty = list_series(gcp_env, series_params())
    assert "\n" not in compact.text and "\n  " in pretty.text
    assert compact.json() == pretty.json()
    refused = list_series(gcp_env, {**series_params(), "prettyPrint": "false", "orderBy": "x"})
    assert refused.status_code == 400 and "\n" not in refused.text


def test_google_client_partial_response(gcp_env):
    monitoring = service(gcp_env, "monitoring", "v3", [CLOUD_PLATFORM])
    end = (int(time.time() // 60) - 1) * 60
    answer = (
        monitoring.projects()
        .timeSeries()
        .list(
            name=f"projects/{gcp_env.project_id}",
            filter=f'metric.type = "{INVOCATIONS}"',
            interval_startTime=rfc3339(end - 120),
            interval_endTime=rfc3339(end),
            fields="timeSeries/resource/labels",
        )
        .execute()
    )
    assert answer["timeSeries"] and all(list(s) == ["resource"] for s in answer["timeSeries"])
