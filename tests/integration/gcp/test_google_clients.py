"""Google's own clients are the test of the emulator's wire format: google-api-python-client services built from
the discovery documents in its wheel, pointed at the emulator, authorised by google-auth's compute_engine
credentials against the metadata emulator; every answer is read the way those clients read Google's."""

import time
from datetime import UTC, datetime

import pytest

from tests.integration.gcp.emulator_calls import http_error, service

pytestmark = pytest.mark.integration

MONITORING_READ = "https://www.googleapis.com/auth/monitoring.read"
RUN_READONLY = "https://www.googleapis.com/auth/run.readonly"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
READ_ONLY = "https://www.googleapis.com/auth/cloud-platform.read-only"
INVOCATIONS = "aiplatform.googleapis.com/publisher/online_serving/model_invocation_count"
LATENCIES = "aiplatform.googleapis.com/publisher/online_serving/model_invocation_latencies"
PROBES = "run.googleapis.com/container/completed_probe_count"


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def window(minutes: int) -> dict:
    end = (int(time.time() // 60) - 1) * 60
    return {"interval_startTime": rfc3339(end - minutes * 60), "interval_endTime": rfc3339(end)}


def test_time_series_list_with_aggregation(gcp_env):
    monitoring = service(gcp_env, "monitoring", "v3", [MONITORING_READ])
    answer = (
        monitoring.projects()
        .timeSeries()
        .list(
            name=f"projects/{gcp_env.project_id}",
            filter=f'metric.type = "{INVOCATIONS}"',
            **window(5),
            aggregation_alignmentPeriod="60s",
            aggregation_perSeriesAligner="ALIGN_DELTA",
            aggregation_crossSeriesReducer="REDUCE_SUM",
            aggregation_groupByFields=["metric.label.response_code"],
        )
        .execute()
    )
    by_code = {s["metric"]["labels"]["response_code"]: s for s in answer["timeSeries"]}
    assert set(by_code) == {"200", "429", "500"}
    minute = int(time.time() // 60) - 2
    expected = sum(s.value_at_minute(minute) for s in gcp_env.series(INVOCATIONS, {"response_code": "200"}))
    ok = by_code["200"]
    assert ok["metricKind"] == "DELTA" and ok["valueType"] == "INT64"
    assert int(ok["points"][0]["value"]["int64Value"]) == expected
    assert len(ok["points"]) == 5
    assert ok["points"][0]["interval"]["endTime"] > ok["points"][1]["interval"]["endTime"]  # newest first


def test_time_series_list_pages_with_list_next(gcp_env):
    monitoring = service(gcp_env, "monitoring", "v3", [CLOUD_PLATFORM])
    series = monitoring.projects().timeSeries()
    request = series.list(
        name=f"projects/{gcp_env.project_id}", filter=f'metric.type = "{PROBES}"', **window(4), pageSize=3
    )
    pages = []
    while request is not None:
        answer = request.execute()
        pages.append(answer.get("timeSeries", []))
        request = series.list_next(request, answer)
    assert len(pages) > 2 and all(sum(len(s["points"]) for s in page) == 3 for page in pages[:-1])
    merged: dict[tuple, int] = {}
    for page in pages:
        for s in page:
            key = tuple(sorted(s["metric"]["labels"].items()))
            merged[key] = merged.get(key, 0) + len(s["points"])
    assert len(merged) == len(gcp_env.series(PROBES)) and set(merged.values()) == {4}


def test_run_services_list_paginated_and_revision_get(gcp_env):
    gcp_env.load_scenario("""
extends: default
cloud_run:
  services:
    - {name: alpha, revisions: [{name: alpha-00001-aaa}]}
    - {name: beta, revisions: [{name: beta-00001-bbb}]}
    - {name: gamma, revisions: [{name: gamma-00001-ccc}, {name: gamma-00002-ddd, traffic: 100}]}
""")
    run = service(gcp_env, "run", "v2", [RUN_READONLY])
    services = run.projects().locations().services()
    request = services.list(parent=f"projects/{gcp_env.project_id}/locations/us-central1", pageSize=2)
    pages = []
    while request is not None:
        answer = request.execute()
        pages.append([s["name"].rsplit("/", 1)[1] for s in answer.get("services", [])])
        request = services.list_next(request, answer)
    assert pages == [["alpha", "beta"], ["gamma"]]
    gamma = services.get(name=f"projects/{gcp_env.project_id}/locations/us-central1/services/gamma").execute()
    assert gamma["trafficStatuses"] == [
        {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": "gamma-00002-ddd", "percent": 100}
    ]
    revision = services.revisions().get(name=gamma["latestCreatedRevision"]).execute()
    assert revision["name"] == gamma["latestCreatedRevision"]
    assert {c["type"]: c["state"] for c in revision["conditions"]}["Ready"] == "CONDITION_SUCCEEDED"


def test_aiplatform_count_tokens(gcp_env):
    aiplatform = service(gcp_env, "aiplatform", "v1", [CLOUD_PLATFORM])
    model = f"projects/{gcp_env.project_id}/locations/us-central1/publishers/google/models/gemini-2.5-flash"
    answer = (
        aiplatform.projects()
        .locations()
        .publishers()
        .models()
        .countTokens(endpoint=model, body={"contents": [{"role": "user", "parts": [{"text": "sixteen chars.."}]}]})
        .execute()
    )
    assert answer["totalTokens"] == 4
    assert answer["promptTokensDetails"] == [{"modality": "TEXT", "tokenCount": 4}]


# ---------------------------------------------------------------- Google's errors, read by Google's client


def test_insufficient_scope_reads_as_googles_403(gcp_env):
    monitoring = service(gcp_env, "monitoring", "v3", [READ_ONLY])
    error = http_error(
        monitoring.projects()
        .timeSeries()
        .list(name=f"projects/{gcp_env.project_id}", filter=f'metric.type = "{INVOCATIONS}"', **window(1))
    )
    assert error.status_code == 403
    assert error.reason == "Request had insufficient authentication scopes."
    assert error.error_details == [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
            "domain": "googleapis.com",
            "metadata": {
                "service": "monitoring.googleapis.com",
                "method": "google.monitoring.v3.MetricService.ListTimeSeries",
            },
        }
    ]


@pytest.mark.parametrize(
    "extra, field",
    [
        ({"filter": f'metric.type = starts_with("{INVOCATIONS[:20]}")'}, "filter"),
        (
            {
                "aggregation_perSeriesAligner": "ALIGN_MEAN",
                "aggregation_alignmentPeriod": "60s",
                "filter": f'metric.type = "{LATENCIES}"',
            },
            "aggregation.perSeriesAligner",
        ),
        ({"pageSize": -5}, "pageSize"),
        (
            {"aggregation_perSeriesAligner": "ALIGN_DELTA", "aggregation_alignmentPeriod": f"{10 * 365 * 86400}s"},
            "aggregation.alignmentPeriod",
        ),
        ({"orderBy": "metric.type"}, "orderBy"),
    ],
)
def test_monitoring_requests_read_as_googles_400(gcp_env, extra, field):
    monitoring = service(gcp_env, "monitoring", "v3", [MONITORING_READ])
    params = {"filter": f'metric.type = "{INVOCATIONS}"', **window(1), **extra}
    error = http_error(monitoring.projects().timeSeries().list(name=f"projects/{gcp_env.project_id}", **params))
    assert error.status_code == 400
    (detail,) = error.error_details
    assert detail["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert [v["field"] for v in detail["fieldViolations"]] == [field]


def test_body_with_an_unknown_field_reads_as_googles_400(gcp_env):
    aiplatform = service(gcp_env, "aiplatform", "v1", [CLOUD_PLATFORM])
    model = f"projects/{gcp_env.project_id}/locations/us-central1/publishers/google/models/gemini-2.5-flash"
    error = http_error(
        aiplatform.projects()
        .locations()
        .publishers()
        .models()
        .generateContent(
            model=model, body={"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "generationConfg": {}}
        )
    )
    assert error.status_code == 400
    assert error.reason == 'Invalid JSON payload received. Unknown name "generationConfg": Cannot find field.'


def test_location_wildcard_reads_as_googles_400(gcp_env):
    run = service(gcp_env, "run", "v2", [RUN_READONLY])
    error = http_error(run.projects().locations().services().list(parent=f"projects/{gcp_env.project_id}/locations/-"))
    assert error.status_code == 400 and error.error_details[0]["fieldViolations"][0]["field"] == "parent"


def test_run_revisions_list_paginated_newest_first(gcp_env):
    run = service(gcp_env, "run", "v2", [RUN_READONLY])
    revisions = run.projects().locations().services().revisions()
    request = revisions.list(
        parent=f"projects/{gcp_env.project_id}/locations/us-central1/services/pettwin-backend", pageSize=1
    )
    names = []
    while request is not None:
        answer = request.execute()
        names.append([r["name"].rsplit("/", 1)[1] for r in answer["revisions"]])
        request = revisions.list_next(request, answer)
    assert names == [["pettwin-backend-00002-def"], ["pettwin-backend-00001-abc"]]
