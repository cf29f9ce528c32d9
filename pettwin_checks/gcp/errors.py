"""Errors raised by the GCP plumbing, and the redaction every message goes through.

Messages built here may reach a log line, a service-check message or a warning, so they never carry
a token, a key or a response body verbatim: `redact` strips what looks like a secret and caps the length.
"""

from __future__ import annotations

import re

# (pattern, replacement) pairs; the replacement keeps a field name or scheme so the message stays readable.
_SECRET_PATTERNS = [
    # PEM blocks (private keys from a service-account file).
    (re.compile(r"-----BEGIN [A-Z ]+-----.*?(?:-----END [A-Z ]+-----|$)", re.DOTALL), "<redacted>"),
    # OAuth access tokens and refresh tokens as Google issues them.
    (re.compile(r"ya29\.[A-Za-z0-9_\-\.]+"), "<redacted>"),
    (re.compile(r"1//[A-Za-z0-9_\-]{10,}"), "<redacted>"),
    # JWTs (assertions, self-signed tokens, ID tokens): three base64url segments.
    (re.compile(r"eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"), "<redacted>"),
    # JSON or form fields that hold secrets, whatever their value looks like.
    (
        re.compile(
            r'("?(?:access_token|accessToken|refresh_token|id_token|private_key|client_secret|assertion)"?\s*[:=]\s*)'
            r'("[^"]*"|\'[^\']*\'|[^\s,&}]+)'
        ),
        r"\1<redacted>",
    ),
    # Authorization headers.
    (re.compile(r"(Bearer\s+)[A-Za-z0-9_\-\.=~+/]+", re.IGNORECASE), r"\1<redacted>"),
]
MAX_MESSAGE_LENGTH = 300


def redact(text: object, limit: int = MAX_MESSAGE_LENGTH) -> str:
    """`text` as a string with secrets replaced by `<redacted>`, whitespace collapsed, cut to `limit` characters."""
    message = str(text)
    for pattern, replacement in _SECRET_PATTERNS:
        message = pattern.sub(replacement, message)
    message = " ".join(message.split())
    if len(message) > limit:
        message = message[: limit - 3] + "..."
    return message


class GcpError(Exception):
    """Base class: anything the GCP plumbing raises on purpose."""


class GcpAuthError(GcpError):
    """No access token could be had. `source` names the credential source that was tried."""

    def __init__(self, source: str, reason: object):
        self.source = source
        self.reason = redact(reason)
        super().__init__(f"could not get a Google access token from {source}: {self.reason}")


class GcpApiError(GcpError):
    """A Google API answered with an error status (or could not be reached: status 0).

    `grpc_status` is the google.rpc.Status code name (PERMISSION_DENIED, RESOURCE_EXHAUSTED...), `reason` the
    ErrorInfo reason when Google gave one, `api` the short API name the call was for (monitoring, aiplatform...).
    """

    def __init__(self, api: str, status: int, message: object, grpc_status: str = "", reason: str = ""):
        self.api = api
        self.status = status
        self.grpc_status = grpc_status
        self.reason = reason
        self.message = redact(message)
        label = f"HTTP {status}" if status else "no answer"
        detail = f" {grpc_status}" if grpc_status else ""
        super().__init__(f"{api} API: {label}{detail}: {self.message}")

    @property
    def retryable(self) -> bool:
        return self.status == 0 or self.status == 429 or self.status >= 500

    @property
    def permission_denied(self) -> bool:
        return self.status == 403

    @property
    def persists_within_run(self) -> bool:
        """Asking the same API again this run would fail the same way: retries are spent (429, 5xx, no answer),
        or the identity, token or path is refused. A 400/404 is about one request and does not count."""
        return self.retryable or self.status in (401, 403)


class MalformedResponse(GcpError):
    """A 2xx answer whose body is not what the API documents."""


class NotJson(MalformedResponse):
    """A 2xx answer that is not JSON at all: something other than the API answers (a proxy, a login page), and
    will for every call of the run."""


def persists_within_run(failure: GcpError) -> bool:
    """The API would fail the same way for every further call this run (so it is not asked again): the
    check stops calling it until the next run."""
    if isinstance(failure, GcpApiError):
        return failure.persists_within_run
    # No token, the budget spent, or an answer that is not JSON; a malformed JSON answer is about one query.
    return not isinstance(failure, MalformedResponse) or isinstance(failure, NotJson)
