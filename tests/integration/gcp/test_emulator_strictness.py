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


# ---------------------------------------------------------------- discovery-document validation (J2, J9)

UNKNOWN_QUERY = ('Invalid JSON payload received. Unknown name "{0}": Cannot bind query parameter. '
                 "Field '{0}' could not be found in request message.")


def test_unknown_query_parameter_is_refused_with_googles_body(gcp_env):
    """J2: a misspelt parameter (groupByField for groupByFields) is not silently ignored."""
    answer = list_series(gcp_env, series_params(**{"aggregation.groupByField": "metric.label.x"}))
    assert bad_request(answer) == [{"description": UNKNOWN_QUERY.format("aggregation.groupByField")}]
    answer = requests.get(services_url(gcp_env), params={"page_size": "5"}, timeout=5,
                          headers=bearer(gcp_env.issue_access_token()))
    assert bad_request(answer) == [{"description": UNKNOWN_QUERY.format("page_size")}]


def test_standard_query_parameters_are_accepted(gcp_env):
    answer = list_series(gcp_env, series_params(prettyPrint="false", alt="json", quotaUser="pettwin"))
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("name, value, proto", [
    ("pageSize", "ten", "page_size' (TYPE_INT32)"),
    ("aggregation.perSeriesAligner", "ALIGN_AVERAGE",
     "aggregation.per_series_aligner' (type.googleapis.com/google.monitoring.v3.Aggregation.Aligner)"),
    ("view", "ALL", "view' (type.googleapis.com/google.monitoring.v3.ListTimeSeriesRequest.TimeSeriesView)"),
])
def test_query_values_of_the_wrong_type_or_enum(gcp_env, name, value, proto):
    (violation,) = bad_request(list_series(gcp_env, series_params(**{name: value})))
    assert violation["description"] == f"Invalid value at '{proto}, \"{value}\""


def test_order_by_must_be_left_blank(gcp_env):
    """J2: orderBy is "Unsupported: must be left blank"."""
    (violation,) = bad_request(list_series(gcp_env, series_params(orderBy="metric.type")))
    assert violation["field"] == "orderBy"


