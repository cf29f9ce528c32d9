"""The Vertex AI probe: one countTokens (or generateContent) call from this host, over pettwin_checks.gcp.

Cloud Monitoring is read by the engine (pettwin_checks.gcp.collection) from the family table (families.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from pettwin_checks.gcp import (
    Deadline,
    DeadlineExceeded,
    GcpApiError,
    GcpAuthError,
    GcpSession,
    MalformedResponse,
    NotJson,
)
from pettwin_checks.gcp.rest import GcpRestClient, RetryPolicy


@dataclass(frozen=True)
class ProbeOutcome:
    # ok | throttled | unreadable | denied | not_found | bad_request | server_error | unreachable | auth
    outcome: str
    latency_ms: float | None
    message: str  # "" when ok

    @property
    def status(self) -> str:
        # Throttled or unreadable: the endpoint answered, so it is reachable; the model may still serve.
        return {"ok": "ok", "throttled": "warning", "unreadable": "warning"}.get(self.outcome, "critical")


class VertexAiProbe:
    def __init__(self, session: GcpSession):
        self.session = session
        # The probe measures one attempt from this host: a retry would hide the latency it is there to see.
        self._probe_rest = GcpRestClient(session.http, session.credentials, session.stats, RetryPolicy(max_attempts=1))

    def call(self, project: str, probe, deadline: Deadline) -> ProbeOutcome:
        """One call as the `probe` options say (model, publisher, location, method, prompt, timeout)."""
        location, method = probe.location, probe.method
        base = self.session.endpoints.aiplatform_base(location)
        model = f"projects/{project}/locations/{location}/publishers/{probe.publisher}/models/{probe.model}"
        url = f"{base}/v1/{model}:{method}"
        body = {"contents": [{"role": "user", "parts": [{"text": probe.prompt}]}]}
        if method == "generateContent":
            body["generationConfig"] = {"maxOutputTokens": 1}
        target = f"{method} on {probe.publisher}/{probe.model} in {location}"
        try:
            # The token is fetched first so the latency measured is the Vertex AI call's alone.
            self.session.credentials.token(deadline)
        except GcpAuthError as failure:
            return ProbeOutcome(
                "auth", None, f"{failure}. Fix the credentials the agent uses, then the probe recovers on its own."
            )
        except DeadlineExceeded as failure:
            return ProbeOutcome("unreachable", None, f"{target}: {failure}")
        probe_deadline = Deadline(min(probe.timeout, deadline.remaining()))
        started = time.monotonic()
        try:
            self._probe_rest.post_json("aiplatform", url, probe_deadline, body)
            outcome, message = "ok", ""
        except GcpAuthError as failure:
            return ProbeOutcome("auth", None, f"{failure}")
        except GcpApiError as failure:
            outcome, message = _api_failure(failure, base, self.session)
        except DeadlineExceeded:
            outcome, message = "unreachable", f"no answer from {base} within {probe.timeout:g} s: {CHECK_EGRESS}"
        except NotJson as failure:
            outcome = "unreadable"
            message = f"{failure}: something other than Vertex AI answered (a proxy, or aiplatform_endpoint); check the egress path"
        except MalformedResponse as failure:
            outcome, message = "server_error", f"{failure}"
        latency = (time.monotonic() - started) * 1000.0
        return ProbeOutcome(outcome, latency, f"{target}: {message}" if message else "")


CHECK_EGRESS = "check DNS, the egress firewall and proxy settings"
# HTTP status -> (outcome, what it means); {base}, {message}, {grpc}, {source}, {status} filled in.
API_FAILURES = {
    0: ("unreachable", "could not reach {base} ({message}): " + CHECK_EGRESS),
    429: (
        "throttled",
        "throttled (429 {grpc}); the endpoint is reachable but the quota or shared capacity is exhausted",
    ),
    401: (
        "auth",
        "Vertex AI rejected the access token from {source} even after a refresh (401 {grpc}): check that credential source",
    ),
    404: (
        "not_found",
        "not found (404): check probe.model, probe.publisher and probe.location (the model may not be offered there)",
    ),
}


def _api_failure(failure: GcpApiError, base: str, session: GcpSession) -> tuple[str, str]:
    status, grpc = failure.status, failure.grpc_status
    if status == 403:
        remedy = session.denial_remedy(failure, "roles/aiplatform.user (aiplatform.endpoints.predict)")
        return "denied", f"permission denied (403 {grpc}): {remedy}"
    if status in API_FAILURES:
        outcome, text = API_FAILURES[status]
    elif status < 500:
        outcome, text = "bad_request", "rejected ({status} {grpc}: {message}): check probe.method and probe.prompt"
    else:
        outcome, text = "server_error", "Vertex AI answered {status} {grpc}: {message}"
    fields = {"base": base, "message": failure.message, "grpc": grpc, "source": session.credentials.source}
    return outcome, text.format(status=status, **fields)
