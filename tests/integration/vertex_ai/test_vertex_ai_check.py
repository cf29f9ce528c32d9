"""The Vertex AI check against the GCP emulator over real HTTP, with values computed by hand from the scenario.

Every series in SCENARIO is constant per minute, so a window of n minutes sums to n times the value, and a
distribution's percentiles are those of one minute's buckets. The check's wall clock is pinned so the windows
are known: with ingestion_delay 600 every window ends on settled minutes the emulator has points for.
"""

import time

import pytest
from datadog_checks.base import AgentCheck, ConfigurationError

from pettwin_checks.gcp import Deadline
from pettwin_checks.vertex_ai.check import PettwinVertexAiCheck
from tests.contract import assert_contract

pytestmark = pytest.mark.integration

NS = "pettwin.vertex_ai."
PROJECT_TAG = "project_id:pettwin-demo"

SCENARIO = """
project: {id: pettwin-demo, number: "412345678901", region: us-central1}
history_minutes: 120
vertex: {models: [gemini-2.5-flash]}
resources:
  flash: &flash {type: aiplatform.googleapis.com/PublisherModel, labels: {resource_container: "412345678901",
                 location: us-central1, publisher: google, model_user_id: gemini-2.5-flash, model_version_id: default}}
  pro: &pro {type: aiplatform.googleapis.com/PublisherModel, labels: {resource_container: "412345678901",
             location: us-central1, publisher: google, model_user_id: gemini-2.5-pro, model_version_id: default}}
  dsq: &dsq {type: aiplatform.googleapis.com/PublisherModel, labels: {resource_container: "412345678901",
             location: us-central1, publisher: google, model_user_id: gemini-2.0-flash-001, model_version_id: "001"}}
  endpoint: &endpoint {type: aiplatform.googleapis.com/Endpoint, labels: {resource_container: "412345678901",
                       location: us-central1, endpoint_id: "111"}}
  quota: &quota {type: aiplatform.googleapis.com/Location, labels: {resource_container: "412345678901",
                 location: us-central1}}
  consumer: &consumer {type: consumer_quota, labels: {project_id: pettwin-demo, service: aiplatform.googleapis.com,
                       location: us-central1}}
series:
  - {metric: aiplatform.googleapis.com/publisher/online_serving/model_invocation_count, resource: *flash,
     labels: {response_code: "200", method: GenerateContent, request_type: shared},
     kind: DELTA, value_type: INT64, values: 100}
  - {metric: aiplatform.googleapis.com/publisher/online_serving/model_invocation_count, resource: *flash,
     labels: {response_code: "200", method: StreamGenerateContent, request_type: shared},
     kind: DELTA, value_type: INT64, values: 20}
  - {metric: aiplatform.googleapis.com/publisher/online_serving/model_invocation_count, resource: *flash,
     labels: {response_code: "429", error_category: capacity}, kind: DELTA, value_type: INT64, values: 4}
  - {metric: aiplatform.googleapis.com/publisher/online_serving/model_invocation_count, resource: *pro,
     labels: {response_code: "200"}, kind: DELTA, value_type: INT64, values: 30}
  - {metric: aiplatform.googleapis.com/publisher/online_serving/model_invocation_count, resource: *pro,
     labels: {response_code: "500", error_category: system}, kind: DELTA, value_type: INT64, values: 2}
  - {metric: aiplatform.googleapis.com/publisher/online_serving/model_invocation_count, resource: *dsq,
     labels: {response_code: "200"}, kind: DELTA, value_type: INT64, values: 10}
  - {metric: aiplatform.googleapis.com/publisher/online_serving/model_invocation_count, resource: *dsq,
     labels: {response_code: "429", error_category: capacity}, kind: DELTA, value_type: INT64, values: 5}
  - {metric: aiplatform.googleapis.com/publisher/online_serving/model_invocation_latencies, resource: *flash,
     labels: {latency_type: model, input_token_size: "<1K"}, kind: DELTA, value_type: DISTRIBUTION, unit: ms,
     buckets: {explicit: {bounds: [0, 100, 250, 500, 1000]}}, values: [0, 0, 12, 36, 12]}
  - {metric: aiplatform.googleapis.com/publisher/online_serving/model_invocation_latencies, resource: *flash,
     labels: {latency_type: model, input_token_size: "1K-10K"}, kind: DELTA, value_type: DISTRIBUTION, unit: ms,
     buckets: {explicit: {bounds: [0, 100, 250, 500, 1000]}}, values: [0, 0, 8, 24, 8]}
  - {metric: aiplatform.googleapis.com/publisher/online_serving/first_token_latencies, resource: *flash,
     kind: DELTA, value_type: DISTRIBUTION, unit: ms,
     buckets: {exponential: {num_finite_buckets: 10, growth_factor: 2, scale: 1}},
     values: [0, 0, 0, 0, 0, 0, 0, 0, 0, 10, 30]}
  - {metric: aiplatform.googleapis.com/publisher/online_serving/token_count, resource: *flash,
     labels: {type: input}, kind: DELTA, value_type: INT64, values: 5000}
  - {metric: aiplatform.googleapis.com/publisher/online_serving/token_count, resource: *flash,
     labels: {type: output}, kind: DELTA, value_type: INT64, values: 1000}
  - {metric: aiplatform.googleapis.com/prediction/online/prediction_latencies, resource: *endpoint,
     labels: {deployed_model_id: "222", latency_type: model}, kind: DELTA, value_type: DISTRIBUTION, unit: ms,
     buckets: {linear: {num_finite_buckets: 10, width: 50, offset: 0}}, values: [0, 10, 30, 10]}
  - {metric: aiplatform.googleapis.com/prediction/online/response_count, resource: *endpoint,
     labels: {deployed_model_id: "222", response_code: "200"}, kind: DELTA, value_type: INT64, values: 48}
  - {metric: aiplatform.googleapis.com/prediction/online/response_count, resource: *endpoint,
     labels: {deployed_model_id: "222", response_code: "503"}, kind: DELTA, value_type: INT64, values: 2}
  - {metric: aiplatform.googleapis.com/prediction/online/replicas, resource: *endpoint,
     labels: {deployed_model_id: "222"}, kind: GAUGE, value_type: INT64, values: 3}
  - {metric: aiplatform.googleapis.com/prediction/online/target_replicas, resource: *endpoint,
     labels: {deployed_model_id: "222"}, kind: GAUGE, value_type: INT64, values: 4}
  - {metric: aiplatform.googleapis.com/quota/generate_content_requests_per_minute_per_project_per_base_model/usage,
     resource: *quota, labels: {base_model: gemini-2.5-flash, limit_name: L, method: GenerateContent},
     kind: DELTA, value_type: INT64, values: 100}
  - {metric: aiplatform.googleapis.com/quota/generate_content_requests_per_minute_per_project_per_base_model/usage,
     resource: *quota, labels: {base_model: gemini-2.5-flash, limit_name: L, method: StreamGenerateContent},
     kind: DELTA, value_type: INT64, values: 20}
  - {metric: aiplatform.googleapis.com/quota/generate_content_requests_per_minute_per_project_per_base_model/limit,
     resource: *quota, labels: {base_model: gemini-2.5-flash, limit_name: L},
     kind: GAUGE, value_type: INT64, values: 200}
  - {metric: aiplatform.googleapis.com/quota/generate_content_requests_per_minute_per_project_per_base_model/exceeded,
     resource: *quota, labels: {base_model: gemini-2.5-flash, limit_name: L}, kind: DELTA, value_type: INT64, values: 3}
  - {metric: aiplatform.googleapis.com/quota/generate_content_requests_per_minute_per_project_per_base_model/usage,
     resource: *quota, labels: {base_model: gemini-2.5-pro, limit_name: L, method: GenerateContent},
     kind: DELTA, value_type: INT64, values: 45}
  - {metric: aiplatform.googleapis.com/quota/generate_content_requests_per_minute_per_project_per_base_model/limit,
     resource: *quota, labels: {base_model: gemini-2.5-pro, limit_name: L}, kind: GAUGE, value_type: INT64, values: 50}
  - {metric: serviceruntime.googleapis.com/quota/limit, resource: *consumer,
     labels: {quota_metric: aiplatform.googleapis.com/custom_model_serving_cpus, limit_name: CpusPerRegion},
     kind: GAUGE, value_type: INT64, values: 32}
  - {metric: serviceruntime.googleapis.com/quota/allocation/usage, resource: *consumer,
     labels: {quota_metric: aiplatform.googleapis.com/custom_model_serving_cpus},
     kind: GAUGE, value_type: INT64, values: 8}
  - {metric: serviceruntime.googleapis.com/quota/limit, resource: *consumer,
     labels: {quota_metric: aiplatform.googleapis.com/online_prediction_requests_per_minute,
              limit_name: OnlinePredictionRequestsPerMinute}, kind: GAUGE, value_type: INT64, values: 600}
  - {metric: serviceruntime.googleapis.com/quota/rate/net_usage, resource: *consumer,
     labels: {quota_metric: aiplatform.googleapis.com/online_prediction_requests_per_minute, method: Predict},
     kind: DELTA, value_type: INT64, values: 300}
  - {metric: serviceruntime.googleapis.com/quota/exceeded, resource: *consumer,
     labels: {quota_metric: aiplatform.googleapis.com/online_prediction_requests_per_minute,
              limit_name: OnlinePredictionRequestsPerMinute}, kind: GAUGE, value_type: BOOL, values: true}
  - {metric: serviceruntime.googleapis.com/quota/rate/net_usage, resource: *consumer,
     labels: {quota_metric: aiplatform.googleapis.com/generate_content_requests_per_minute_per_project_per_base_model,
              method: GenerateContent}, kind: DELTA, value_type: INT64, values: 165}
"""

