"""Raw HTTP calls to the GCP emulator and assertions on Google's error bodies, shared by the emulator's tests."""

import time
from datetime import UTC, datetime

import pytest
import requests

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
READ_ONLY = "https://www.googleapis.com/auth/cloud-platform.read-only"
MONITORING_READ = "https://www.googleapis.com/auth/monitoring.read"
RUN_READONLY = "https://www.googleapis.com/auth/run.readonly"
METADATA = {"Metadata-Flavor": "Google"}
INVOCATIONS = "aiplatform.googleapis.com/publisher/online_serving/model_invocation_count"
LATENCIES = "aiplatform.googleapis.com/publisher/online_serving/model_invocation_latencies"


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def metadata_token(emulator, scopes: str | None = None) -> str:
    params = {"scopes": scopes} if scopes is not None else None
    answer = requests.get(
        f"{emulator.url}/computeMetadata/v1/instance/service-accounts/default/token",
        params=params,
        headers=METADATA,
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def series_params(**extra) -> dict:
    end = (int(time.time() // 60) - 1) * 60
    return {
        "filter": f'metric.type = "{INVOCATIONS}"',
        "interval.startTime": rfc3339(end - 600),
        "interval.endTime": rfc3339(end),
        **extra,
    }


def list_series(emulator, params, token=None) -> requests.Response:
    token = token or emulator.issue_access_token()
    return requests.get(
        f"{emulator.url}/v3/projects/{emulator.project_id}/timeSeries", params=params, headers=bearer(token), timeout=10
    )


def services_url(emulator, location="us-central1") -> str:
    return f"{emulator.url}/v2/projects/{emulator.project_id}/locations/{location}/services"


def count_tokens_url(emulator, model="gemini-2.5-flash") -> str:
    return (
        f"{emulator.url}/v1/projects/{emulator.project_id}/locations/us-central1/publishers/google/models/"
        f"{model}:countTokens"
    )


def google_error(response, code: int, status: str) -> dict:
    assert response.status_code == code, response.text
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (code, status)
    return error


def assert_scope_insufficient(response, service: str, method: str) -> None:
    error = google_error(response, 403, "PERMISSION_DENIED")
    assert error["message"] == "Request had insufficient authentication scopes."
    assert error["details"] == [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
            "domain": "googleapis.com",
            "metadata": {"service": service, "method": method},
        }
    ]


def bad_request(response) -> list[dict]:
    """The fieldViolations of Google's 400 INVALID_ARGUMENT body."""
    error = google_error(response, 400, "INVALID_ARGUMENT")
    (detail,) = error["details"]
    assert detail["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert error["message"] == "\n".join(v["description"] for v in detail["fieldViolations"])
    return detail["fieldViolations"]


# ---------------------------------------------------------------- Google's own clients


def metadata_credentials(scopes):
    """google-auth's GCE/Cloud Run credentials; the gcp_env fixture points them at the metadata emulator."""
    from google.auth import compute_engine

    return compute_engine.Credentials(scopes=scopes)


def service(emulator, name: str, version: str, scopes=None, credentials=None):
    """A google-api-python-client service from the wheel's discovery document, pointed at the emulator."""
    from googleapiclient.discovery import build

    return build(
        name,
        version,
        credentials=credentials or metadata_credentials(scopes),
        static_discovery=True,
        client_options={"api_endpoint": f"{emulator.url}/"},
        cache_discovery=False,
    )


def http_error(call):
    """The HttpError a google-api-python-client call raises."""
    from googleapiclient.errors import HttpError

    with pytest.raises(HttpError) as raised:
        call.execute()
    return raised.value
