"""OAuth scopes: the narrowest each API accepts, and a scope refusal told apart from a missing role."""

import pytest

from pettwin_checks.gcp.errors import GcpApiError
from pettwin_checks.gcp.rest import parse_error_body
from pettwin_checks.gcp.scopes import (
    AUTH,
    CLOUD_PLATFORM,
    MONITORING_READ,
    RUN_READONLY,
    denial_remedy,
    is_scope_refusal,
    scopes_for,
)

pytestmark = pytest.mark.unit

SCOPE_BODY = (
    '{"error": {"code": 403, "message": "Request had insufficient authentication scopes.", '
    '"status": "PERMISSION_DENIED", "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", '
    '"reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT", "domain": "googleapis.com"}]}}'
)


def test_narrowest_scopes_per_set_of_apis():
    assert scopes_for(["monitoring", "run"]) == (MONITORING_READ, RUN_READONLY)
    assert scopes_for(["monitoring"]) == (MONITORING_READ,)
    # countTokens accepts cloud-platform only, which every other API accepts too.
    assert scopes_for(["monitoring", "aiplatform"]) == (CLOUD_PLATFORM,)
    assert AUTH + "cloud-platform.read-only" not in scopes_for(["monitoring", "run", "aiplatform"])


def test_a_scope_refusal_names_the_scope_not_a_role():
    error = parse_error_body("run", 403, SCOPE_BODY)
    assert is_scope_refusal(error)
    remedy = denial_remedy(error, "roles/run.viewer", "the metadata server", [AUTH + "cloud-platform.read-only"])
    assert remedy.startswith(
        f"the access token lacks the OAuth scope {RUN_READONLY} (or {AUTH}run or "
        f"{CLOUD_PLATFORM}) (ACCESS_TOKEN_SCOPE_INSUFFICIENT)"
    )
    assert "roles/" not in remedy and "cloud-platform.read-only" in remedy
    # The message alone (no ErrorInfo) is read the same way.
    assert is_scope_refusal(GcpApiError("monitoring", 403, "Request had insufficient authentication scopes."))


def test_a_plain_403_is_a_missing_role():
    error = parse_error_body(
        "monitoring", 403, '{"error": {"code": 403, "message": "Permission denied", "status": "PERMISSION_DENIED"}}'
    )
    assert not is_scope_refusal(error)
    assert denial_remedy(error, "roles/monitoring.viewer", "credentials_path k.json", [MONITORING_READ]) == (
        "grant roles/monitoring.viewer to the agent's identity (credentials_path k.json)"
    )


@pytest.mark.parametrize(
    "status, persists",
    [(429, True), (500, True), (503, True), (0, True), (401, True), (403, True), (400, False), (404, False)],
)
def test_which_failures_persist_within_a_run(status, persists):
    assert GcpApiError("monitoring", status, "x").persists_within_run is persists