FLASH = ("location:us-central1", "model:gemini-2.5-flash", "publisher:google")
PRO = ("location:us-central1", "model:gemini-2.5-pro", "publisher:google")
DSQ = ("location:us-central1", "model:gemini-2.0-flash-001", "publisher:google")
ENDPOINT = ("deployed_model_id:222", "endpoint_id:111", "location:us-central1")
QUOTA = "quota_metric:generate_content_requests_per_minute_per_project_per_base_model"


@pytest.fixture
def vertex_env(gcp_env, gcp_key_file, datadog_agent):
    gcp_env.load_scenario(SCENARIO)
    return gcp_env


@pytest.fixture
def make_check(vertex_env, gcp_key_file):
    """A check instance against the emulator; its wall clock starts at `now` (pinned)."""
    now = time.time()

    def make(**options):
        instance = {
            "credentials_path": gcp_key_file,
            "monitoring_endpoint": vertex_env.url,
            "aiplatform_endpoint": vertex_env.url,
            "ingestion_delay": 600,
            "initial_lookback": 300,
            "min_collection_interval": 60,
            "collection_timeout": 30,
            "backoff_base": 0.05,
            "backoff_max": 0.2,
            "tags": ["team:pets"],
            **options,
        }
        check = PettwinVertexAiCheck("pettwin_vertex_ai", {}, [instance])
        check.wall_clock = lambda: now
        return check

    make.now = now
    return make


