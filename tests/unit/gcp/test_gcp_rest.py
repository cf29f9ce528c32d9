"""Retry, deadline and error-body handling of GcpRestClient. The HTTP layer is scripted: these are error paths;
tests/integration/gcp runs the same client against the emulator over real HTTP."""

import json

import pytest
import requests

from pettwin_checks.deadline import Deadline, DeadlineExceeded
from pettwin_checks.gcp.errors import GcpApiError
from pettwin_checks.gcp.rest import GcpRestClient, RetryPolicy, parse_error_body
from pettwin_checks.gcp.stats import ApiCallStats

pytestmark = pytest.mark.unit


class ScriptedResponse:
    def __init__(self, status, body=None, headers=None):
        self.status_code = status
        self.text = body if isinstance(body, str) else json.dumps(body) if body is not None else ""
        self.content = self.text.encode()
        self.headers = headers or {}

    def json(self):
        return json.loads(self.text)


class ScriptedHttp:
    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    def get(self, url, **options):
        self.calls.append(options)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class FixedCredentials:
    def __init__(self):
        self.refreshes = 0

    def token(self, deadline, force_refresh=False):
        self.refreshes += force_refresh
        return f"ya29.token-{self.refreshes}"


def google_error(code, status, message="boom", reason=None):
    error = {"code": code, "message": message, "status": status}
    if reason:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason}]
    return {"error": error}


def client(http, sleeps, **retry):
    return GcpRestClient(
        http, FixedCredentials(), ApiCallStats(), RetryPolicy(**retry), sleep=sleeps.append, rand=lambda: 1.0
    )


def test_429_and_5xx_are_retried_with_exponential_backoff_then_succeed():
    http = ScriptedHttp(
        ScriptedResponse(429, google_error(429, "RESOURCE_EXHAUSTED")),
        ScriptedResponse(503, "<html>unavailable</html>"),
        ScriptedResponse(200, {"ok": 1}),
    )
    sleeps = []
    rest = client(http, sleeps, backoff_base=0.5, backoff_max=8)
    assert rest.get_json("monitoring", "https://x/v3", Deadline(30)) == {"ok": 1}
    assert sleeps == [0.5, 1.0]  # full jitter with rand=1: base * 2**(attempt-1)
    assert rest.stats.calls["monitoring"] == 3 and rest.stats.retries["monitoring"] == 2
    assert http.calls[0]["extra_headers"]["Authorization"] == "Bearer ya29.token-0"


def test_retry_after_is_honoured():
    http = ScriptedHttp(
        ScriptedResponse(429, google_error(429, "RESOURCE_EXHAUSTED"), {"Retry-After": "3"}), ScriptedResponse(200, {})
    )
    sleeps = []
    client(http, sleeps).get_json("monitoring", "https://x", Deadline(30))
    assert sleeps == [3.0]


def test_attempts_are_bounded_and_the_last_error_is_raised():
    http = ScriptedHttp(*[ScriptedResponse(500, google_error(500, "INTERNAL", "backend error"))] * 3)
    sleeps = []
    rest = client(http, sleeps, max_attempts=3)
    with pytest.raises(GcpApiError) as raised:
        rest.get_json("monitoring", "https://x", Deadline(30))
    assert raised.value.status == 500 and raised.value.grpc_status == "INTERNAL"
    assert len(http.calls) == 3 and rest.stats.failures["monitoring"] == 1


def test_no_retry_when_the_wait_would_pass_the_deadline():
    http = ScriptedHttp(ScriptedResponse(429, google_error(429, "RESOURCE_EXHAUSTED"), {"Retry-After": "60"}))
    sleeps = []
    with pytest.raises(GcpApiError):
        client(http, sleeps).get_json("monitoring", "https://x", Deadline(5))
    assert sleeps == []


def test_each_attempt_gets_at_most_what_is_left_of_the_deadline():
    http = ScriptedHttp(ScriptedResponse(200, {}))
    client(http, [], call_timeout=20).get_json("monitoring", "https://x", Deadline(2))
    assert 0 < http.calls[0]["timeout"] <= 2


def test_spent_deadline_raises_before_calling():
    http = ScriptedHttp()
    with pytest.raises(DeadlineExceeded):
        client(http, []).get_json("monitoring", "https://x", Deadline(0))
    assert http.calls == []


def test_403_is_not_retried_and_keeps_googles_reason():
    http = ScriptedHttp(
        ScriptedResponse(
            403,
            google_error(
                403,
                "PERMISSION_DENIED",
                "Permission monitoring.timeSeries.list denied (or the resource may not exist).",
                "IAM_PERMISSION_DENIED",
            ),
        )
    )
    with pytest.raises(GcpApiError) as raised:
        client(http, []).get_json("monitoring", "https://x", Deadline(30))
    assert raised.value.permission_denied and raised.value.reason == "IAM_PERMISSION_DENIED"
    assert "monitoring.timeSeries.list" in str(raised.value)
    assert len(http.calls) == 1


def test_401_refreshes_the_token_once():
    http = ScriptedHttp(ScriptedResponse(401, google_error(401, "UNAUTHENTICATED")), ScriptedResponse(200, {}))
    rest = client(http, [])
    rest.get_json("monitoring", "https://x", Deadline(30))
    assert rest.credentials.refreshes == 1
    assert http.calls[1]["extra_headers"]["Authorization"] == "Bearer ya29.token-1"


def test_network_errors_are_retried_and_reported_without_the_request():
    http = ScriptedHttp(
        requests.ConnectionError("Bearer ya29.secret failed"), requests.Timeout("slow"), ScriptedResponse(200, {"a": 1})
    )
    assert client(http, []).get_json("monitoring", "https://x", Deadline(30)) == {"a": 1}
    http = ScriptedHttp(requests.ConnectionError("Authorization: Bearer ya29.secret refused"))
    with pytest.raises(GcpApiError) as raised:
        client(http, [], max_attempts=1).get_json("monitoring", "https://x", Deadline(30))
    assert raised.value.status == 0 and "ya29" not in str(raised.value)


def test_error_bodies_google_oauth_and_garbage():
    assert (
        parse_error_body("m", 429, json.dumps(google_error(429, "RESOURCE_EXHAUSTED", "Quota"))).grpc_status
        == "RESOURCE_EXHAUSTED"
    )
    oauth = parse_error_body("auth", 400, json.dumps({"error": "invalid_grant", "error_description": "Bad JWT"}))
    assert oauth.message == "invalid_grant: Bad JWT"
    assert parse_error_body("m", 502, "<html>").message == "non-JSON error body"
    assert parse_error_body("m", 502, "").message == "empty error body"
