"""The one table of failure messages both GCP checks use, and how a run's Cloud Monitoring status is judged."""

from types import SimpleNamespace

import pytest

from pettwin_checks.deadline import DeadlineExceeded
from pettwin_checks.gcp.collection import Collection
from pettwin_checks.gcp.errors import GcpApiError, GcpAuthError, MalformedResponse, NotJson
from pettwin_checks.gcp.messages import failure_message
from pettwin_checks.gcp.scopes import denial_remedy

pytestmark = pytest.mark.unit

SOURCE = "the metadata server at http://m"
SESSION = SimpleNamespace(
    credentials=SimpleNamespace(source=SOURCE),
    denial_remedy=lambda failure, role: denial_remedy(failure, role, SOURCE, ("scope-a",)),
)


def message(failure, api="monitoring", what="request_count"):
    return failure_message(failure, api=api, project="p", session=SESSION, budget=12, what=what)


@pytest.mark.parametrize(
    "failure, api, says",
    [
        (
            GcpApiError("run", 403, "denied"),
            "run",
            (
                "Cloud Run Admin API denied access on project p (denied): grant "
                f"roles/run.viewer to the agent's identity ({SOURCE})"
            ),
        ),
        (
            GcpApiError("monitoring", 403, "Request had insufficient authentication scopes.", "PERMISSION_DENIED"),
            "monitoring",
            "Cloud Monitoring API refused the token on project p: the access token lacks the OAuth scope",
        ),
        (
            GcpApiError("monitoring", 401, "expired"),
            "monitoring",
            f"rejected the access token from {SOURCE} even after",
        ),
        (GcpAuthError("credentials_path /k.json", "not JSON"), "monitoring", "Fix the credentials the agent uses"),
        (
            NotJson("not JSON"),
            "monitoring",
            (
                "(request_count): not JSON: a proxy or an endpoint override "
                "(monitoring_endpoint) answers instead of Google"
            ),
        ),
        (DeadlineExceeded("used up"), "monitoring", "did not answer within the run budget of 12 s (request_count)"),
        (GcpApiError("monitoring", 0, "connection refused"), "monitoring", "did not answer within the run budget"),
        (GcpApiError("monitoring", 503, "down", "UNAVAILABLE"), "monitoring", "(after retries); no more calls to it"),
        (
            GcpApiError("monitoring", 400, "bad filter"),
            "monitoring",
            "Cloud Monitoring API (request_count): monitoring API: HTTP 400",
        ),
    ],
)
def test_every_failure_says_what_to_do(failure, api, says):
    assert says in message(failure, api)


def test_status_is_critical_only_when_nothing_was_read():
    assert Collection(queried=3).status(project="p", session=SESSION, budget=12) == ("ok", None)
    stopped = Collection(stopped=GcpApiError("monitoring", 503, "down"), stopped_at="a")
    assert stopped.status(project="p", session=SESSION, budget=12)[0] == "critical"
    stopped.queried = 2  # some families answered before the stop
    assert stopped.status(project="p", session=SESSION, budget=12)[0] == "warning"
    # A proxy answering is a warning however early: the API may well be fine.
    assert Collection(stopped=NotJson("not JSON")).status(project="p", session=SESSION, budget=12)[0] == "warning"
    refused = Collection(failures=[f"a: {MalformedResponse('bad page')}"])
    status, text = refused.status(project="p", session=SESSION, budget=12)
    assert (status, text) == ("critical", "queries failed: a: bad page")
    refused.queried = 1
    assert refused.status(project="p", session=SESSION, budget=12)[0] == "warning"
