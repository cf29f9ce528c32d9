"""Project scope against Google's contract: the token scopes the check asks for, what a scope refusal says, and one
api.can_connect per API per run however the API fails. The GCP emulator over real HTTP."""

from __future__ import annotations

import json
import time

import pytest
from datadog_checks.base import AgentCheck

from pettwin_checks.cloud_run.check import PettwinCloudRunCheck
from pettwin_checks.gcp.scopes import AUTH, MONITORING_READ, RUN_READONLY
from tests.contract import assert_contract

pytestmark = pytest.mark.integration

NS = "pettwin.cloud_run."
TIME_SERIES = "/v3/projects/pettwin-demo/timeSeries"
# Google's answer to a token without an accepted scope (google.rpc.Status with ErrorInfo).
SCOPE_403 = json.dumps(
    {
        "error": {
            "code": 403,
            "message": "Request had insufficient authentication scopes.",
            "status": "PERMISSION_DENIED",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
                    "domain": "googleapis.com",
                    "metadata": {
                        "service": "monitoring.googleapis.com",
                        "method": "google.monitoring.v3.MetricService.ListTimeSeries",
                    },
                }
            ],
        }
    }
)


def project_check(emulator, **options) -> PettwinCloudRunCheck:
    instance = {
        "metadata_endpoint": emulator.url,
        "run_endpoint": emulator.url,
        "monitoring_endpoint": emulator.url,
        "project_id": "pettwin-demo",
        "location": "us-central1",
        "services": ["pettwin-backend"],
        "probes": [],
        "collect_container_resources": False,
        **options,
    }
    return PettwinCloudRunCheck("pettwin_cloud_run", {}, [instance])


def api_checks(aggregator, api: str):
    return [sc for sc in aggregator.service_checks(NS + "api.can_connect") if f"api:{api}" in sc.tags]


def token_requests(emulator) -> list[dict]:
    return [r for r in emulator.requests() if r["path"].endswith("/service-accounts/default/token")]


def test_tokens_from_the_metadata_server_carry_read_scopes_both_apis_accept(aggregator, datadog_agent, gcp_env):
    project_check(gcp_env).run()
    (request,) = token_requests(gcp_env)
    assert request["params"]["scopes"] == [f"{MONITORING_READ},{RUN_READONLY}"]
    for api in ("run", "monitoring"):
        (status,) = api_checks(aggregator, api)
        assert status.status == AgentCheck.OK, status.message
    aggregator.assert_metric(NS + "service.ready", 1)
    aggregator.assert_metric(NS + "request.count")


def test_a_read_only_token_gets_googles_403_and_a_message_naming_the_scope(aggregator, datadog_agent, gcp_env):
    check = project_check(gcp_env)
    # A token minted for cloud-platform.read-only, which neither timeSeries.list nor the Admin API v2 accepts.
    check._client.credentials.scopes = (AUTH + "cloud-platform.read-only",)
    check.run()
    assert token_requests(gcp_env)[0]["params"]["scopes"] == [AUTH + "cloud-platform.read-only"]
    refused = [r for r in gcp_env.requests() if r["status"] == 403]
    assert {r["path"].split("/")[1] for r in refused} == {"v2", "v3"}
    (monitoring,) = api_checks(aggregator, "monitoring")
    assert monitoring.status == AgentCheck.CRITICAL
    assert monitoring.message.startswith(
        "Cloud Monitoring API refused the token on project pettwin-demo: the access token lacks the OAuth scope "
        f"{MONITORING_READ} (or {AUTH}monitoring or {AUTH}cloud-platform) (ACCESS_TOKEN_SCOPE_INSUFFICIENT); this "
        "is a token scope problem, not a missing IAM role."
    )
    assert "roles/" not in monitoring.message
    (run,) = api_checks(aggregator, "run")
    assert run.status == AgentCheck.CRITICAL and RUN_READONLY in run.message
    # One refused call per API: the other families are not asked.
    assert sum(r["path"] == TIME_SERIES for r in gcp_env.requests()) == 1


def test_scope_refusal_body_is_read_as_a_scope_problem_not_a_role(aggregator, datadog_agent, gcp_env):
    gcp_env.inject_fault(f"^{TIME_SERIES}$", status=403, body=SCOPE_403)
    project_check(gcp_env, collect_revision_health=False).run()
    (monitoring,) = api_checks(aggregator, "monitoring")
    assert monitoring.status == AgentCheck.CRITICAL
    assert f"lacks the OAuth scope {MONITORING_READ}" in monitoring.message
    assert "Grant" not in monitoring.message


def test_a_missing_role_still_names_the_role(aggregator, datadog_agent, gcp_env):
    gcp_env.inject_fault(f"^{TIME_SERIES}$", status=403)
    project_check(gcp_env, collect_revision_health=False).run()
    (monitoring,) = api_checks(aggregator, "monitoring")
    assert monitoring.message.startswith("Cloud Monitoring API denied access on project pettwin-demo")
    assert "grant roles/monitoring.viewer to the agent's identity (the metadata server at " in monitoring.message


@pytest.mark.parametrize("status", [429, 500])
def test_a_persistent_error_is_one_service_check_and_one_family_of_calls(aggregator, datadog_agent, gcp_env, status):
    gcp_env.inject_fault(f"^{TIME_SERIES}$", status=status)
    started = time.monotonic()
    project_check(gcp_env, collect_revision_health=False).run()
    elapsed = time.monotonic() - started
    (monitoring,) = api_checks(aggregator, "monitoring")
    assert monitoring.status == AgentCheck.CRITICAL
    assert f"HTTP {status}" in monitoring.message and "no more calls to it this run" in monitoring.message
    # The retries of the first family (4 attempts), then no other family is asked.
    assert sum(r["path"] == TIME_SERIES for r in gcp_env.requests()) == 4
    assert elapsed < 8.0
    assert not aggregator.metrics(NS + "request.count")
    assert_contract(aggregator, NS)


def test_a_non_json_answer_is_a_warning_and_not_asked_again(aggregator, datadog_agent, gcp_env):
    gcp_env.inject_fault(f"^{TIME_SERIES}$", status=200, body="<html>proxy login</html>")
    project_check(gcp_env, collect_revision_health=False).run()
    (monitoring,) = api_checks(aggregator, "monitoring")
    assert monitoring.status == AgentCheck.WARNING
    assert "answered with something other than its JSON" in monitoring.message
    assert "monitoring_endpoint" in monitoring.message
    assert sum(r["path"] == TIME_SERIES for r in gcp_env.requests()) == 1

    gcp_env.clear_faults()
    aggregator.reset()
    project_check(gcp_env, collect_revision_health=False).run()
    (monitoring,) = api_checks(aggregator, "monitoring")
    assert monitoring.status == AgentCheck.OK