@pytest.mark.parametrize("body, violation", [
    ({"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "generationConfg": {}},
     {"description": 'Invalid JSON payload received. Unknown name "generationConfg": Cannot find field.'}),
    ({"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "generationConfig": {"maxTokens": 1}},
     {"field": "generation_config", "description": 'Invalid JSON payload received. Unknown name "maxTokens" at '
                                                   "'generation_config': Cannot find field."}),
    ({"contents": [{"role": "user", "parts": [{"txt": "hi"}]}]},
     {"field": "contents[0].parts[0]", "description": 'Invalid JSON payload received. Unknown name "txt" at '
                                                      "'contents[0].parts[0]': Cannot find field."}),
    ({"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "generationConfig": {"maxOutputTokens": "x"}},
     {"field": "generation_config.max_output_tokens",
      "description": "Invalid value at 'generation_config.max_output_tokens' (TYPE_INT32), \"x\""}),
])
@pytest.mark.parametrize("method", ["countTokens", "generateContent"])
def test_unknown_or_mistyped_body_fields_are_refused(gcp_env, body, violation, method):
    """J9: Vertex AI refuses a body with a field its request message does not have."""
    url = count_tokens_url(gcp_env).replace(":countTokens", f":{method}")
    answer = requests.post(url, json=body, headers=bearer(gcp_env.issue_access_token()), timeout=5)
    assert bad_request(answer) == [violation]


def test_proto_field_names_are_accepted_in_bodies(gcp_env):
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "generation_config": {"max_output_tokens": 1}}
    url = count_tokens_url(gcp_env).replace(":countTokens", ":generateContent")
    answer = requests.post(url, json=body, headers=bearer(gcp_env.issue_access_token()), timeout=5)
    assert answer.status_code == 200, answer.text


# ---------------------------------------------------------------- section J: what Google refuses

@pytest.mark.parametrize("metric_filter", [
    f'metric.type = "{INVOCATIONS}" OR metric.type = "{LATENCIES}"',
    'metric.type = starts_with("aiplatform.googleapis.com/")',
    f'metric.type = one_of("{INVOCATIONS}")',
    f'metric.type != "{INVOCATIONS}"',
])
def test_j1_filter_must_name_a_single_metric_type(gcp_env, metric_filter):
    (violation,) = bad_request(list_series(gcp_env, series_params(filter=metric_filter)))
    assert violation["field"] == "filter" and "single metric type" in violation["description"]


@pytest.mark.parametrize("metric, aligner", [
    (LATENCIES, "ALIGN_MEAN"),  # J3: numeric values only
    (LATENCIES, "ALIGN_STDDEV"),
    ("run.googleapis.com/container/instance_count", "ALIGN_DELTA"),  # GAUGE
])
def test_j3_aligner_not_valid_for_the_metric(gcp_env, metric, aligner):
    params = series_params(filter=f'metric.type = "{metric}"', **{"aggregation.perSeriesAligner": aligner,
                                                                  "aggregation.alignmentPeriod": "60s"})
    (violation,) = bad_request(list_series(gcp_env, params))
    assert violation["field"] == "aggregation.perSeriesAligner"


def test_j4_next_older_is_for_gauges_only(gcp_env):
    gcp_env.load_scenario("""
series:
  - metric: custom.googleapis.com/total
    resource: {type: global}
    kind: CUMULATIVE
    value_type: INT64
    values: 1
""")
    params = series_params(filter='metric.type = "custom.googleapis.com/total"',
                           **{"aggregation.perSeriesAligner": "ALIGN_NEXT_OLDER", "aggregation.alignmentPeriod": "60s"})
    bad_request(list_series(gcp_env, params))
    params["aggregation.perSeriesAligner"] = "ALIGN_DELTA"
    assert list_series(gcp_env, params).status_code == 200


def test_j5_negative_page_size(gcp_env):
    (violation,) = bad_request(list_series(gcp_env, series_params(pageSize="-1")))
    assert violation["field"] == "pageSize"
    # proto3 cannot tell pageSize=0 from no pageSize: the maximum page.
    assert list_series(gcp_env, series_params(pageSize="0")).status_code == 200


def test_j6_alignment_period_over_104_weeks(gcp_env):
    params = series_params(**{"aggregation.perSeriesAligner": "ALIGN_DELTA",
                              "aggregation.alignmentPeriod": f"{104 * 7 * 86400 + 60}s"})
    (violation,) = bad_request(list_series(gcp_env, params))
    assert violation["field"] == "aggregation.alignmentPeriod"
    params["aggregation.alignmentPeriod"] = f"{104 * 7 * 86400}s"
    assert list_series(gcp_env, params).status_code == 200


def test_j7_services_list_refuses_the_location_wildcard(gcp_env):
    answer = requests.get(services_url(gcp_env, location="-"), headers=bearer(gcp_env.issue_access_token()),
                          timeout=5)
    (violation,) = bad_request(answer)
    assert violation["field"] == "parent" and '"-"' in violation["description"]


# ---------------------------------------------------------------- section K: what Google accepts

def _aggregated(emulator, metric, aligner, reducer, *, metric_filter="", group_by=()) -> list[dict]:
    end = (int(time.time() // 60) - 1) * 60
    params = {"filter": f'metric.type = "{metric}"{metric_filter}', "interval.startTime": rfc3339(end - 60),
              "interval.endTime": rfc3339(end), "aggregation.alignmentPeriod": "60s",
              "aggregation.perSeriesAligner": aligner, "aggregation.crossSeriesReducer": reducer,
              "aggregation.groupByFields": list(group_by)}
    answer = list_series(emulator, params)
    assert answer.status_code == 200, answer.text
    return answer.json()["timeSeries"]


def _minute_values(emulator, metric, **labels) -> list[float]:
    minute = int(time.time() // 60) - 2
    return [s.value_at_minute(minute) for s in emulator.series(metric, labels or None)
            if s.value_at_minute(minute) is not None]


def test_k1_percentile_reducer_on_numeric_series(gcp_env):
    (series,) = _aggregated(gcp_env, INVOCATIONS, "ALIGN_DELTA", "REDUCE_PERCENTILE_50")
    ordered = sorted(_minute_values(gcp_env, INVOCATIONS))
    middle = (len(ordered) - 1) / 2
    expected = (ordered[int(middle)] + ordered[-(-int(middle * 2) // 2)]) / 2 if ordered else None
    assert series["valueType"] == "DOUBLE"
    assert series["points"][0]["value"]["doubleValue"] == pytest.approx(expected)


def test_k2_numeric_comparison_on_labels(gcp_env):
    by_code = ["metric.label.response_code"]
    series = _aggregated(gcp_env, INVOCATIONS, "ALIGN_DELTA", "REDUCE_SUM",
                         metric_filter=" AND metric.label.response_code >= 400", group_by=by_code)
    assert {s["metric"]["labels"]["response_code"] for s in series} == {"429", "500"}
    series = _aggregated(gcp_env, INVOCATIONS, "ALIGN_DELTA", "REDUCE_SUM",
                         metric_filter=" AND metric.label.response_code < 300", group_by=by_code)
    assert {s["metric"]["labels"]["response_code"] for s in series} == {"200"}


def test_k3_stddev_reducer_and_aligner(gcp_env):
    import statistics

    (series,) = _aggregated(gcp_env, INVOCATIONS, "ALIGN_DELTA", "REDUCE_STDDEV")
    assert series["points"][0]["value"]["doubleValue"] == pytest.approx(
        statistics.pstdev(_minute_values(gcp_env, INVOCATIONS)))
    aligned = _aggregated(gcp_env, "run.googleapis.com/container/instance_count", "ALIGN_STDDEV", "REDUCE_NONE")
    assert {s["points"][0]["value"]["doubleValue"] for s in aligned} == {0.0}  # one point per 60 s window


def test_k3_boolean_reducers(gcp_env):
    metric = "serviceruntime.googleapis.com/quota/exceeded"
    flags = [bool(v) for v in _minute_values(gcp_env, metric)]
    for reducer, expected in (("REDUCE_COUNT_TRUE", sum(flags)), ("REDUCE_COUNT_FALSE", len(flags) - sum(flags))):
        (series,) = _aggregated(gcp_env, metric, "ALIGN_NEXT_OLDER", reducer)
        assert int(series["points"][0]["value"]["int64Value"]) == expected
    (series,) = _aggregated(gcp_env, metric, "ALIGN_NEXT_OLDER", "REDUCE_FRACTION_TRUE")
    assert series["points"][0]["value"]["doubleValue"] == pytest.approx(sum(flags) / len(flags))


@pytest.mark.parametrize("params", [
    {"aggregation.perSeriesAligner": "ALIGN_INTERPOLATE", "aggregation.alignmentPeriod": "60s"},
    {"aggregation.perSeriesAligner": "ALIGN_PERCENT_CHANGE", "aggregation.alignmentPeriod": "60s"},
    {"secondaryAggregation.crossSeriesReducer": "REDUCE_SUM"},
])
def test_k3_what_the_emulator_does_not_implement_is_an_honest_501(gcp_env, params):
    google_error(list_series(gcp_env, series_params(**params)), 501, "UNIMPLEMENTED")


def test_quota_limits_get_googles_daily_cadence_unless_the_scenario_sets_one(gcp_env):
    gcp_env.load_scenario(ONE_LIMIT)
    (series,) = gcp_env.series(QUOTA_LIMIT)
    assert series.every_minutes == 1440
    assert _raw_points(gcp_env, QUOTA_LIMIT, 300) == []
    assert len(_raw_points(gcp_env, QUOTA_LIMIT, 25 * 3600)) == 1
