"""pettwin_checks.gcp against the local emulator over real HTTP: credentials, paging, retries, deadlines."""

import json
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from datadog_checks.base.utils.http import RequestsWrapper

from pettwin_checks.gcp import (
    Aggregation,
    Deadline,
    DeadlineExceeded,
    GcpApiError,
    GcpAuthError,
    GcpSession,
    RetryPolicy,
    TimeSeriesQuery,
    next_window,
)

pytestmark = pytest.mark.integration

INVOCATIONS = TimeSeriesQuery(
    "aiplatform.googleapis.com/publisher/online_serving/model_invocation_count",
    Aggregation("ALIGN_DELTA", "REDUCE_SUM", ("resource.label.model_user_id", "metric.label.response_code")),
    "aiplatform.googleapis.com/PublisherModel",
)


FAST_RETRY = RetryPolicy(backoff_base=0.05, backoff_max=0.2)


def session_for(emulator, retry=FAST_RETRY, **options):
    options = {"monitoring_endpoint": emulator.url, "iam_credentials_endpoint": emulator.url, **options}
    return GcpSession(RequestsWrapper(options, {}), options, apis=("monitoring", "run"), retry=retry)


def settled_window():
    # The emulator's newest point is the last minute that ended; a 5-minute window ending there is complete.
    return next_window(time.time(), None, ingestion_delay=60, initial_lookback=300, max_lookback=3600)


