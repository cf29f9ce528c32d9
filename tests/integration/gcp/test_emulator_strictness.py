"""The emulator refuses what Google refuses, with Google's error body: token scopes per method (from the discovery
documents), unknown parameters and fields, and each request of section J of the GCP contract reference."""

import time
from datetime import datetime, timezone

import pytest
import requests

pytestmark = pytest.mark.integration

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
READ_ONLY = "https://www.googleapis.com/auth/cloud-platform.read-only"
MONITORING_READ = "https://www.googleapis.com/auth/monitoring.read"
RUN_READONLY = "https://www.googleapis.com/auth/run.readonly"
METADATA = {"Metadata-Flavor": "Google"}
INVOCATIONS = "aiplatform.googleapis.com/publisher/online_serving/model_invocation_count"
LATENCIES = "aiplatform.googleapis.com/publisher/online_serving/model_invocation_latencies"


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def metadata_token(emulator, scopes: str | None = None) -> str:
    params = {"scopes": scopes} if scopes is not None else None
    answer = requests.get(f"{emulator.url}/computeMetadata/v1/instance/service-accounts/default/token",
                          params=params, headers=METADATA, timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def series_params(**extra) -> dict:
    end = (int(time.time() // 60) - 1) * 60
    return {"filter": f'metric.type = "{INVOCATIONS}"', "interval.startTime": rfc3339(end - 600),
            "interval.endTime": rfc3339(end), **extra}


def list_series(emulator, params, token=None) -> requests.Response:
    token = token or emulator.issue_access_token()
    return requests.get(f"{emulator.url}/v3/projects/{emulator.project_id}/timeSeries", params=params,
                        headers=bearer(token), timeout=10)


def services_url(emulator, location="us-central1") -> str:
    return f"{emulator.url}/v2/projects/{emulator.project_id}/locations/{location}/services"


def count_tokens_url(emulator, model="gemini-2.5-flash") -> str:
    return (f"{emulator.url}/v1/projects/{emulator.project_id}/locations/us-central1/publishers/google/models/"
            f"{model}:countTokens")


def google_error(response, code: int, status: str) -> dict:
    assert response.status_code == code, response.text
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (code, status)
    return error


def assert_scope_insufficient(response, service: str, method: str) -> None:
    error = google_error(response, 403, "PERMISSION_DENIED")
    assert error["message"] == "Request had insufficient authentication scopes."
    assert error["details"] == [{
        "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
        "domain": "googleapis.com", "metadata": {"service": service, "method": method},
    }]


def bad_request(response) -> list[dict]:
    """The fieldViolations of Google's 400 INVALID_ARGUMENT body."""
    error = google_error(response, 400, "INVALID_ARGUMENT")
    (detail,) = error["details"]
    assert detail["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert error["message"] == "\n".join(v["description"] for v in detail["fieldViolations"])
    return detail["fieldViolations"]


# ---------------------------------------------------------------- scopes (J8, I19)

def test_metadata_token_carries_the_comma_separated_scopes_asked_for(gcp_env):
    read_only = metadata_token(gcp_env, scopes=READ_ONLY)
    assert_scope_insufficient(list_series(gcp_env, series_params(), read_only), "monitoring.googleapis.com",
                              "google.monitoring.v3.MetricService.ListTimeSeries")
    assert_scope_insufficient(requests.get(services_url(gcp_env), headers=bearer(read_only), timeout=5),
                              "run.googleapis.com", "google.cloud.run.v2.Services.ListServices")
    both = metadata_token(gcp_env, scopes=f"{MONITORING_READ},{RUN_READONLY}")
    assert list_series(gcp_env, series_params(), both).status_code == 200
    assert requests.get(services_url(gcp_env), headers=bearer(both), timeout=5).status_code == 200
    # countTokens accepts cloud-platform only.
    refused = requests.post(count_tokens_url(gcp_env), json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
                            headers=bearer(both), timeout=5)
    assert_scope_insufficient(refused, "aiplatform.googleapis.com",
                              "google.cloud.aiplatform.v1.PredictionService.CountTokens")


def test_metadata_token_without_scopes_is_cloud_platform(gcp_env):
    token = metadata_token(gcp_env)
    assert list_series(gcp_env, series_params(), token).status_code == 200
    answer = requests.post(count_tokens_url(gcp_env), json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
                           headers=bearer(token), timeout=5)
    assert answer.status_code == 200, answer.text


def test_space_separated_scopes_fail_as_on_cloud_run(gcp_env):
    answer = requests.get(f"{gcp_env.url}/computeMetadata/v1/instance/service-accounts/default/token",
                          params={"scopes": f"{MONITORING_READ} {RUN_READONLY}"}, headers=METADATA, timeout=5)
    assert answer.status_code == 500


def test_revision_get_enforces_run_scopes(gcp_env):
    url = f"{services_url(gcp_env)}/pettwin-backend/revisions/pettwin-backend-00002-def"
    refused = requests.get(url, headers=bearer(gcp_env.issue_access_token(scopes=[MONITORING_READ])), timeout=5)
    assert_scope_insufficient(refused, "run.googleapis.com", "google.cloud.run.v2.Revisions.GetRevision")
    allowed = requests.get(url, headers=bearer(gcp_env.issue_access_token(scopes=[RUN_READONLY])), timeout=5)
    assert allowed.status_code == 200, allowed.text


def test_key_file_token_carries_the_assertion_scopes(gcp_env, gcp_key_file):
    from google.auth.transport.requests import AuthorizedSession
    from google.oauth2 import service_account

    credentials = service_account.Credentials.from_service_account_file(gcp_key_file, scopes=[READ_ONLY])
    answer = AuthorizedSession(credentials).get(services_url(gcp_env), timeout=5)
    assert_scope_insufficient(answer, "run.googleapis.com", "google.cloud.run.v2.Services.ListServices")


def test_impersonated_token_carries_the_scope_list_of_the_request(gcp_env):
    target = f"reader@{gcp_env.project_id}.iam.gserviceaccount.com"
    url = f"{gcp_env.url}/v1/projects/-/serviceAccounts/{target}:generateAccessToken"
    caller = bearer(gcp_env.issue_access_token())
    minted = requests.post(url, json={"scope": [MONITORING_READ]}, headers=caller, timeout=5)
    assert minted.status_code == 200, minted.text
    token = minted.json()["accessToken"]
    assert list_series(gcp_env, series_params(), token).status_code == 200
    assert_scope_insufficient(requests.get(services_url(gcp_env), headers=bearer(token), timeout=5),
                              "run.googleapis.com", "google.cloud.run.v2.Services.ListServices")
    # The caller itself needs cloud-platform (or iam) to impersonate.
    refused = requests.post(url, json={"scope": [MONITORING_READ]}, timeout=5,
                            headers=bearer(gcp_env.issue_access_token(scopes=[MONITORING_READ])))
    assert_scope_insufficient(refused, "iamcredentials.googleapis.com",
                              "google.iam.credentials.v1.IAMCredentials.GenerateAccessToken")


def test_generate_access_token_lifetime_over_an_hour_is_refused(gcp_env):
    """J10: without an organization-policy exception the maximum lifetime is one hour."""
    target = f"reader@{gcp_env.project_id}.iam.gserviceaccount.com"
    url = f"{gcp_env.url}/v1/projects/-/serviceAccounts/{target}:generateAccessToken"
    caller = bearer(gcp_env.issue_access_token())
    (violation,) = bad_request(requests.post(url, json={"scope": [CLOUD_PLATFORM], "lifetime": "43200s"},
                                             headers=caller, timeout=5))
    assert violation["field"] == "lifetime"
    assert requests.post(url, json={"scope": [CLOUD_PLATFORM], "lifetime": "3600s"}, headers=caller,
                         timeout=5).status_code == 200


# ---------------------------------------------------------------- quota sampling cadence (I5, I6)

QUOTA_LIMIT = "serviceruntime.googleapis.com/quota/limit"
ALLOCATION_USAGE = "serviceruntime.googleapis.com/quota/allocation/usage"


def _raw_points(emulator, metric: str, seconds: int) -> list[str]:
    end = int(time.time())
    answer = list_series(emulator, {"filter": f'metric.type = "{metric}"', "interval.startTime": rfc3339(end - seconds),
                                    "interval.endTime": rfc3339(end)})
    assert answer.status_code == 200, answer.text
    return [p["interval"]["endTime"] for s in answer.json().get("timeSeries", []) for p in s["points"]]


@pytest.mark.parametrize("metric", [QUOTA_LIMIT, ALLOCATION_USAGE])
def test_daily_sampled_quota_series_have_no_point_in_the_last_300_s_but_one_in_25_h(gcp_env, metric):
    assert _raw_points(gcp_env, metric, 300) == []
    day = _raw_points(gcp_env, metric, 25 * 3600)
    assert day, "a 25 h window must hold the daily sample"
    for series in gcp_env.series(metric):
        assert series.every_minutes == 1440
    # One point per series a day, the newest hours old.
    assert len(day) == len(gcp_env.series(metric))
    newest = max(datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp() for t in day)
    assert time.time() - newest > 3600


def test_aligned_limit_over_25_h_is_the_daily_value(gcp_env):
    end = int(time.time() // 60) * 60
    answer = list_series(gcp_env, {
        "filter": f'metric.type = "{QUOTA_LIMIT}" AND resource.type = "consumer_quota"',
        "interval.startTime": rfc3339(end - 25 * 3600), "interval.endTime": rfc3339(end),
        "aggregation.alignmentPeriod": f"{25 * 3600}s", "aggregation.perSeriesAligner": "ALIGN_MAX",
        "aggregation.crossSeriesReducer": "REDUCE_MIN", "aggregation.groupByFields": "metric.label.quota_metric"})
    assert answer.status_code == 200, answer.text
    limits = {s["metric"]["labels"]["quota_metric"]: int(s["points"][0]["value"]["int64Value"])
              for s in answer.json()["timeSeries"]}
    assert limits == {
        "aiplatform.googleapis.com/generate_content_requests_per_minute_per_project_per_base_model": 200,
        "aiplatform.googleapis.com/custom_model_serving_cpus": 32,
    }


def test_scenario_sets_the_phase_of_a_sampled_series(gcp_env):
    gcp_env.load_scenario("""
series:
  - metric: serviceruntime.googleapis.com/quota/limit
    resource: {type: consumer_quota, labels: {project_id: pettwin-demo, service: aiplatform.googleapis.com}}
    labels: {quota_metric: q, limit_name: L}
    kind: GAUGE
    value_type: INT64
    values: 5
    every_minutes: 1440
    newest_minutes_ago: 1
""")
    assert len(_raw_points(gcp_env, QUOTA_LIMIT, 300)) == 1
    assert len(_raw_points(gcp_env, QUOTA_LIMIT, 47 * 3600)) == 2
