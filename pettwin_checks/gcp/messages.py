"""What a failed Google API call means for the operator: one table for every GCP check.

Each message names the API, what failed and what to do; it is built from redacted errors only.
"""

from __future__ import annotations

from pettwin_checks.deadline import DeadlineExceeded

from .endpoints import ENDPOINT_OPTIONS
from .errors import GcpApiError, GcpAuthError, GcpError, NotJson
from .scopes import is_scope_refusal
from .session import GcpSession

API_NAMES = {"monitoring": "Cloud Monitoring API", "run": "Cloud Run Admin API", "aiplatform": "Vertex AI API"}
# The predefined role each API's read calls need, named when Google answers 403 for a missing role.
ROLES = {"monitoring": "roles/monitoring.viewer", "run": "roles/run.viewer", "aiplatform": "roles/aiplatform.user"}


def failure_message(
    failure: GcpError | DeadlineExceeded, *, api: str, project: str, session: GcpSession, budget: float, what: str = ""
) -> str:
    """The message of a service check or warning for a call to `api` that failed; `what` names the query."""
    name = API_NAMES[api]
    at = f" ({what})" if what else ""
    if isinstance(failure, GcpApiError) and failure.permission_denied:
        remedy = session.denial_remedy(failure, ROLES[api])
        if is_scope_refusal(failure):
            return f"{name} refused the token on project {project}: {remedy}"
        return f"{name} denied access on project {project} ({failure.message}): {remedy}"
    if isinstance(failure, GcpApiError) and failure.status == 401:
        return (
            f"{name} rejected the access token from {session.credentials.source} even after a refresh "
            f"({failure.message}): check that credential source"
        )
    if isinstance(failure, GcpAuthError):
        return (
            f"{name}: {failure}. Fix the credentials the agent uses (credentials_path, or the attached service "
            f"account); collection resumes by itself"
        )
    if isinstance(failure, NotJson):
        option = ENDPOINT_OPTIONS.get(api, "the endpoint option")
        return (
            f"{name} answered with something other than its JSON{at}: {failure}: a proxy or an endpoint override "
            f"({option}) answers instead of Google; no more calls to it this run"
        )
    if isinstance(failure, DeadlineExceeded) or (isinstance(failure, GcpApiError) and failure.status == 0):
        return (
            f"{name} did not answer within the run budget of {budget:g} s{at}: {failure} (collection_timeout); "
            f"the next run retries"
        )
    if isinstance(failure, GcpApiError) and failure.retryable:
        return f"{name}{at}: {failure} (after retries); no more calls to it this run, the next run tries again"
    return f"{name}{at}: {failure}"
