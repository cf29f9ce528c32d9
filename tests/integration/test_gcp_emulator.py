"""The GCP emulator over real HTTP: wire shapes, auth flows with google-auth, timeSeries.list maths, faults."""

import itertools
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
import requests

pytestmark = pytest.mark.integration

FLASH_INVOCATIONS = "aiplatform.googleapis.com/publisher/online_serving/model_invocation_count"
LATENCIES = "aiplatform.googleapis.com/publisher/online_serving/model_invocation_latencies"
METADATA = {"Metadata-Flavor": "Google"}


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def closed_window(minutes: int) -> tuple[float, float]:
    """(start, end) on whole minutes, ending at the last minute boundary whose point already exists."""
    end = (int(time.time() // 60) - 1) * 60.0
    return end - minutes * 60.0, end


def auth(emulator) -> dict:
    return {"Authorization": f"Bearer {emulator.issue_access_token()}"}


def time_series(emulator, params: dict, project: str | None = None) -> requests.Response:
    project = project or emulator.project_id
    return requests.get(
        f"{emulator.url}/v3/projects/{project}/timeSeries", params=params, headers=auth(emulator), timeout=10
    )


def scenario_values(emulator, metric: str, metric_labels: dict, resource_labels: dict, minutes) -> list:
    """Values the scenario declares for the matching series at the given epoch minutes."""
    (spec,) = emulator.series(metric, metric_labels, resource_labels)
    return [spec.value_at_minute(m) for m in minutes]


def assert_google_error(response, code: int, status: str) -> dict:
    assert response.status_code == code, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert error["status"] == status
    assert error["message"]
    return error


# ---------------------------------------------------------------- metadata server


def test_metadata_requires_flavor_header(gcp_env):
    url = f"{gcp_env.url}/computeMetadata/v1/project/project-id"
    refused = requests.get(url, timeout=5)
    assert refused.status_code == 403
    answered = requests.get(url, headers=METADATA, timeout=5)
    assert answered.status_code == 200
    assert answered.headers["Metadata-Flavor"] == "Google"
    assert answered.text == "pettwin-demo"


def test_metadata_identity_matches_cloud_run_forms(gcp_env):
    def get(path, **params):
        response = requests.get(f"{gcp_env.url}/computeMetadata/v1/{path}", headers=METADATA, params=params, timeout=5)
        assert response.status_code == 200, path
        return response

    assert get("project/numeric-project-id").text == gcp_env.project_number
    assert get("instance/region").text == f"projects/{gcp_env.project_number}/regions/us-central1"
    assert get("instance/zone").text == f"projects/{gcp_env.project_number}/zones/us-central1-1"
    assert get("instance/service-accounts/default/email").text == "pettwin-agent@pettwin-demo.iam.gserviceaccount.com"
    tree = get("instance/", recursive="true").json()
    assert tree["serviceAccounts"]["default"]["email"] == "pettwin-agent@pettwin-demo.iam.gserviceaccount.com"
    assert "token" not in tree["serviceAccounts"]["default"]
    token = get("instance/service-accounts/default/token").json()
    assert token["token_type"] == "Bearer" and token["expires_in"] > 3000 and token["access_token"]


def test_metadata_token_is_the_only_kind_of_bearer_accepted(gcp_env):
    url = f"{gcp_env.url}/v2/projects/pettwin-demo/locations/us-central1/services"
    token = requests.get(
        f"{gcp_env.url}/computeMetadata/v1/instance/service-accounts/default/token", headers=METADATA, timeout=5
    ).json()["access_token"]
    assert requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code == 200

    missing = assert_google_error(requests.get(url, timeout=5), 401, "UNAUTHENTICATED")
    assert missing["details"][0]["reason"] == "CREDENTIALS_MISSING"
    forged = requests.get(url, headers={"Authorization": "Bearer ya29.not-issued"}, timeout=5)
    assert_google_error(forged, 401, "UNAUTHENTICATED")
    assert forged.headers["WWW-Authenticate"].startswith("Bearer")

    gcp_env.expire_tokens()
    expired = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert assert_google_error(expired, 401, "UNAUTHENTICATED")["details"][0]["reason"] == "ACCESS_TOKEN_EXPIRED"


def test_google_auth_compute_engine_credentials_use_the_emulator(gcp_env):
    from google.auth import compute_engine
    from google.auth.compute_engine import _metadata
    from google.auth.transport.requests import Request

    assert _metadata.ping(Request()) is True
    credentials = compute_engine.Credentials()
    credentials.refresh(Request())
    assert credentials.valid
    assert credentials.service_account_email == "pettwin-agent@pettwin-demo.iam.gserviceaccount.com"
    assert _metadata.get_project_id(Request()) == "pettwin-demo"
    paths = [r["path"] for r in gcp_env.requests()]
    assert "/computeMetadata/v1/instance/service-accounts/default/token" in paths


# ---------------------------------------------------------------- OAuth: key files, token endpoint, impersonation


def test_service_account_key_file_refreshes_against_the_emulator(gcp_env, gcp_key_file):
    from google.auth.transport.requests import AuthorizedSession, Request
    from google.oauth2 import service_account

    key = json.loads(pathlib.Path(gcp_key_file).read_text())
    assert key["type"] == "service_account" and key["token_uri"] == f"{gcp_env.url}/token"
    credentials = service_account.Credentials.from_service_account_file(
        gcp_key_file, scopes=["https://www.googleapis.com/auth/run.readonly"]
    )
    credentials.refresh(Request())
    assert credentials.valid and credentials.token.startswith("ya29.")
    session = AuthorizedSession(credentials)
    listed = session.get(f"{gcp_env.url}/v2/projects/pettwin-demo/locations/us-central1/services", timeout=5)
    assert listed.status_code == 200
    token_calls = [r for r in gcp_env.requests() if r["path"] == "/token"]
    assert [r["status"] for r in token_calls] == [200]


def _signed_assertion(key: dict, private_key_pem: str, **claims) -> str:
    from google.auth import crypt, jwt

    now = int(time.time())
    payload = {
        "iss": key["client_email"],
        "aud": "https://oauth2.googleapis.com/token",
        "iat": now,
        "exp": now + 3600,
        "scope": "https://www.googleapis.com/auth/cloud-platform",
    }
    payload.update(claims)
    signer = crypt.RSASigner.from_string(private_key_pem, key["private_key_id"])
    return jwt.encode(signer, payload).decode()


def test_token_endpoint_verifies_signature_and_lifetime(gcp_env, gcp_key_file, tmp_path):
    key = json.loads(pathlib.Path(gcp_key_file).read_text())
    other = json.loads(pathlib.Path(gcp_env.write_service_account_key(tmp_path / "other.json")).read_text())

    def exchange(assertion, grant="urn:ietf:params:oauth:grant-type:jwt-bearer"):
        return requests.post(f"{gcp_env.url}/token", data={"grant_type": grant, "assertion": assertion}, timeout=5)

    good = exchange(_signed_assertion(key, key["private_key"]))
    assert good.status_code == 200
    assert good.json()["token_type"] == "Bearer" and good.json()["expires_in"] > 0

    # Same kid, signed with another key: the signature does not verify.
    forged = exchange(_signed_assertion(key, other["private_key"]))
    assert forged.status_code == 400
    assert forged.json() == {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}

    too_long = exchange(_signed_assertion(key, key["private_key"], exp=int(time.time()) + 7200))
    assert too_long.status_code == 400 and too_long.json()["error"] == "invalid_grant"
    expired = exchange(
        _signed_assertion(key, key["private_key"], iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)
    )
    assert expired.status_code == 400 and "iat and exp" in expired.json()["error_description"]
    wrong_audience = exchange(_signed_assertion(key, key["private_key"], aud="https://example.invalid/token"))
    assert wrong_audience.status_code == 400 and wrong_audience.json()["error"] == "invalid_grant"
    assert exchange("x.y.z", grant="password").json()["error"] == "unsupported_grant_type"


def test_revoked_key_is_refused_with_invalid_grant(gcp_env, gcp_key_file):
    from google.auth.exceptions import RefreshError
    from google.auth.transport.requests import Request
    from google.oauth2 import service_account

    scopes = ["https://www.googleapis.com/auth/monitoring.read"]
    service_account.Credentials.from_service_account_file(gcp_key_file, scopes=scopes).refresh(Request())
    gcp_env.revoke_service_account_key(gcp_key_file)
    with pytest.raises(RefreshError, match="invalid_grant"):
        service_account.Credentials.from_service_account_file(gcp_key_file, scopes=scopes).refresh(Request())
    assert [r["status"] for r in gcp_env.requests() if r["path"] == "/token"] == [200, 400]


def test_impersonation_through_generate_access_token(gcp_env, gcp_key_file):
    from google.auth import impersonated_credentials
    from google.auth.transport.requests import AuthorizedSession, Request
    from google.oauth2 import service_account

    source = service_account.Credentials.from_service_account_file(
        gcp_key_file, scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )
    target = "pettwin-reader@pettwin-demo.iam.gserviceaccount.com"
    credentials = impersonated_credentials.Credentials(
        source_credentials=source,
        target_principal=target,
        target_scopes=["https://www.googleapis.com/auth/run.readonly"],
        iam_endpoint_override=f"{gcp_env.url}/v1/projects/-/serviceAccounts/{target}:generateAccessToken",
    )
    credentials.refresh(Request())
    assert credentials.valid
    response = AuthorizedSession(credentials).get(
        f"{gcp_env.url}/v2/projects/pettwin-demo/locations/us-central1/services", timeout=5
    )
    assert response.status_code == 200
    unauthenticated = requests.post(
        f"{gcp_env.url}/v1/projects/-/serviceAccounts/{target}:generateAccessToken",
        json={"scope": ["https://www.googleapis.com/auth/cloud-platform"]},
        timeout=5,
    )
    assert_google_error(unauthenticated, 401, "UNAUTHENTICATED")


# ---------------------------------------------------------------- timeSeries.list


def test_raw_points_are_wall_clock_minutes_newest_first(gcp_env):
    start, end = closed_window(10)
    response = time_series(
        gcp_env,
        {
            "filter": f'metric.type = "{FLASH_INVOCATIONS}" AND metric.labels.response_code = "200" '
            f'AND resource.labels.model_user_id = "gemini-2.5-flash"',
            "interval.startTime": rfc3339(start),
            "interval.endTime": rfc3339(end),
        },
    )
    assert response.status_code == 200
    (series,) = response.json()["timeSeries"]
    assert series["metricKind"] == "DELTA" and series["valueType"] == "INT64"
    assert series["resource"] == {
        "type": "aiplatform.googleapis.com/PublisherModel",
        "labels": {
            "resource_container": "412345678901",
            "location": "us-central1",
            "publisher": "google",
            "model_user_id": "gemini-2.5-flash",
            "model_version_id": "default",
        },
    }
    points = series["points"]
    assert len(points) == 10
    ends = [parse_rfc3339(p["interval"]["endTime"]) for p in points]
    assert ends == sorted(ends, reverse=True) and ends[0] == end
    for point in points:
        assert parse_rfc3339(point["interval"]["endTime"]) - parse_rfc3339(point["interval"]["startTime"]) == 60
        assert isinstance(point["value"]["int64Value"], str)
    minutes = [int(e // 60) - 1 for e in ends]
    expected = scenario_values(
        gcp_env, FLASH_INVOCATIONS, {"response_code": "200"}, {"model_user_id": "gemini-2.5-flash"}, minutes
    )
    assert [int(p["value"]["int64Value"]) for p in points] == expected


@pytest.mark.parametrize(
    "filter_text, expected_models",
    [
        (
            f'metric.type = "{FLASH_INVOCATIONS}" AND metric.labels.response_code = "429"',
            ["gemini-2.5-flash", "gemini-2.5-pro"],
        ),
        (f'metric.type="{FLASH_INVOCATIONS}" metric.label.response_code="500"', ["gemini-2.5-pro"]),
        (
            f'metric.type = "{FLASH_INVOCATIONS}" AND resource.label."model_user_id" = one_of("gemini-2.5-pro", "gemini-9")',
            ["gemini-2.5-pro"] * 3,
        ),
        (
            (
                f'metric.type = "{FLASH_INVOCATIONS}" AND NOT metric.labels.response_code = "200" '
                f'AND resource.type = "aiplatform.googleapis.com/PublisherModel" AND resource.labels.location = "us-central1" '
                f'AND metric.labels.response_code != "500"'
            ),
            ["gemini-2.5-flash", "gemini-2.5-pro"],
        ),
    ],
)
def test_filter_selects_series(gcp_env, filter_text, expected_models):
    start, end = closed_window(3)
    response = time_series(
        gcp_env,
        {
            "filter": filter_text,
            "interval.startTime": rfc3339(start),
            "interval.endTime": rfc3339(end),
            "view": "HEADERS",
        },
    )
    assert response.status_code == 200, response.text
    series = response.json()["timeSeries"]
    assert sorted(s["resource"]["labels"]["model_user_id"] for s in series) == expected_models
    assert all("points" not in s for s in series)


@pytest.mark.parametrize(
    "bad_filter",
    [
        "metric.type = aiplatform",  # unquoted value
        'resource.type = "cloud_run_revision"',  # no metric type
        'metric.type = "x" AND metric.colour = "red"',  # unknown field
        'metric.type = "x" AND resource.label.a = starts_with("a", "b")',  # wrong arity
        'metric.type = starts_with("run.googleapis.com/")',  # not a single metric type
        'metric.type = "a" OR metric.type = "b"',  # two metric types
        'metric.type = "x" AND (metric.labels.a = "b"',  # unbalanced
        'metric.type == "x"',
    ],
)
def test_unparseable_filter_is_invalid_argument(gcp_env, bad_filter):
    start, end = closed_window(1)
    response = time_series(
        gcp_env, {"filter": bad_filter, "interval.startTime": rfc3339(start), "interval.endTime": rfc3339(end)}
    )
    error = assert_google_error(response, 400, "INVALID_ARGUMENT")
    assert "filter" in error["message"]
    assert error["details"][0]["@type"] == "type.googleapis.com/google.rpc.BadRequest"


def test_align_sum_and_reduce_sum_by_response_code_match_the_scenario(gcp_env):
    start, end = closed_window(5)
    response = time_series(
        gcp_env,
        {
            "filter": f'metric.type = "{FLASH_INVOCATIONS}"',
            "interval.startTime": rfc3339(start),
            "interval.endTime": rfc3339(end),
            "aggregation.alignmentPeriod": "300s",
            "aggregation.perSeriesAligner": "ALIGN_SUM",
            "aggregation.crossSeriesReducer": "REDUCE_SUM",
            "aggregation.groupByFields": ["metric.labels.response_code", "resource.labels.model_user_id"],
        },
    )
    assert response.status_code == 200, response.text
    minutes = range(int(start // 60), int(end // 60))
    got = {}
    for series in response.json()["timeSeries"]:
        assert set(series["metric"]["labels"]) == {"response_code"}
        assert set(series["resource"]["labels"]) == {"model_user_id"}
        (point,) = series["points"]
        assert point["interval"] == {"startTime": rfc3339(start), "endTime": rfc3339(end)}
        got[(series["resource"]["labels"]["model_user_id"], series["metric"]["labels"]["response_code"])] = int(
            point["value"]["int64Value"]
        )
    expected = {}
    for spec in gcp_env.scenario.series:
        if spec.metric_type == FLASH_INVOCATIONS:
            key = (spec.resource_labels["model_user_id"], spec.metric_labels["response_code"])
            expected[key] = expected.get(key, 0) + sum(spec.value_at_minute(m) for m in minutes)
    assert got == expected
    # Any five consecutive minutes of the flash lists add up to the same numbers.
    assert got[("gemini-2.5-flash", "200")] == 650 and got[("gemini-2.5-flash", "429")] == 8


def test_align_rate_is_per_second_per_window(gcp_env):
    start, end = closed_window(3)
    response = time_series(
        gcp_env,
        {
            "filter": f'metric.type = "{FLASH_INVOCATIONS}" AND metric.labels.response_code = "200" '
            f'AND resource.labels.model_user_id = "gemini-2.5-flash"',
            "interval.startTime": rfc3339(start),
            "interval.endTime": rfc3339(end),
            "aggregation.alignmentPeriod": "60s",
            "aggregation.perSeriesAligner": "ALIGN_RATE",
        },
    )
    (series,) = response.json()["timeSeries"]
    assert series["metricKind"] == "GAUGE" and series["valueType"] == "DOUBLE"
    ends = [parse_rfc3339(p["interval"]["endTime"]) for p in series["points"]]
    assert ends == [end, end - 60, end - 120]
    expected = scenario_values(
        gcp_env,
        FLASH_INVOCATIONS,
        {"response_code": "200"},
        {"model_user_id": "gemini-2.5-flash"},
        [int(e // 60) - 1 for e in ends],
    )
    assert [p["value"]["doubleValue"] for p in series["points"]] == pytest.approx([v / 60 for v in expected])


def test_percentile_aligner_on_distribution(gcp_env):
    start, end = closed_window(1)
    params = {
        "filter": f'metric.type = "{LATENCIES}" AND metric.labels.latency_type = "model" '
        f'AND resource.labels.model_user_id = "gemini-2.5-flash"',
        "interval.startTime": rfc3339(start),
        "interval.endTime": rfc3339(end),
        "aggregation.alignmentPeriod": "60s",
    }
    # Buckets [512,1024): 60, [1024,2048): 50, [2048,4096): 10 of 120.
    # p95: rank 114 falls 4/10 into [2048,4096) -> 2048 + 0.4 * 2048. p50: rank 60 ends [512,1024) -> 1024.
    for aligner, expected in (("ALIGN_PERCENTILE_95", 2867.2), ("ALIGN_PERCENTILE_50", 1024.0)):
        response = time_series(gcp_env, {**params, "aggregation.perSeriesAligner": aligner})
        (series,) = response.json()["timeSeries"]
        assert series["valueType"] == "DOUBLE" and series["unit"] == "ms"
        (point,) = series["points"]
        assert point["value"]["doubleValue"] == pytest.approx(expected)


def test_raw_distribution_shapes_and_reduce_sum_merges_buckets(gcp_env):
    start, end = closed_window(1)
    window = {"interval.startTime": rfc3339(start), "interval.endTime": rfc3339(end)}
    raw = time_series(
        gcp_env,
        {"filter": f'metric.type = "{LATENCIES}" AND resource.labels.model_user_id = "gemini-2.5-flash"', **window},
    )
    by_type = {s["metric"]["labels"]["latency_type"]: s for s in raw.json()["timeSeries"]}
    model = by_type["model"]["points"][0]["value"]["distributionValue"]
    assert model["count"] == "120"
    assert model["bucketOptions"] == {"exponentialBuckets": {"numFiniteBuckets": 20, "growthFactor": 2.0, "scale": 1.0}}
    assert model["bucketCounts"] == ["0"] * 10 + ["60", "50", "10"]  # trailing zeros omitted, as Google does
    assert model["mean"] == pytest.approx((60 * 768 + 50 * 1536 + 10 * 3072) / 120)
    assert model["sumOfSquaredDeviation"] > 0

    merged = time_series(
        gcp_env,
        {
            "filter": f'metric.type = "{LATENCIES}" AND resource.labels.model_user_id = "gemini-2.5-flash"',
            **window,
            "aggregation.alignmentPeriod": "60s",
            "aggregation.perSeriesAligner": "ALIGN_DELTA",
            "aggregation.crossSeriesReducer": "REDUCE_SUM",
        },
    )
    (series,) = merged.json()["timeSeries"]
    assert series["metricKind"] == "DELTA" and series["valueType"] == "DISTRIBUTION"
    value = series["points"][0]["value"]["distributionValue"]
    # overhead series: 90 in [16,32), 30 in [32,64); model series as above.
    assert value["count"] == "240"
    assert value["bucketCounts"] == ["0"] * 5 + ["90", "30", "0", "0", "0", "60", "50", "10"]

    shapes = {}
    for metric in (
        "aiplatform.googleapis.com/publisher/online_serving/first_token_latencies",
        "aiplatform.googleapis.com/prediction/online/prediction_latencies",
    ):
        response = time_series(gcp_env, {"filter": f'metric.type = "{metric}"', **window})
        for s in response.json()["timeSeries"]:
            shapes.update(s["points"][0]["value"]["distributionValue"]["bucketOptions"])
    assert shapes["explicitBuckets"]["bounds"][:3] == [0, 100, 250]
    assert shapes["linearBuckets"] == {"numFiniteBuckets": 20, "width": 50.0, "offset": 0.0}


@pytest.mark.parametrize(
    "params, field",
    [
        (
            {
                "aggregation.perSeriesAligner": "ALIGN_RATE",
                "aggregation.alignmentPeriod": "60s",
                "filter": 'metric.type = "aiplatform.googleapis.com/prediction/online/replicas"',
            },
            "perSeriesAligner",
        ),
        ({"aggregation.perSeriesAligner": "ALIGN_SUM"}, "alignmentPeriod"),
        ({"aggregation.crossSeriesReducer": "REDUCE_SUM"}, "perSeriesAligner"),
        ({"aggregation.perSeriesAligner": "ALIGN_BOGUS", "aggregation.alignmentPeriod": "60s"}, "aligner"),
        ({"aggregation.perSeriesAligner": "ALIGN_SUM", "aggregation.alignmentPeriod": "10s"}, "alignmentPeriod"),
    ],
)
def test_invalid_aggregation_is_rejected(gcp_env, params, field):
    start, end = closed_window(5)
    query = {
        "filter": f'metric.type = "{FLASH_INVOCATIONS}"',
        "interval.startTime": rfc3339(start),
        "interval.endTime": rfc3339(end),
        **params,
    }
    error = assert_google_error(time_series(gcp_env, query), 400, "INVALID_ARGUMENT")
    assert field.lower() in json.dumps(error).lower().replace("_", "")


def _all_pages(emulator, params: dict) -> list[list[dict]]:
    pages, token = [], None
    while True:
        response = time_series(emulator, {**params, **({"pageToken": token} if token else {})})
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["timeSeries"])
        token = body.get("nextPageToken")
        if not token:
            return pages


def _identity(series) -> str:
    return json.dumps([series["metric"], series["resource"]], sort_keys=True)


PROBES = "run.googleapis.com/container/completed_probe_count"


def test_paging_headers_counts_series(gcp_env):
    start, end = closed_window(2)
    base = {
        "filter": f'metric.type = "{PROBES}"',
        "interval.startTime": rfc3339(start),
        "interval.endTime": rfc3339(end),
        "view": "HEADERS",
    }
    everything = time_series(gcp_env, base).json()["timeSeries"]
    assert len(everything) >= 5
    assert "nextPageToken" not in time_series(gcp_env, base).json()
    pages = _all_pages(gcp_env, {**base, "pageSize": 2})
    seen = [_identity(s) for page in pages for s in page]
    assert len(set(seen)) == len(seen)
    assert sorted(seen) == sorted(_identity(s) for s in everything)
    assert [len(page) for page in pages[:-1]] == [2] * (len(pages) - 1)
    assert len(pages) == -(-len(everything) // 2)


def test_paging_full_counts_points_and_splits_a_series_across_pages(gcp_env):
    """With view FULL pageSize counts points, so a series continues on the next page; merged by identity,
    the pages give back every series with its points in order."""
    start, end = closed_window(5)
    base = {
        "filter": f'metric.type = "{PROBES}"',
        "interval.startTime": rfc3339(start),
        "interval.endTime": rfc3339(end),
    }
    everything = time_series(gcp_env, base).json()["timeSeries"]
    assert all(len(s["points"]) == 5 for s in everything)
    pages = _all_pages(gcp_env, {**base, "pageSize": 3})
    assert all(sum(len(s["points"]) for s in page) == 3 for page in pages[:-1])
    merged: dict[str, list] = {}
    for page in pages:
        for series in page:
            merged.setdefault(_identity(series), []).extend(series["points"])
    assert merged == {_identity(s): s["points"] for s in everything}
    split = [identity for identity in merged if sum(_identity(s) == identity for p in pages for s in p) > 1]
    assert split, "some series must span two pages"


def test_page_token_belongs_to_its_query(gcp_env):
    start, end = closed_window(2)
    base = {
        "filter": f'metric.type = "{PROBES}"',
        "interval.startTime": rfc3339(start),
        "interval.endTime": rfc3339(end),
        "view": "HEADERS",
        "pageSize": 2,
    }
    first = time_series(gcp_env, base).json()["nextPageToken"]
    other = {**base, "filter": f'metric.type = "{FLASH_INVOCATIONS}"', "pageToken": first}
    assert_google_error(time_series(gcp_env, other), 400, "INVALID_ARGUMENT")
    assert_google_error(time_series(gcp_env, {**base, "pageToken": "garbage"}), 400, "INVALID_ARGUMENT")


def test_points_follow_the_wall_clock(gcp_env):
    """A query for 'the last N minutes' sees points up to the last finished minute, whenever it runs."""
    now = time.time()
    response = time_series(
        gcp_env,
        {
            "filter": 'metric.type = "run.googleapis.com/container/instance_count"',
            "interval.startTime": rfc3339(now - 180),
            "interval.endTime": rfc3339(now),
        },
    )
    for series in response.json()["timeSeries"]:
        newest = parse_rfc3339(series["points"][0]["interval"]["endTime"])
        assert now - 120 < newest <= now and newest % 60 == 0
        assert series["points"][0]["interval"]["startTime"] == series["points"][0]["interval"]["endTime"]


def test_inline_scenario_values_cycle_by_epoch_minute(gcp_env):
    gcp_env.load_scenario("""
project: {id: inline-proj, number: "99", region: europe-west1}
series:
  - metric: custom.googleapis.com/queue_depth
    resource: {type: global, labels: {project_id: inline-proj}}
    kind: GAUGE
    value_type: DOUBLE
    values: [1.5, 2.5, null]
""")
    assert gcp_env.project_id == "inline-proj"
    start, end = closed_window(9)
    response = time_series(
        gcp_env,
        {
            "filter": 'metric.type = "custom.googleapis.com/queue_depth"',
            "interval.startTime": rfc3339(start),
            "interval.endTime": rfc3339(end),
        },
    )
    (series,) = response.json()["timeSeries"]
    points = series["points"]
    assert len(points) == 6  # every third minute has no point
    for point in points:
        minute = int(parse_rfc3339(point["interval"]["endTime"]) // 60) - 1
        assert point["value"]["doubleValue"] == [1.5, 2.5, None][minute % 3]
    assert (
        time_series(
            gcp_env,
            {"filter": 'metric.type = "custom.googleapis.com/queue_depth"', "interval.endTime": rfc3339(end)},
            project="pettwin-demo",
        ).status_code
        == 403
    )


def test_reducers_count_and_percentile_and_bool_aligners(gcp_env):
    start, end = closed_window(5)
    window = {
        "interval.startTime": rfc3339(start),
        "interval.endTime": rfc3339(end),
        "aggregation.alignmentPeriod": "300s",
    }
    counted = time_series(
        gcp_env,
        {
            **window,
            "filter": f'metric.type = "{FLASH_INVOCATIONS}"',
            "aggregation.perSeriesAligner": "ALIGN_SUM",
            "aggregation.crossSeriesReducer": "REDUCE_COUNT",
            "aggregation.groupByFields": "resource.label.model_user_id",
        },
    )
    got = {
        s["resource"]["labels"]["model_user_id"]: s["points"][0]["value"]["int64Value"]
        for s in counted.json()["timeSeries"]
    }
    assert got == {"gemini-2.5-flash": "2", "gemini-2.5-pro": "3"}

    # p50 of the two flash latency series merged over 5 minutes: overhead 5*120 in [16,64), model 5*120 above.
    p50 = time_series(
        gcp_env,
        {
            **window,
            "filter": f'metric.type = "{LATENCIES}" AND resource.labels.model_user_id = "gemini-2.5-flash"',
            "aggregation.perSeriesAligner": "ALIGN_DELTA",
            "aggregation.crossSeriesReducer": "REDUCE_PERCENTILE_50",
        },
    )
    (series,) = p50.json()["timeSeries"]
    assert series["points"][0]["value"]["doubleValue"] == pytest.approx(64.0)  # rank 600 ends bucket [32,64)

    exceeded = time_series(
        gcp_env,
        {
            **window,
            "filter": 'metric.type = "serviceruntime.googleapis.com/quota/exceeded"',
            "aggregation.perSeriesAligner": "ALIGN_COUNT_TRUE",
        },
    )
    (series,) = exceeded.json()["timeSeries"]
    assert series["valueType"] == "INT64"
    assert series["points"][0]["value"]["int64Value"] == "2"  # [false, false, true, false, true]


def test_cumulative_series_delta_and_raw_running_total(gcp_env):
    gcp_env.load_scenario("""
series:
  - metric: custom.googleapis.com/requests_total
    resource: {type: global, labels: {project_id: pettwin-demo}}
    kind: CUMULATIVE
    value_type: INT64
    values: [10, 20]
""")
    start, end = closed_window(4)
    window = {
        "filter": 'metric.type = "custom.googleapis.com/requests_total"',
        "interval.startTime": rfc3339(start),
        "interval.endTime": rfc3339(end),
    }
    raw = time_series(gcp_env, window).json()["timeSeries"][0]
    totals = [int(p["value"]["int64Value"]) for p in raw["points"]]
    increments = [a - b for a, b in itertools.pairwise(totals)]
    assert increments == [[10, 20][(int(end // 60) - 1 - i) % 2] for i in range(3)]
    assert len({p["interval"]["startTime"] for p in raw["points"]}) == 1  # one reset-free run
    delta = time_series(
        gcp_env, {**window, "aggregation.alignmentPeriod": "240s", "aggregation.perSeriesAligner": "ALIGN_DELTA"}
    ).json()["timeSeries"][0]
    assert delta["metricKind"] == "DELTA"
    assert delta["points"][0]["value"]["int64Value"] == "60"  # four minutes of 10, 20, 10, 20


def test_instant_interval_returns_the_point_ending_then(gcp_env):
    _, end = closed_window(1)
    response = time_series(
        gcp_env,
        {
            "filter": 'metric.type = "aiplatform.googleapis.com/prediction/online/replicas"',
            "interval.endTime": rfc3339(end),
        },
    )
    (series,) = response.json()["timeSeries"]
    (point,) = series["points"]
    assert point["interval"] == {"startTime": rfc3339(end), "endTime": rfc3339(end)}
    assert point["value"]["int64Value"] == str([2, 2, 3][(int(end // 60) - 1) % 3])


def test_extending_scenario_replaces_series_with_the_same_identity(gcp_env):
    gcp_env.load_scenario("vertex_quota_exhausted")
    start, end = closed_window(5)
    response = time_series(
        gcp_env,
        {
            "filter": f'metric.type = "{FLASH_INVOCATIONS}" AND metric.labels.response_code = "429" '
            f'AND resource.labels.model_user_id = "gemini-2.5-flash"',
            "interval.startTime": rfc3339(start),
            "interval.endTime": rfc3339(end),
            "aggregation.alignmentPeriod": "300s",
            "aggregation.perSeriesAligner": "ALIGN_SUM",
        },
    )
    (series,) = response.json()["timeSeries"]  # replaced, not duplicated
    assert series["points"][0]["value"]["int64Value"] == str(40 + 55 + 38 + 60 + 47)
    assert len(gcp_env.series("run.googleapis.com/request_count")) == 3  # untouched series are inherited


@pytest.mark.parametrize(
    "text, complaint",
    [
        ("series: [{metric: m, resource: {type: global}, kind: GAUGE, value_type: INT64}]", "values"),
        ("series: [{metric: m, resource: {type: global}, kind: SOMETIMES, value_type: INT64, values: 1}]", "kind"),
        (
            (
                "series: [{metric: m, resource: {type: global}, kind: DELTA, value_type: DISTRIBUTION, values: [1, 2, 3],"
                " buckets: {explicit: {bounds: [1]}}, unit: ms}]\n"
            ),
            "bucket",
        ),
        ("extends: nowhere\n", "nowhere"),
        ("no-such-scenario", "unknown scenario"),
    ],
)
def test_bad_scenarios_are_refused_with_a_reason(gcp_env, text, complaint):
    from pettwin_checks.devenv.gcp_emulator.scenario import ScenarioError

    with pytest.raises(ScenarioError, match=complaint):
        gcp_env.load_scenario(text)
    assert gcp_env.scenario.name == "default"


# ---------------------------------------------------------------- faults and control plane


def test_injected_429_has_google_quota_error_shape_then_recovers(gcp_env):
    gcp_env.inject_fault(r"/timeSeries$", status=429, count=1)
    start, end = closed_window(1)
    params = {
        "filter": f'metric.type = "{FLASH_INVOCATIONS}"',
        "interval.startTime": rfc3339(start),
        "interval.endTime": rfc3339(end),
    }
    error = assert_google_error(time_series(gcp_env, params), 429, "RESOURCE_EXHAUSTED")
    kinds = {d["@type"]: d for d in error["details"]}
    info = kinds["type.googleapis.com/google.rpc.ErrorInfo"]
    assert info["reason"] == "RATE_LIMIT_EXCEEDED" and info["metadata"]["service"] == "monitoring.googleapis.com"
    assert kinds["type.googleapis.com/google.rpc.QuotaFailure"]["violations"]
    assert time_series(gcp_env, params).status_code == 200
    assert [(r["status"], r["faulted"]) for r in gcp_env.requests()] == [(429, True), (200, False)]


@pytest.mark.parametrize("status, google_status", [(403, "PERMISSION_DENIED"), (500, "INTERNAL"), (503, "UNAVAILABLE")])
def test_injected_errors_use_google_status_names(gcp_env, status, google_status):
    gcp_env.inject_fault("/timeSeries", status=status)
    _start, end = closed_window(1)
    for _ in range(2):  # without a count the fault stays until cleared
        error = assert_google_error(
            time_series(gcp_env, {"filter": f'metric.type = "{FLASH_INVOCATIONS}"', "interval.endTime": rfc3339(end)}),
            status,
            google_status,
        )
    if status == 403:
        assert "monitoring.timeSeries.list" in error["message"]
        assert error["details"][0]["metadata"]["permission"] == "monitoring.timeSeries.list"


def test_injected_latency_delays_and_client_deadline_fires(gcp_env):
    url = f"{gcp_env.url}/v2/projects/pettwin-demo/locations/us-central1/services"
    gcp_env.inject_fault("/services$", latency=0.6, count=1)
    began = time.monotonic()
    assert requests.get(url, headers=auth(gcp_env), timeout=5).status_code == 200
    assert time.monotonic() - began >= 0.6
    gcp_env.reset_requests()
    gcp_env.inject_fault("/services$", latency=30.0, count=1)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(url, headers=auth(gcp_env), timeout=0.3)
    # Clearing faults ends the delay in progress; the held request is then answered and logged.
    began = time.monotonic()
    gcp_env.clear_faults()
    assert gcp_env.wait_idle(timeout=5) and time.monotonic() - began < 5
    assert [(r["path"], r["faulted"]) for r in gcp_env.requests()] == [
        ("/v2/projects/pettwin-demo/locations/us-central1/services", True)
    ]


def test_control_plane_over_http(gcp_env):
    control = f"{gcp_env.url}/_emulator"
    posted = requests.post(
        f"{control}/faults", json={"path_regex": ":countTokens$", "status": 429, "count": 2}, timeout=5
    )
    assert posted.status_code == 200 and posted.json()["faults"][0]["count"] == 2
    url = (
        f"{gcp_env.url}/v1/projects/pettwin-demo/locations/us-central1/publishers/google/models/"
        f"gemini-2.5-flash:countTokens"
    )
    body = {"contents": [{"role": "user", "parts": [{"text": "ping"}]}]}
    statuses = [requests.post(url, json=body, headers=auth(gcp_env), timeout=5).status_code for _ in range(3)]
    assert statuses == [429, 429, 200]
    logged = requests.get(f"{control}/requests", timeout=5).json()["requests"]
    assert [(r["method"], r["status"]) for r in logged] == [("POST", 429), ("POST", 429), ("POST", 200)]
    assert requests.delete(f"{control}/requests", timeout=5).status_code == 200
    assert requests.get(f"{control}/requests", timeout=5).json()["requests"] == []
    requests.post(f"{control}/faults", json={"path_regex": ".", "status": 503}, timeout=5)
    assert requests.delete(f"{control}/faults", timeout=5).json() == {"faults": []}
    loaded = requests.post(f"{control}/scenario", json={"name": "cloud_run_failed_rollout"}, timeout=5)
    assert loaded.json()["scenario"] == "cloud_run_failed_rollout"
    assert requests.post(f"{control}/scenario", json={"name": "no-such"}, timeout=5).status_code == 400


def test_fault_body_override_serves_odd_responses(gcp_env):
    gcp_env.inject_fault("/timeSeries$", body='{"timeSeries": [{"metric": {}', count=1)
    gcp_env.inject_fault("/timeSeries$", status=200, body='{"timeSeries": [{"points": "not-a-list"}]}', count=1)
    _, end = closed_window(1)
    params = {"filter": f'metric.type = "{FLASH_INVOCATIONS}"', "interval.endTime": rfc3339(end)}
    truncated = time_series(gcp_env, params)
    assert truncated.status_code == 200
    with pytest.raises(ValueError):
        truncated.json()
    assert time_series(gcp_env, params).json() == {"timeSeries": [{"points": "not-a-list"}]}
    assert "timeSeries" in time_series(gcp_env, params).json()


def test_keep_alive_connection_survives_early_errors(gcp_env):
    """Answers sent before a handler needs the body (401, faults) must not desync a reused connection."""
    url = (
        f"{gcp_env.url}/v1/projects/pettwin-demo/locations/us-central1/publishers/google/models/"
        f"gemini-2.5-flash:countTokens"
    )
    body = {"contents": [{"role": "user", "parts": [{"text": "x" * 5000}]}]}
    with requests.Session() as session:
        assert session.post(url, json=body, timeout=5).status_code == 401
        gcp_env.inject_fault(":countTokens$", status=503, count=1)
        assert session.post(url, json=body, headers=auth(gcp_env), timeout=5).status_code == 503
        answer = session.post(url, json=body, headers=auth(gcp_env), timeout=5)
        assert answer.status_code == 200 and answer.json()["totalTokens"] == 1250


# ---------------------------------------------------------------- Cloud Run Admin API v2


def test_admin_api_service_and_revisions_shapes(gcp_env):
    base = f"{gcp_env.url}/v2/projects/pettwin-demo/locations/us-central1/services"
    service = requests.get(f"{base}/pettwin-backend", headers=auth(gcp_env), timeout=5).json()
    prefix = "projects/pettwin-demo/locations/us-central1/services/pettwin-backend"
    assert service["name"] == prefix
    assert service["terminalCondition"]["type"] == "Ready"
    assert service["terminalCondition"]["state"] == "CONDITION_SUCCEEDED"
    assert (
        service["latestReadyRevision"]
        == service["latestCreatedRevision"]
        == f"{prefix}/revisions/pettwin-backend-00002-def"
    )
    # Traffic LATEST is reported as LATEST once reconciled.
    assert service["traffic"] == [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}]
    assert service["trafficStatuses"] == [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}]
    assert service["uri"].startswith("https://pettwin-backend-") and service["uri"].endswith(".run.app")
    assert isinstance(service["generation"], str) and service["observedGeneration"] == service["generation"]
    assert {c["type"] for c in service["conditions"]} == {"RoutesReady", "ConfigurationsReady"}
    assert service["createTime"] <= service["updateTime"]

    revisions = requests.get(f"{base}/pettwin-backend/revisions", headers=auth(gcp_env), timeout=5).json()
    names = [r["name"].rsplit("/", 1)[1] for r in revisions["revisions"]]
    assert names == ["pettwin-backend-00002-def", "pettwin-backend-00001-abc"]
    revision = requests.get(
        f"{base}/pettwin-backend/revisions/pettwin-backend-00002-def", headers=auth(gcp_env), timeout=5
    ).json()
    ready = {c["type"]: c for c in revision["conditions"]}["Ready"]
    assert ready["state"] == "CONDITION_SUCCEEDED"
    assert revision["service"] == "pettwin-backend" and revision["containers"][0]["image"]

    listed = requests.get(base, headers=auth(gcp_env), timeout=5).json()
    assert [s["name"] for s in listed["services"]] == [prefix]
    missing = requests.get(f"{base}/nope", headers=auth(gcp_env), timeout=5)
    assert "nope" in assert_google_error(missing, 404, "NOT_FOUND")["message"]


def test_failed_rollout_scenario(gcp_env):
    gcp_env.load_scenario("cloud_run_failed_rollout")
    base = f"{gcp_env.url}/v2/projects/pettwin-demo/locations/us-central1/services/pettwin-backend"
    service = requests.get(base, headers=auth(gcp_env), timeout=5).json()
    assert service["terminalCondition"]["state"] == "CONDITION_FAILED"
    assert "pettwin-backend-00003-ghi" in service["terminalCondition"]["message"]
    assert service["latestCreatedRevision"].endswith("/pettwin-backend-00003-ghi")
    assert service["latestReadyRevision"].endswith("/pettwin-backend-00002-def")
    assert service["trafficStatuses"][0]["revision"] == "pettwin-backend-00002-def"
    failed = requests.get(f"{base}/revisions/pettwin-backend-00003-ghi", headers=auth(gcp_env), timeout=5).json()
    conditions = {c["type"]: c for c in failed["conditions"]}
    assert conditions["Ready"]["state"] == "CONDITION_FAILED"
    assert conditions["ContainerHealthy"]["revisionReason"] == "HEALTH_CHECK_CONTAINER_ERROR"
    assert "PORT=8080" in conditions["ContainerHealthy"]["message"]
    # The scenario extends the default one: its series are still there, plus the failing startup probes.
    start, end = closed_window(3)
    probes = time_series(
        gcp_env,
        {
            "filter": 'metric.type = "run.googleapis.com/container/completed_probe_count" '
            'AND resource.labels.revision_name = "pettwin-backend-00003-ghi" '
            "AND metric.labels.is_healthy = false",
            "interval.startTime": rfc3339(start),
            "interval.endTime": rfc3339(end),
        },
    )
    assert len(probes.json()["timeSeries"]) == 1


# ---------------------------------------------------------------- Vertex AI


def test_count_tokens_and_generate_content(gcp_env):
    base = f"{gcp_env.url}/v1/projects/pettwin-demo/locations/us-central1/publishers/google/models"
    body = {"contents": [{"role": "user", "parts": [{"text": "Is Rex's heart rate normal?"}]}]}
    counted = requests.post(f"{base}/gemini-2.5-flash:countTokens", json=body, headers=auth(gcp_env), timeout=5)
    assert counted.status_code == 200
    assert counted.json()["totalTokens"] == 7  # ceil(27 / 4)
    assert counted.json()["totalBillableCharacters"] == 23  # characters without spaces
    generated = requests.post(
        f"{base}/gemini-2.5-pro:generateContent", json=body, headers=auth(gcp_env), timeout=5
    ).json()
    assert generated["candidates"][0]["finishReason"] == "STOP"
    assert generated["usageMetadata"]["promptTokenCount"] == 7
    unknown = requests.post(f"{base}/gemini-0.1:countTokens", json=body, headers=auth(gcp_env), timeout=5)
    assert "gemini-0.1" in assert_google_error(unknown, 404, "NOT_FOUND")["message"]
    empty = requests.post(f"{base}/gemini-2.5-flash:countTokens", json={}, headers=auth(gcp_env), timeout=5)
    assert_google_error(empty, 400, "INVALID_ARGUMENT")
    gcp_env.inject_fault(":countTokens$", status=429, count=1)
    throttled = requests.post(f"{base}/gemini-2.5-flash:countTokens", json=body, headers=auth(gcp_env), timeout=5)
    assert "error-code-429" in assert_google_error(throttled, 429, "RESOURCE_EXHAUSTED")["message"]


def test_auth_can_be_disabled(gcp_env):
    gcp_env.require_auth = False
    response = requests.get(f"{gcp_env.url}/v2/projects/pettwin-demo/locations/us-central1/services", timeout=5)
    assert response.status_code == 200


# ---------------------------------------------------------------- CLI


def test_cli_prints_one_json_line_and_stops_on_sigterm():
    repo_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    process = subprocess.Popen(
        [sys.executable, "-m", "pettwin_checks.devenv.gcp_emulator", "--port", "0", "--scenario", "default"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=repo_root,
    )
    try:
        info = json.loads(process.stdout.readline())
        assert info["project_id"] == "pettwin-demo" and info["url"].startswith("http://127.0.0.1:")
        assert info["metadata_host"] == info["url"].removeprefix("http://")
        answer = requests.get(f"{info['url']}/computeMetadata/v1/project/project-id", headers=METADATA, timeout=5)
        assert answer.text == "pettwin-demo"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
