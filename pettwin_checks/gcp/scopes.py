"""OAuth scopes: which ones each Google API's read methods accept, and what a scope refusal means.

From the methods' `scopes` in Google's discovery documents (google-api-python-client's discovery_cache):
monitoring v3 projects.timeSeries.list, run v2 projects.locations.services.list / services.revisions.get,
aiplatform v1 ...publishers.models.countTokens / generateContent. `cloud-platform.read-only` is accepted by none
but generateContent, and countTokens accepts only cloud-platform, so the probe asks for that. A token's scopes are checked before IAM: a token without one of these scopes gets 403 PERMISSION_DENIED
with ErrorInfo reason ACCESS_TOKEN_SCOPE_INSUFFICIENT whatever roles its account has.
"""

from __future__ import annotations

from .errors import GcpApiError

AUTH = "https://www.googleapis.com/auth/"
CLOUD_PLATFORM = AUTH + "cloud-platform"
MONITORING_READ = AUTH + "monitoring.read"
RUN_READONLY = AUTH + "run.readonly"

# API short name -> scopes its read methods accept, narrowest first.
ACCEPTED_SCOPES = {
    "monitoring": (MONITORING_READ, AUTH + "monitoring", CLOUD_PLATFORM),
    "run": (RUN_READONLY, AUTH + "run", CLOUD_PLATFORM),
    "aiplatform": (CLOUD_PLATFORM,),
}
SCOPE_REASON = "ACCESS_TOKEN_SCOPE_INSUFFICIENT"


def scopes_for(apis) -> tuple[str, ...]:
    """The narrowest scopes that let a token call every API in `apis` (cloud-platform alone when one needs it)."""
    narrowest = {ACCEPTED_SCOPES[api][0] for api in apis}
    return (CLOUD_PLATFORM,) if CLOUD_PLATFORM in narrowest else tuple(sorted(narrowest))


def is_scope_refusal(error: GcpApiError) -> bool:
    """Google refused the token's scopes (not the account's roles)."""
    return error.status == 403 and (
        error.reason == SCOPE_REASON or "insufficient authentication scopes" in error.message.lower()
    )


def denial_remedy(error: GcpApiError, role: str, source: str, requested) -> str:
    """What to do about a 403: add a scope when the token lacks one, else grant `role` to the identity."""
    if not is_scope_refusal(error):
        return f"grant {role} to the agent's identity ({source})"
    needed = ACCEPTED_SCOPES.get(error.api, (CLOUD_PLATFORM,))
    alternatives = f" (or {' or '.join(needed[1:])})" if len(needed) > 1 else ""
    return (
        f"the access token lacks the OAuth scope {needed[0]}{alternatives} ({SCOPE_REASON}); this is a token scope "
        f"problem, not a missing IAM role. The check asks {source} for {', '.join(requested)}; a metadata server "
        f"that ignores requested scopes (a GCE VM) gives the VM's access scopes: add that scope to them"
    )
