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

    def call(
        self,
        project: str,
        *,
        model: str,
        publisher: str,
        location: str,
        method: str,
        prompt: str,
        timeout: float,
        deadline: Deadline,
    ) -> ProbeOutcome:
        base = self.session.endpoints.aiplatform_base(location)
        url = f"{base}/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{model}:{method}"
        body = {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}
        if method == "generateContent":
            body["generationConfig"] = {"maxOutputTokens": 1}
        target = f"{method} on {publisher}/{model} in {location}"
        try:
            # The token is fetched first so the latency measured is the Vertex AI call's alone.
            self.session.credentials.token(deadline)
        except GcpAuthError as failure:
            return ProbeOutcome(
                "auth", None, f"{failure}. Fix the credentials the agent uses, then the probe recovers on its own."
            )
        except DeadlineExceeded as failure:
            return ProbeOutcome("unreachable", None, f"{target}: {failure}")
        probe_deadline = Deadline(min(timeout, deadline.remaining()))
        started = time.monotonic()
        try:
            self._probe_rest.post_json("aiplatform", url, probe_deadline, body)
        except GcpApiError as failure:
            latency = (time.monotonic() - started) * 1000.0
            return _outcome(failure, target, base, latency, self.session)
        except GcpAuthError as failure:
            return ProbeOutcome("auth", None, f"{failure}")
        except DeadlineExceeded:
            latency = (time.monotonic() - started) * 1000.0
            return ProbeOutcome(
                "unreachable",
                latency,
                f"{target}: no answer from {base} within {timeout:g} s: "
                f"check DNS, the egress firewall and proxy settings",
            )
        except NotJson as failure:
            latency = (time.monotonic() - started) * 1000.0
            return ProbeOutcome(
                "unreadable",
                latency,
                f"{target}: {failure}: something other than Vertex AI answered "
                f"(a proxy, or aiplatform_endpoint); check the egress path",
            )
        except MalformedResponse as failure:
            latency = (time.monotonic() - started) * 1000.0
            return ProbeOutcome("server_error", latency, f"{target}: {failure}")
        return ProbeOutcome("ok", (time.monotonic() - started) * 1000.0, "")


def _outcome(failure: GcpApiError, target: str, base: str, latency: float, session: GcpSession) -> ProbeOutcome:
    status = failure.status
    if status == 0:
        return ProbeOutcome(
            "unreachable",
            latency,
            f"{target}: could not reach {base} ({failure.message}): check DNS, the egress firewall and proxy settings",
        )
    if status == 429:
        return ProbeOutcome(
            "throttled",
            latency,
            f"{target}: throttled (429 {failure.grpc_status}); the endpoint is "
            f"reachable but the quota or shared capacity is exhausted",
        )
    if status == 401:
        return ProbeOutcome(
            "auth",
            latency,
            f"{target}: Vertex AI rejected the access token from "
            f"{session.credentials.source} even after a refresh (401 "
            f"{failure.grpc_status}): check that credential source",
        )
    if status == 403:
        remedy = session.denial_remedy(failure, "roles/aiplatform.user (aiplatform.endpoints.predict)")
        return ProbeOutcome("denied", latency, f"{target}: permission denied (403 {failure.grpc_status}): {remedy}")
    if status == 404:
        return ProbeOutcome(
            "not_found",
            latency,
            f"{target}: not found (404): check probe.model, probe.publisher and "
            f"probe.location, and that the model is offered in that location",
        )
    if status < 500:
        return ProbeOutcome(
            "bad_request",
            latency,
            f"{target}: rejected ({status} {failure.grpc_status}: "
            f"{failure.message}): check probe.method and probe.prompt",
        )
    return ProbeOutcome(
        "server_error", latency, f"{target}: Vertex AI answered {status} {failure.grpc_status}: {failure.message}"
    )