def expected_invocations(emulator, window, model, code):
    specs = emulator.series(INVOCATIONS.metric_type, {"response_code": code}, {"model_user_id": model})
    minutes = range(int(window.start) // 60, int(window.end) // 60)
    return sum(spec.value_at_minute(m) or 0 for spec in specs for m in minutes)


def invocation_totals(result):
    return {(s.label("model_user_id"), s.label("response_code")): s.points[0].value for s in result.series}


def test_service_account_key_file_gets_a_token_and_reads_series(gcp_env, gcp_key_file):
    session = session_for(gcp_env, credentials_path=gcp_key_file)
    deadline = Deadline(20)
    assert session.credentials.source == f"credentials_path {gcp_key_file}"
    assert session.project_id(deadline) == gcp_env.project_id  # from the key file
    window = settled_window()
    result = session.monitoring(gcp_env.project_id).list_time_series(
        INVOCATIONS, window.start, window.end, deadline, period_seconds=window.seconds
    )
    totals = invocation_totals(result)
    assert totals[("gemini-2.5-flash", "200")] == expected_invocations(gcp_env, window, "gemini-2.5-flash", "200")
    assert totals[("gemini-2.5-pro", "429")] == expected_invocations(gcp_env, window, "gemini-2.5-pro", "429")
    assert session.stats.calls == {"auth": 1, "monitoring": 1}


def test_metadata_server_credentials_and_identity(gcp_env):
    session = session_for(gcp_env)  # no file: the metadata server, found through GCE_METADATA_HOST
    deadline = Deadline(20)
    assert session.credentials.source.startswith(f"the metadata server at http://{gcp_env.metadata_host}")
    assert session.project_id(deadline) == gcp_env.project_id
    assert session.metadata.region(deadline) == gcp_env.region
    window = settled_window()
    result = session.monitoring(gcp_env.project_id).list_time_series(
        INVOCATIONS, window.start, window.end, deadline, period_seconds=window.seconds
    )
    assert result.series
    token_requests = [r for r in gcp_env.requests() if r["path"].endswith("/service-accounts/default/token")]
    assert len(token_requests) == 1


def test_paging_follows_every_page_and_totals_match(gcp_env, gcp_key_file):
    session = session_for(gcp_env, credentials_path=gcp_key_file)
    deadline = Deadline(20)
    window = settled_window()
    result = session.monitoring(gcp_env.project_id, page_size=2).list_time_series(
        INVOCATIONS, window.start, window.end, deadline, period_seconds=window.seconds
    )
    single = session.monitoring(gcp_env.project_id).list_time_series(
        INVOCATIONS, window.start, window.end, deadline, period_seconds=window.seconds
    )
    assert result.pages == 3 and single.pages == 1  # 5 grouped series
    assert invocation_totals(result) == invocation_totals(single)
    tokens = [r["params"].get("pageToken") for r in gcp_env.requests() if r["path"].endswith("/timeSeries")]
    assert tokens[0] is None and all(tokens[1:3])


def test_throttled_then_recovered_within_the_deadline(gcp_env, gcp_key_file):
    session = session_for(gcp_env, credentials_path=gcp_key_file)
    gcp_env.inject_fault(r"/timeSeries$", status=429, count=2)
    window = settled_window()
    result = session.monitoring(gcp_env.project_id).list_time_series(
        INVOCATIONS, window.start, window.end, Deadline(20), period_seconds=window.seconds
    )
    assert result.series
    assert session.stats.retries["monitoring"] == 2 and session.stats.calls["monitoring"] == 3


def test_permission_denied_is_not_retried(gcp_env, gcp_key_file):
    session = session_for(gcp_env, credentials_path=gcp_key_file)
    gcp_env.inject_fault(r"/timeSeries$", status=403)
    window = settled_window()
    with pytest.raises(GcpApiError) as raised:
        session.monitoring(gcp_env.project_id).list_time_series(
            INVOCATIONS, window.start, window.end, Deadline(20), period_seconds=window.seconds
        )
    assert raised.value.permission_denied and raised.value.grpc_status == "PERMISSION_DENIED"
    assert session.stats.calls["monitoring"] == 1


def test_a_slow_api_costs_at_most_the_budget(gcp_env, gcp_key_file):
    session = session_for(gcp_env, credentials_path=gcp_key_file)
    session.credentials.token(Deadline(10))
    gcp_env.inject_fault(r"/timeSeries$", latency=5)
    window = settled_window()
    started = time.monotonic()
    with pytest.raises((GcpApiError, DeadlineExceeded)):
        session.monitoring(gcp_env.project_id).list_time_series(
            INVOCATIONS, window.start, window.end, Deadline(1.5), period_seconds=window.seconds
        )
    assert time.monotonic() - started < 2.5


def test_expired_token_is_refreshed(gcp_env, gcp_key_file):
    session = session_for(gcp_env, credentials_path=gcp_key_file)
    window = settled_window()
    monitoring = session.monitoring(gcp_env.project_id)
    monitoring.list_time_series(INVOCATIONS, window.start, window.end, Deadline(20), period_seconds=window.seconds)
    gcp_env.expire_tokens()  # the server now rejects the cached token with 401
    result = monitoring.list_time_series(
        INVOCATIONS, window.start, window.end, Deadline(20), period_seconds=window.seconds
    )
    assert result.series
    assert session.stats.calls["auth"] == 2


def test_impersonation_goes_through_iam_credentials(gcp_env, gcp_key_file):
    target = f"pettwin-reader@{gcp_env.project_id}.iam.gserviceaccount.com"
    session = session_for(gcp_env, credentials_path=gcp_key_file, impersonate_service_account=target)
    assert session.credentials.source.endswith(f"impersonating {target}")
    window = settled_window()
    result = session.monitoring(gcp_env.project_id).list_time_series(
        INVOCATIONS, window.start, window.end, Deadline(20), period_seconds=window.seconds
    )
    assert result.series
    paths = [r["path"] for r in gcp_env.requests()]
    assert f"/v1/projects/-/serviceAccounts/{target}:generateAccessToken" in paths


def test_a_key_the_token_endpoint_rejects_names_the_source_and_leaks_nothing(gcp_env, tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path = tmp_path / "foreign-key.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": gcp_env.project_id,
                "private_key_id": "0" * 40,
                "private_key": pem,
                "client_email": f"stranger@{gcp_env.project_id}.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": gcp_env.token_uri,
            }
        )
    )
    session = session_for(gcp_env, credentials_path=str(path))
    with pytest.raises(GcpAuthError) as raised:
        session.credentials.token(Deadline(10))
    message = str(raised.value)
    assert f"credentials_path {path}" in message and "invalid_grant" in message
    assert "PRIVATE KEY" not in message and pem.splitlines()[1] not in message


def test_unreadable_credentials_file_names_the_source(gcp_env, tmp_path):
    session = session_for(gcp_env, credentials_path=str(tmp_path / "missing.json"))
    with pytest.raises(GcpAuthError, match=r"credentials_path .*missing.json: cannot read the file"):
        session.credentials.token(Deadline(5))


def test_unreachable_metadata_server_names_the_source(gcp_env, monkeypatch):
    monkeypatch.delenv("GCE_METADATA_HOST")
    session = session_for(gcp_env, metadata_endpoint="127.0.0.1:9")  # discard port: connection refused
    with pytest.raises(GcpAuthError, match=r"the metadata server at http://127.0.0.1:9"):
        session.credentials.token(Deadline(5))