def tags(*parts):
    return ["team:pets", PROJECT_TAG, *parts]


def window_minutes(now, delay=600, lookback=300):
    end = (now - delay) // 60 * 60
    return end - lookback, end


def timeseries_requests(emulator):
    return [r for r in emulator.requests() if r["path"].endswith("/timeSeries")]


def test_every_family_with_exact_values(make_check, aggregator, vertex_env):
    check = make_check(probe={"enabled": True, "model": "gemini-2.5-flash"})
    check.run()
    n = 5  # minutes in the first window (initial_lookback 300)

    count = aggregator.assert_metric
    count(
        NS + "publisher.invocations",
        value=120 * n,
        metric_type=aggregator.COUNT,
        tags=tags(*FLASH, "response_code_class:2xx", "error_category:none"),
        count=1,
    )
    count(
        NS + "publisher.invocations",
        value=4 * n,
        tags=tags(*FLASH, "response_code_class:4xx", "error_category:capacity"),
        count=1,
    )
    count(
        NS + "publisher.invocations",
        value=2 * n,
        tags=tags(*PRO, "response_code_class:5xx", "error_category:system"),
        count=1,
    )
    count(NS + "publisher.throttled", value=4 * n, tags=tags(*FLASH), count=1)
    count(NS + "publisher.throttled", value=0, tags=tags(*PRO), count=1)
    count(NS + "publisher.error_rate", value=pytest.approx(4 / 124 * 100), tags=tags(*FLASH), count=1)
    count(NS + "publisher.error_rate", value=pytest.approx(2 / 32 * 100), tags=tags(*PRO), count=1)
    count(NS + "publisher.throttle_rate", value=pytest.approx(5 / 15 * 100), tags=tags(*DSQ), count=1)

    # latency: two token-size series merged: per minute 20 in [100,250), 60 in [250,500), 20 in [500,1000)
    model_latency = tags(*FLASH, "latency_type:model")
    count(NS + "publisher.latency.p50", value=pytest.approx(375.0), tags=model_latency, count=1)  # 250+30/60*250
    count(NS + "publisher.latency.p95", value=pytest.approx(875.0), tags=model_latency, count=1)  # 500+15/20*500
    count(NS + "publisher.latency.p99", value=pytest.approx(975.0), tags=model_latency, count=1)
    count(NS + "publisher.latency.avg", value=pytest.approx(410.0), tags=model_latency, count=1)  # midpoints
    # first token: exponential 1,2,...,1024: 10 in [256,512), 30 in [512,1024)
    count(NS + "publisher.first_token_latency.p50", value=pytest.approx(512 + 10 / 30 * 512), tags=tags(*FLASH))
    count(NS + "publisher.first_token_latency.p95", value=pytest.approx(512 + 28 / 30 * 512), tags=tags(*FLASH))
    count(NS + "publisher.first_token_latency.p99", value=pytest.approx(512 + 29.6 / 30 * 512), tags=tags(*FLASH))
    count(NS + "publisher.tokens.input", value=5000 * n, metric_type=aggregator.COUNT, tags=tags(*FLASH))
    count(NS + "publisher.tokens.output", value=1000 * n, tags=tags(*FLASH))
    # spend at Google's list price of gemini-2.5-flash (USD 0.30 / 2.50 per 1M input / output tokens):
    # 25,000 input tokens = 0.0075, 5,000 output tokens = 0.0125
    count(NS + "publisher.cost", value=pytest.approx(0.02), metric_type=aggregator.COUNT, tags=tags(*FLASH), count=1)

    # custom endpoint: linear 0,50,...: 10 in [0,50), 30 in [50,100), 10 in [100,150)
    endpoint_latency = tags(*ENDPOINT, "latency_type:model")
    count(NS + "endpoint.latency.p50", value=pytest.approx(75.0), tags=endpoint_latency)
    count(NS + "endpoint.latency.p95", value=pytest.approx(137.5), tags=endpoint_latency)
    count(NS + "endpoint.latency.p99", value=pytest.approx(147.5), tags=endpoint_latency)
    count(NS + "endpoint.responses", value=48 * n, tags=tags(*ENDPOINT, "response_code_class:2xx"))
    count(NS + "endpoint.responses", value=2 * n, tags=tags(*ENDPOINT, "response_code_class:5xx"))
    count(NS + "endpoint.error_rate", value=pytest.approx(4.0), tags=tags(*ENDPOINT))
    count(NS + "endpoint.replicas", value=3, tags=tags(*ENDPOINT))
    count(NS + "endpoint.target_replicas", value=4, tags=tags(*ENDPOINT))

    # quota per base model: usage = busiest minute (100 + 20), headroom from usage and limit
    flash_quota = tags(QUOTA, "base_model:gemini-2.5-flash", "location:us-central1")
    pro_quota = tags(QUOTA, "base_model:gemini-2.5-pro", "location:us-central1")
    count(NS + "quota.usage", value=120, tags=flash_quota, count=1)
    count(NS + "quota.limit", value=200, tags=flash_quota, count=1)
    count(NS + "quota.headroom_pct", value=pytest.approx(40.0), tags=flash_quota, count=1)
    count(NS + "quota.headroom_pct", value=pytest.approx(10.0), tags=pro_quota, count=1)
    count(NS + "quota.exceeded", value=3 * n, tags=flash_quota, count=1)
    # dynamic shared quota: gemini-2.0-flash-001 has no per-base-model limit
    count(NS + "quota.dynamic_shared", value=1, tags=tags(*DSQ), count=1)
    count(NS + "quota.dynamic_shared", value=0, tags=tags(*FLASH), count=1)
    # discovered through serviceruntime; the configured quota metric is not reported a second time
    cpus = tags("quota_metric:custom_model_serving_cpus", "location:us-central1")
    count(NS + "quota.usage", value=8, tags=cpus, count=1)
    count(NS + "quota.limit", value=32, tags=[*cpus, "limit_name:CpusPerRegion"], count=1)
    count(NS + "quota.headroom_pct", value=pytest.approx(75.0), tags=cpus, count=1)
    online = tags("quota_metric:online_prediction_requests_per_minute", "location:us-central1")
    count(NS + "quota.headroom_pct", value=pytest.approx(50.0), tags=online, count=1)
    count(NS + "quota.exceeded_minutes", value=n, tags=online, count=1)
    assert not [
        m
        for m in aggregator.metrics(NS + "quota.usage")
        if QUOTA in m.tags and not any(t.startswith("base_model:") for t in m.tags)
    ]

    count(
        NS + "probe.latency",
        tags=tags("model:gemini-2.5-flash", "location:us-central1", "probe_method:countTokens", "outcome:ok"),
        count=1,
    )
    aggregator.assert_service_check(
        NS + "can_connect", AgentCheck.OK, tags=tags("model:gemini-2.5-flash", "location:us-central1")
    )
    aggregator.assert_service_check(NS + "monitoring.can_query", AgentCheck.OK, tags=tags())
    # one request per family: 4 publisher + 4 endpoint + 3 per quota metric (2 configured) + 4 serviceruntime
    assert len(timeseries_requests(vertex_env)) == 4 + 4 + 3 * 2 + 4
    count(NS + "api.calls", value=18, tags=tags("api:monitoring"))
    count(NS + "contexts.dropped", value=0, tags=tags("family:publisher_invocations"))
    assert_contract(aggregator, NS, every_row=True)


