"""JSON REST calls to Google APIs over the check's HTTP wrapper: auth header, deadline, retries, error parsing.

Retries: 429 and 5xx answers, connection failures and timeouts are retried with exponential backoff and full
jitter (a random wait between 0 and base * 2**attempt, capped), honouring Retry-After, for at most
`max_attempts` attempts and never past the run's deadline. A 401 gets one retry with a freshly refreshed token.
Other 4xx are raised at once. Error bodies are Google's google.rpc.Status JSON ({"error": {code, message,
status, details}}); the ErrorInfo reason is kept.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

from pettwin_checks.deadline import Deadline, DeadlineExceeded

from .credentials import GoogleCredentials
from .errors import GcpApiError, MalformedResponse, NotJson, redact
from .stats import ApiCallStats

ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    call_timeout: float = 20.0  # cap for one HTTP attempt; the deadline may cut it shorter

    def backoff(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number `attempt` (1-based): full jitter over an exponential cap."""
        return rand() * min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))


def parse_error_body(api: str, status: int, text: str) -> GcpApiError:
    """A GcpApiError from Google's JSON error body; tolerant of bodies that are not JSON (proxies, HTML)."""
    grpc_status = reason = ""
    message = ""
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message") or "")
        grpc_status = str(error.get("status") or "")
        for detail in error.get("details") or []:
            if isinstance(detail, dict) and detail.get("@type") == ERROR_INFO_TYPE:
                reason = str(detail.get("reason") or "")
    elif isinstance(error, str):  # OAuth-style {"error": "...", "error_description": "..."}
        message = f"{error}: {body.get('error_description', '')}"
    if not message:
        message = "non-JSON error body" if text else "empty error body"
    return GcpApiError(api, status, message, grpc_status, reason)


def _retry_after(response) -> float | None:
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date; the backoff applies instead


class GcpRestClient:
    """Calls Google REST APIs. One per check instance; `stats` counts every attempt per API."""

    def __init__(
        self,
        http,
        credentials: GoogleCredentials,
        stats: ApiCallStats,
        retry: RetryPolicy | None = None,
        log=None,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ):
        self._http = http
        self.credentials = credentials
        self.stats = stats
        self.retry = retry or RetryPolicy()
        self._log = log
        self._sleep = sleep
        self._rand = rand

    def get_json(self, api: str, url: str, deadline: Deadline, params=None) -> dict:
        return self.request_json("GET", api, url, deadline, params=params)

    def post_json(self, api: str, url: str, deadline: Deadline, body: dict, params=None) -> dict:
        return self.request_json("POST", api, url, deadline, params=params, body=body)

    def request_json(self, method: str, api: str, url: str, deadline: Deadline, params=None, body=None) -> dict:
        """The decoded JSON object of a 2xx answer. Raises GcpApiError, GcpAuthError, DeadlineExceeded,
        MalformedResponse."""
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            token = self.credentials.token(deadline, force_refresh=False)
            response = None
            try:
                timeout = deadline.timeout(self.retry.call_timeout)
                self.stats.record(api)
                headers = {"Authorization": f"Bearer {token}"}
                if body is not None:
                    headers["Content-Type"] = "application/json"
                response = getattr(self._http, method.lower())(
                    url,
                    params=params,
                    data=json.dumps(body) if body is not None else None,
                    timeout=timeout,
                    extra_headers=headers,
                )
                if 200 <= response.status_code < 300:
                    return _decode_json(api, response)
                error = parse_error_body(api, response.status_code, response.text)
            except requests.Timeout:
                error = GcpApiError(api, 0, f"no answer within {timeout:.1f} s")
            except requests.RequestException as failure:
                error = GcpApiError(api, 0, f"{type(failure).__name__}: {redact(failure, 160)}")

            if error.status == 401 and not refreshed:
                # The token may have been revoked or expired early: refresh once, not counted as a retry.
                refreshed = True
                attempt -= 1
                self.credentials.token(deadline, force_refresh=True)
                continue
            if not error.retryable or attempt >= self.retry.max_attempts:
                self.stats.record_failure(api)
                raise error
            wait = _retry_after(response)
            if wait is None:
                wait = self.retry.backoff(attempt, self._rand)
            if wait >= deadline.remaining():
                self.stats.record_failure(api)
                raise error
            self.stats.record_retry(api)
            if self._log is not None:
                self._log.debug("%s; retry %d in %.2f s", error, attempt, wait)
            self._sleep(wait)


def _decode_json(api: str, response) -> dict:
    try:
        body = response.json() if response.content else {}
    except ValueError:
        raise NotJson(f"{api} API answered {response.status_code} with a body that is not JSON") from None
    if not isinstance(body, dict):
        raise MalformedResponse(f"{api} API answered {response.status_code} with JSON that is not an object")
    return body


__all__ = ["DeadlineExceeded", "GcpRestClient", "RetryPolicy", "parse_error_body"]
