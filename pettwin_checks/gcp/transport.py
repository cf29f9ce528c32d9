"""google-auth's transport interface over the check's HTTP wrapper, bounded by the run's deadline.

google-auth fetches tokens (OAuth token endpoint, IAM Credentials, metadata server) through a `Request`
callable. Giving it this one routes those calls through `self.http` (proxy, TLS options, headers of the
instance) and caps each at what is left of the run's budget instead of google-auth's two-minute default.
"""

from __future__ import annotations

import requests
from google.auth import exceptions as auth_exceptions
from google.auth import transport

from pettwin_checks.deadline import Deadline, DeadlineExceeded

from .errors import redact
from .stats import ApiCallStats

TOKEN_CALL_TIMEOUT = 10.0


class _Response(transport.Response):
    def __init__(self, response):
        self._response = response

    @property
    def status(self) -> int:
        return self._response.status_code

    @property
    def headers(self):
        return self._response.headers

    @property
    def data(self) -> bytes:
        return self._response.content


class HttpWrapperRequest(transport.Request):
    """A google.auth.transport.Request that sends through a datadog_checks RequestsWrapper."""

    def __init__(
        self,
        http,
        deadline: Deadline,
        stats: ApiCallStats | None = None,
        api: str = "auth",
        timeout_cap: float = TOKEN_CALL_TIMEOUT,
    ):
        self._http = http
        self._deadline = deadline
        self._stats = stats
        self._api = api
        self._timeout_cap = timeout_cap

    def __call__(self, url, method="GET", body=None, headers=None, timeout=None, **kwargs):
        cap = self._timeout_cap if timeout is None else min(float(timeout), self._timeout_cap)
        try:
            call_timeout = self._deadline.timeout(cap)
        except DeadlineExceeded as exhausted:
            raise auth_exceptions.TransportError(str(exhausted)) from None
        if self._stats is not None:
            self._stats.record(self._api)
        options = {"timeout": call_timeout, "data": body, "extra_headers": dict(headers or {})}
        try:
            response = getattr(self._http, method.lower())(url, **options)
        except requests.RequestException as failure:
            # The exception text can echo the request; keep only its class and a redacted summary.
            raise auth_exceptions.TransportError(f"{type(failure).__name__}: {redact(failure, 160)}") from None
        return _Response(response)