def test_two_runs_windows_meet_without_gap_or_overlap(make_check, aggregator, vertex_env):
    check = make_check(collect={"endpoints": False, "quota": False})
    check.run()
    first = {r["params"]["filter"][0]: r["params"] for r in timeseries_requests(vertex_env)}
    aggregator.reset()
    vertex_env.reset_requests()
    check.wall_clock = lambda: make_check.now + 180
    check.run()
    second = {r["params"]["filter"][0]: r["params"] for r in timeseries_requests(vertex_env)}
    assert first.keys() == second.keys() and len(first) == 4
    for key in first:
        assert second[key]["interval.startTime"] == first[key]["interval.endTime"]
        # Per-minute periods on the minute grid (where Google anchors longer periods is not published: A17).
        assert second[key]["aggregation.alignmentPeriod"] == ["60s"]
    aggregator.assert_metric(
        NS + "publisher.invocations",
        value=120 * 3,
        tags=tags(*FLASH, "response_code_class:2xx", "error_category:none"),
        count=1,
    )
    aggregator.assert_metric(NS + "publisher.tokens.input", value=5000 * 3, tags=tags(*FLASH), count=1)
    # a third run before a new minute settles queries nothing and counts nothing twice
    aggregator.reset()
    vertex_env.reset_requests()
    check.run()
    assert timeseries_requests(vertex_env) == []
    assert not aggregator.metrics(NS + "publisher.invocations")
    assert_contract(aggregator, NS)


