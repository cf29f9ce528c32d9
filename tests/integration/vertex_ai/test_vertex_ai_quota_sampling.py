"""Quota series Google writes once a day (serviceruntime quota/limit, unchanged quota/allocation/usage): read over
25 h at most hourly, the last answer kept in the persistent cache, so headroom appears on every run, also after an
agent restart. The default emulator scenario serves them at Google's cadence (newest limit point 5 h old,
allocation 7 h old), over real HTTP."""

from __future__ import annotations

import time

import pytest

from pettwin_checks.gcp.timeseries import parse_rfc3339
from pettwin_checks.vertex_ai.check import PettwinVertexAiCheck
from tests.contract import assert_contract

pytestmark = pytest.mark.integration

NS = "pettwin.vertex_ai."
LIMIT = "serviceruntime.googleapis.com/quota/limit"
ALLOCATION = "serviceruntime.googleapis.com/quota/allocation/usage"
# default.yaml: 8 of 32 custom-model serving CPUs allocated in us-central1.
CPUS = ["project_id:pettwin-demo", "location:us-central1", "quota_metric:custom_model_serving_cpus"]


def quota_check(emulator, key_file, **options) -> PettwinVertexAiCheck:
    instance = {
        "credentials_path": key_file,
        "monitoring_endpoint": emulator.url,
        "min_collection_interval": 60,
        "collect": {"publisher_models": False, "endpoints": False},
        "backoff_base": 0.05,
        **options,
    }
    return PettwinVertexAiCheck("pettwin_vertex_ai", {}, [instance])


def queries_of(emulator, metric_type: str) -> list[dict]:
    return [
        r
        for r in emulator.requests()
        if r["path"].endswith("/timeSeries") and f'"{metric_type}"' in r["params"]["filter"][0]
    ]


def test_headroom_on_every_run_and_across_a_restart_with_limits_sampled_daily(
    aggregator, datadog_agent, gcp_env, gcp_key_file
):
    now = time.time()
    check = quota_check(gcp_env, gcp_key_file)
    check.wall_clock = lambda: now
    check.run()
    aggregator.assert_metric(
        NS + "quota.limit", 32, tags=[*CPUS, "limit_name:CustomModelServingCPUsPerProjectPerRegion"]
    )
    aggregator.assert_metric(NS + "quota.usage", 8, tags=CPUS)
    aggregator.assert_metric(NS + "quota.headroom_pct", 75.0, tags=CPUS, count=1)
    (limit_query,) = queries_of(gcp_env, LIMIT)
    params = limit_query["params"]
    span = parse_rfc3339(params["interval.endTime"][0]) - parse_rfc3339(params["interval.startTime"][0])
    assert span >= 25 * 3600  # holds the daily point whatever its phase
    assert params["aggregation.alignmentPeriod"] == ["3600s"]
    assert len(queries_of(gcp_env, ALLOCATION)) == 1
    assert_contract(aggregator, NS)

    # Later runs within the hour: the same figures from the kept answer, no new 25 h reads.
    for minutes in (1, 30):
        aggregator.reset()
        check.wall_clock = lambda minutes=minutes: now + 60 * minutes
        check.run()
        aggregator.assert_metric(NS + "quota.headroom_pct", 75.0, tags=CPUS, count=1)
    assert len(queries_of(gcp_env, LIMIT)) == 1 and len(queries_of(gcp_env, ALLOCATION)) == 1

    # An agent restart: a new check instance reads the kept answer from the persistent cache.
    aggregator.reset()
    restarted = quota_check(gcp_env, gcp_key_file)
    restarted.wall_clock = lambda: now + 40 * 60
    restarted.run()
    aggregator.assert_metric(NS + "quota.headroom_pct", 75.0, tags=CPUS, count=1)
    assert len(queries_of(gcp_env, LIMIT)) == 1

    # An hour after the read: read again.
    aggregator.reset()
    restarted.wall_clock = lambda: now + 61 * 60
    restarted.run()
    assert len(queries_of(gcp_env, LIMIT)) == 2 and len(queries_of(gcp_env, ALLOCATION)) == 2
    aggregator.assert_metric(NS + "quota.headroom_pct", 75.0, tags=CPUS, count=1)


def test_a_failed_refresh_keeps_the_last_known_limit(aggregator, datadog_agent, gcp_env, gcp_key_file):
    now = time.time()
    check = quota_check(gcp_env, gcp_key_file, quota_refresh_interval=60)
    check.wall_clock = lambda: now
    check.run()
    aggregator.reset()
    gcp_env.inject_fault(r"/timeSeries$", status=400)  # every query refused, the refresh among them
    check.wall_clock = lambda: now + 120
    check.run()
    aggregator.assert_metric(
        NS + "quota.limit", 32, tags=[*CPUS, "limit_name:CustomModelServingCPUsPerProjectPerRegion"]
    )
    aggregator.assert_metric(NS + "quota.headroom_pct", 75.0, tags=CPUS)
    assert len(queries_of(gcp_env, LIMIT)) == 2
