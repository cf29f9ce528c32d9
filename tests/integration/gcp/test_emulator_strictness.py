"""The emulator's tokens carry scopes and each API method accepts only the scopes of its discovery document
(Google's 403 otherwise); quota series come at Google's daily cadence."""

import time
from datetime import UTC, datetime

import pytest
import requests

from tests.integration.gcp.emulator_calls import (
    CLOUD_PLATFORM,
    METADATA,
    MONITORING_READ,
    READ_ONLY,
    RUN_READONLY,
    assert_scope_insufficient,
    bad_request,
    bearer,
    count_tokens_url,
    list_series,
    metadata_token,
    rfc3339,
    series_params,
    services_url,
)

pytestmark = pytest.mark.integration


# ---------------------------------------------------------------- scopes


def test_metadata_token_carries_the_comma_separated_scopes_asked_for(gcp_env):
    read_only = metadata_token(gcp_env, scopes=READ_ONLY)
    assert_scope_insufficient(
        list_series(gcp_env, series_params(), read_only),
        "monitoring.googleapis.com",
        "google.monitoring.v3.MetricService.ListTimeSeries",
    )
    assert_scope_insufficient(
        requests.get(services_url(gcp_env), headers=bearer(read_only), timeout=5),
        "run.googleapis.com",
        "google.cloud.run.v2.Services.ListServices",
    )
    both = metadata_token(gcp_env, scopes=f"{MONITORING_READ},{RUN_READONLY}")
    assert list_series(gcp_env, series_params(), both).status_code == 200
    assert requests.get(services_url(gcp_env), headers=bearer(both), timeout=5).status_code == 200
    # countTokens accepts cloud-platform only.
    refused = requests.post(
        count_tokens_url(gcp_env),
        json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        headers=bearer(both),
        timeout=5,
    )
    assert_scope_insufficient(
        refused, "aiplatform.googleapis.com", "google.cloud.aiplatform.v1.PredictionService.CountTokens"
    )


def test_metadata_token_without_scopes_is_cloud_platform(gcp_env):
    token = metadata_token(gcp_env)
    assert list_series(gcp_env, series_params(), token).status_code == 200
    answer = requests.post(
        count_tokens_url(gcp_env),
        json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        headers=bearer(token),
        timeout=5,
    )
    assert answer.status_code == 200, answer.text


def test_space_separated_scopes_fail_as_on_cloud_run(gcp_env):
    answer = requests.get(
        f"{gcp_env.url}/computeMetadata/v1/instance/service-accounts/default/token",
        params={"scopes": f"{MONITORING_READ} {RUN_READONLY}"},
        headers=METADATA,
        timeout=5,
    )
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
    assert_scope_insufficient(
        requests.get(services_url(gcp_env), headers=bearer(token), timeout=5),
        "run.googleapis.com",
        "google.cloud.run.v2.Services.ListServices",
    )
    # The caller itself needs cloud-platform (or iam) to impersonate.
    refused = requests.post(
        url,
        json={"scope": [MONITORING_READ]},
        timeout=5,
        headers=bearer(gcp_env.issue_access_token(scopes=[MONITORING_READ])),
    )
    assert_scope_insufficient(
        refused, "iamcredentials.googleapis.com", "google.iam.credentials.v1.IAMCredentials.GenerateAccessToken"
    )


def test_generate_access_token_lifetime_over_an_hour_is_refused(gcp_env):
    """Without an organization-policy exception the maximum lifetime is one hour."""
    target = f"reader@{gcp_env.project_id}.iam.gserviceaccount.com"
    url = f"{gcp_env.url}/v1/projects/-/serviceAccounts/{target}:generateAccessToken"
    caller = bearer(gcp_env.issue_access_token())
    (violation,) = bad_request(
        requests.post(url, json={"scope": [CLOUD_PLATFORM], "lifetime": "43200s"}, headers=caller, timeout=5)
    )
    assert violation["field"] == "lifetime"
    assert (
        requests.post(url, json={"scope": [CLOUD_PLATFORM], "lifetime": "3600s"}, headers=caller, timeout=5).status_code
        == 200
    )


# ---------------------------------------------------------------- quota sampling cadence

QUOTA_LIMIT = "serviceruntime.googleapis.com/quota/limit"
ALLOCATION_USAGE = "serviceruntime.googleapis.com/quota/allocation/usage"


def _raw_points(emulator, metric: str, seconds: int) -> list[str]:
    end = int(time.time())
    answer = list_series(
        emulator,
        {
            "filter": f'metric.type = "{metric}"',
            "interval.startTime": rfc3339(end - seconds),
            "interval.endTime": rfc3339(end),
        },
    )
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
    newest = max(datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp() for t in day)
    assert time.time() - newest > 3600


def test_aligned_limit_over_25_h_is_the_daily_value(gcp_env):
    end = int(time.time() // 60) * 60
    answer = list_series(
        gcp_env,
        {
            "filter": f'metric.type = "{QUOTA_LIMIT}" AND resource.type = "consumer_quota"',
            "interval.startTime": rfc3339(end - 25 * 3600),
            "interval.endTime": rfc3339(end),
            "aggregation.alignmentPeriod": f"{25 * 3600}s",
            "aggregation.perSeriesAligner": "ALIGN_MAX",
            "aggregation.crossSeriesReducer": "REDUCE_MIN",
            "aggregation.groupByFields": "metric.label.quota_metric",
        },
    )
    assert answer.status_code == 200, answer.text
    limits = {
        s["metric"]["labels"]["quota_metric"]: int(s["points"][0]["value"]["int64Value"])
        for s in answer.json()["timeSeries"]
    }
    assert limits == {
        "aiplatform.googleapis.com/generate_content_requests_per_minute_per_project_per_base_model": 200,
        "aiplatform.googleapis.com/custom_model_serving_cpus": 32,
    }


ONE_LIMIT = """
series:
  - metric: serviceruntime.googleapis.com/quota/limit
    resource: {type: consumer_quota, labels: {project_id: pettwin-demo, service: aiplatform.googleapis.com}}
    labels: {quota_metric: q, limit_name: L}
    kind: GAUGE
    value_type: INT64
    values: 5
"""


def test_scenario_sets_the_phase_of_a_sampled_series(gcp_env):
    gcp_env.load_scenario(ONE_LIMIT + "    every_minutes: 1440\n    newest_minutes_ago: 1\n")
    assert len(_raw_points(gcp_env, QUOTA_LIMIT, 300)) == 1
    assert len(_raw_points(gcp_env, QUOTA_LIMIT, 47 * 3600)) == 2


def test_quota_limits_get_googles_daily_cadence_unless_the_scenario_sets_one(gcp_env):
    gcp_env.load_scenario(ONE_LIMIT)
    (series,) = gcp_env.series(QUOTA_LIMIT)
    assert series.every_minutes == 1440
    assert _raw_points(gcp_env, QUOTA_LIMIT, 300) == []
    assert len(_raw_points(gcp_env, QUOTA_LIMIT, 25 * 3600)) == 1