def test_window_survives_a_new_check_instance(make_check, aggregator, vertex_env):
    make_check(collect={"endpoints": False, "quota": False}).run()
    first_end = timeseries_requests(vertex_env)[0]["params"]["interval.endTime"]
    vertex_env.reset_requests()
    restarted = make_check(collect={"endpoints": False, "quota": False})  # like an agent restart
    restarted.wall_clock = lambda: make_check.now + 120
    restarted.run()
    assert timeseries_requests(vertex_env)[0]["params"]["interval.startTime"] == first_end


def test_across_page_boundaries_values_are_unchanged(make_check, aggregator, vertex_env):
    make_check(page_size=1, collect={"endpoints": False, "quota": False}).run()
    requests = timeseries_requests(vertex_env)
    assert sum(1 for r in requests if "pageToken" in r["params"]) >= 6
    aggregator.assert_metric(
        NS + "publisher.invocations",
        value=120 * 5,
        tags=tags(*FLASH, "response_code_class:2xx", "error_category:none"),
        count=1,
    )
    aggregator.assert_metric(
        NS + "publisher.latency.p50", value=pytest.approx(375.0), tags=tags(*FLASH, "latency_type:model"), count=1
    )
    assert_contract(aggregator, NS)


def test_throttled_monitoring_is_retried_and_run_stays_ok(make_check, aggregator, vertex_env):
    vertex_env.inject_fault(r"/timeSeries$", status=429, count=2)
    check = make_check(collect={"endpoints": False, "quota": False})
    check.run()
    aggregator.assert_service_check(NS + "monitoring.can_query", AgentCheck.OK)
    aggregator.assert_metric(
        NS + "publisher.invocations", value=120 * 5, tags=tags(*FLASH, "response_code_class:2xx", "error_category:none")
    )
    assert check.session.stats.retries["monitoring"] == 2


def test_a_failure_that_persists_stops_the_run_and_every_family_catches_up(make_check, aggregator, vertex_env):
    check = make_check(max_attempts=1, collect={"endpoints": False, "quota": False})
    check.run()
    aggregator.reset()
    vertex_env.reset_requests()
    # One attempt per call: a 503 with retries spent would greet every family alike, so the run stops asking.
    vertex_env.inject_fault(r"/timeSeries$", status=503, count=1)
    check.wall_clock = lambda: make_check.now + 120
    check.run()
    [status] = aggregator.service_checks(NS + "monitoring.can_query")
    assert status.status == AgentCheck.CRITICAL
    assert "publisher_invocations" in status.message and "no more calls to it this run" in status.message
    assert len(timeseries_requests(vertex_env)) == 1
    assert not aggregator.metrics(NS + "publisher.invocations")
    assert_contract(aggregator, NS)
    # next run: every window still starts where it ended, so the 2 + 2 minutes are counted once
    aggregator.reset()
    check.wall_clock = lambda: make_check.now + 240
    check.run()
    aggregator.assert_metric(
        NS + "publisher.invocations",
        value=120 * 4,
        tags=tags(*FLASH, "response_code_class:2xx", "error_category:none"),
        count=1,
    )
    aggregator.assert_metric(NS + "publisher.tokens.input", value=5000 * 4, tags=tags(*FLASH))
    aggregator.assert_service_check(NS + "monitoring.can_query", AgentCheck.OK)


@pytest.mark.parametrize("status", [429, 500])
def test_a_persistent_error_is_one_service_check_and_one_family_of_calls(make_check, aggregator, vertex_env, status):
    vertex_env.inject_fault(r"/timeSeries$", status=status)
    started = time.monotonic()
    make_check(backoff_base=0.05).run()
    assert time.monotonic() - started < 5
    [check_status] = aggregator.service_checks(NS + "monitoring.can_query")
    assert check_status.status == AgentCheck.CRITICAL and f"HTTP {status}" in check_status.message
    assert len(timeseries_requests(vertex_env)) == 4  # the first family's attempts, no other family


def test_a_non_json_answer_warns_and_is_not_asked_again(make_check, aggregator, vertex_env):
    vertex_env.inject_fault(r"/timeSeries$", status=200, body="<html>proxy login</html>")
    make_check().run()
    [check_status] = aggregator.service_checks(NS + "monitoring.can_query")
    assert check_status.status == AgentCheck.WARNING
    assert "not JSON" in check_status.message and "monitoring_endpoint" in check_status.message
    assert len(timeseries_requests(vertex_env)) == 1


def test_monitoring_only_asks_for_monitoring_read_tokens(make_check, aggregator, vertex_env):
    make_check(
        credentials_path=None, metadata_endpoint=vertex_env.url, collect={"endpoints": False, "quota": False}
    ).run()
    [token] = [r for r in vertex_env.requests() if r["path"].endswith("/default/token")]
    assert token["params"]["scopes"] == ["https://www.googleapis.com/auth/monitoring.read"]
    aggregator.assert_service_check(NS + "monitoring.can_query", AgentCheck.OK)


def test_a_rejected_token_names_the_credential_source(make_check, aggregator, vertex_env):
    vertex_env.inject_fault(r"(/timeSeries|:countTokens)$", status=401)
    make_check(credentials_path=None, metadata_endpoint=vertex_env.url, probe={"enabled": True}).run()
    for name in ("monitoring.can_query", "can_connect"):
        [status] = aggregator.service_checks(NS + name)
        assert status.status == AgentCheck.CRITICAL
        assert f"rejected the access token from the metadata server at {vertex_env.url}" in status.message


def test_permission_denied_is_critical_and_names_the_role(make_check, aggregator, vertex_env):
    vertex_env.inject_fault(r"/timeSeries$", status=403)
    check = make_check()
    check.run()
    [status] = aggregator.service_checks(NS + "monitoring.can_query")
    assert status.status == AgentCheck.CRITICAL
    assert "roles/monitoring.viewer" in status.message and "credentials_path" in status.message
    assert len(timeseries_requests(vertex_env)) == 1  # stops at the first denial
    vertex_env.clear_faults()
    aggregator.reset()
    check.run()  # the role was granted: recovers without a restart
    aggregator.assert_service_check(NS + "monitoring.can_query", AgentCheck.OK)


def test_token_failure_names_the_credential_source(make_check, aggregator, vertex_env, tmp_path):
    bad_key = tmp_path / "not-json.json"
    bad_key.write_text("-----BEGIN PRIVATE KEY-----\nMIIsecret\n-----END PRIVATE KEY-----\n")
    make_check(credentials_path=str(bad_key), probe={"enabled": True}).run()
    for name in ("monitoring.can_query", "can_connect"):
        [status] = aggregator.service_checks(NS + name)
        assert status.status == AgentCheck.CRITICAL
        assert f"credentials_path {bad_key}" in status.message
        assert "MIIsecret" not in status.message


def test_slow_monitoring_costs_at_most_the_budget_and_next_run_recovers(make_check, aggregator, vertex_env):
    check = make_check(collection_timeout=2, min_collection_interval=60, collect={"endpoints": False, "quota": False})
    check.session.credentials.token(Deadline(10))  # the token is had; only Monitoring is slow
    vertex_env.inject_fault(r"/timeSeries$", latency=4)
    started = time.monotonic()
    check.run()
    assert time.monotonic() - started < 3.5
    [status] = aggregator.service_checks(NS + "monitoring.can_query")
    assert status.status in (AgentCheck.WARNING, AgentCheck.CRITICAL)
    vertex_env.clear_faults()
    aggregator.reset()
    check.run()
    aggregator.assert_service_check(NS + "monitoring.can_query", AgentCheck.OK)
    aggregator.assert_metric(
        NS + "publisher.invocations",
        value=120 * 5,
        tags=tags(*FLASH, "response_code_class:2xx", "error_category:none"),
        count=1,
    )


def test_malformed_answer_warns_with_fewer_metrics(make_check, aggregator, vertex_env):
    vertex_env.inject_fault(r"/timeSeries$", status=200, body='{"timeSeries": {"not": "a list"}}', count=1)
    check = make_check(collect={"endpoints": False, "quota": False})
    check.run()
    aggregator.assert_service_check(NS + "monitoring.can_query", AgentCheck.WARNING)
    assert not aggregator.metrics(NS + "publisher.invocations")
    aggregator.assert_metric(NS + "publisher.tokens.output", value=1000 * 5, tags=tags(*FLASH))
    assert_contract(aggregator, NS)


def test_probe_only_scope_makes_no_monitoring_calls(make_check, aggregator, vertex_env):
    make_check(collect_project_metrics=False, probe={"enabled": True, "model": "gemini-2.5-flash"}).run()
    assert timeseries_requests(vertex_env) == []
    aggregator.assert_service_check(NS + "can_connect", AgentCheck.OK)
    assert not aggregator.service_checks(NS + "monitoring.can_query")
    counts = [r for r in vertex_env.requests() if r["path"].endswith(":countTokens")]
    assert counts[0]["path"] == (
        "/v1/projects/pettwin-demo/locations/us-central1/publishers/google/models/gemini-2.5-flash:countTokens"
    )


@pytest.mark.parametrize(
    "fault, model, status, words",
    [
        (None, "gemini-9-imaginary", AgentCheck.CRITICAL, "probe.model"),
        ({"status": 403}, "gemini-2.5-flash", AgentCheck.CRITICAL, "roles/aiplatform.user"),
        ({"status": 429}, "gemini-2.5-flash", AgentCheck.WARNING, "throttled"),
        ({"latency": 3}, "gemini-2.5-flash", AgentCheck.CRITICAL, "egress firewall"),
        ({"status": 200, "body": "<html>proxy</html>"}, "gemini-2.5-flash", AgentCheck.WARNING, "not JSON"),
    ],
)
def test_probe_failures_say_what_to_fix(make_check, aggregator, vertex_env, fault, model, status, words):
    if fault:
        vertex_env.inject_fault(r":countTokens$", **fault)
    make_check(collect_project_metrics=False, probe={"enabled": True, "model": model, "timeout": 1}).run()
    [check_status] = aggregator.service_checks(NS + "can_connect")
    assert check_status.status == status
    assert words in check_status.message
    assert_contract(aggregator, NS)


def test_probe_runs_on_its_own_interval(make_check, aggregator, vertex_env):
    check = make_check(collect_project_metrics=False, probe={"enabled": True, "min_interval": 3600})
    check.run()
    check.run()
    assert len([r for r in vertex_env.requests() if r["path"].endswith(":countTokens")]) == 1
    assert len(aggregator.service_checks(NS + "can_connect")) == 2  # the last outcome is repeated


def test_cardinality_budget_drops_and_reports(make_check, aggregator, vertex_env):
    make_check(max_contexts=2, collect={"endpoints": False, "quota": False}).run()
    # 6 tag sets (3 models x ok/failed) over a budget of 2: the heaviest kept, rates computed from all of them
    aggregator.assert_metric(NS + "contexts.dropped", value=4, tags=tags("family:publisher_invocations"))
    assert sorted(m.value for m in aggregator.metrics(NS + "publisher.invocations")) == [150, 600]
    assert sorted(m.value for m in aggregator.metrics(NS + "publisher.error_rate")) == pytest.approx(
        [2 / 32 * 100, 5 / 15 * 100]
    )


def test_spend_from_the_default_scenarios_token_series(make_check, aggregator, vertex_env):
    # The demo's scenario: its token series cycle every 5 minutes, so a 5-minute window holds each value once.
    vertex_env.load_scenario("default")
    make_check(collect={"endpoints": False, "quota": False}).run()
    flash_in, flash_out = 60000 + 65000 + 62500 + 70000 + 67500, 12000 + 13000 + 12500 + 14000 + 13500
    pro_in, pro_out = 32000 * 5, 8000 * 5
    spend = {
        next(t for t in m.tags if t.startswith("model:")): m.value for m in aggregator.metrics(NS + "publisher.cost")
    }
    assert spend == pytest.approx(
        {
            "model:gemini-2.5-flash": (flash_in * 0.30 + flash_out * 2.50) / 1e6,  # 0.0975 + 0.1625 = 0.26 USD
            "model:gemini-2.5-pro": (pro_in * 1.25 + pro_out * 10.0) / 1e6,  # 0.20 + 0.40 = 0.60 USD
        }
    )


UNPRICED_TOKENS = """
  - {metric: aiplatform.googleapis.com/publisher/online_serving/token_count,
     resource: {type: aiplatform.googleapis.com/PublisherModel, labels: {resource_container: "412345678901",
                location: us-central1, publisher: google, model_user_id: gemini-9-imaginary, model_version_id: "1"}},
     labels: {type: input}, kind: DELTA, value_type: INT64, values: 700}
"""


def test_spend_uses_overrides_and_leaves_unpriced_models_out(make_check, aggregator, vertex_env, caplog):
    vertex_env.load_scenario(SCENARIO + UNPRICED_TOKENS)
    check = make_check(
        collect={"endpoints": False, "quota": False}, token_prices={"gemini-2.5-flash": {"input": 0.1, "output": 1}}
    )
    check.run()
    # 25,000 input tokens at 0.10 and 5,000 output tokens at 1.00 per 1M: the negotiated price, not the list one.
    aggregator.assert_metric(NS + "publisher.cost", value=pytest.approx(0.0075), tags=tags(*FLASH), count=1)
    # The model without a price gets no estimate, not 0, and is named once across runs.
    assert [m for m in aggregator.metrics(NS + "publisher.cost") if "model:gemini-9-imaginary" in m.tags] == []
    aggregator.assert_metric(
        NS + "publisher.tokens.input", value=700 * 5, tags=tags(*FLASH[:1], "model:gemini-9-imaginary", FLASH[2])
    )
    check.wall_clock = lambda: make_check.now + 120
    check.run()
    named = [r for r in caplog.records if "No price in token_prices for gemini-9-imaginary:" in r.getMessage()]
    assert len(named) == 1 and named[0].levelname == "WARNING"
    assert_contract(aggregator, NS)


@pytest.mark.parametrize(
    "options, field",
    [
        ({"locations": ["US Central"]}, "locations"),
        ({"collection_timeout": 120}, "collection_timeout"),
        ({"collect_project_metrics": False}, "collect nothing"),
        ({"probe": {"enabled": True, "method": "predict"}}, "probe.method"),
        ({"quota_metrics": ["bad metric!"]}, "quota_metrics"),
        ({"credentials_path": "/nonexistent/key.json"}, "credentials_path"),
        ({"token_prices": {"gemini-2.5-flash": {"input": -1, "output": 2.5}}}, "token_prices"),
        ({"token_prices": {"gemini-2.5-flash": {"input": 0.3}}}, "token_prices"),
    ],
)
def test_bad_config_fails_at_init_naming_the_field(vertex_env, options, field):
    with pytest.raises(ConfigurationError, match=field.replace(".", r"\.?.*")):
        PettwinVertexAiCheck("pettwin_vertex_ai", {}, [options])
