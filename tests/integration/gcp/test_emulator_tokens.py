"""Tokens as Google takes them: a self-signed JWT is accepted only for the API of its audience
(`https://<service>.googleapis.com/`) or for the scopes it claims; the authorized_user refresh-token grant that
`gcloud auth application-default login` files use, driven by google-auth's own Credentials and by the checks'
credential loading."""

import json

import pytest
import requests
from datadog_checks.base.utils.http import RequestsWrapper

from pettwin_checks.gcp import Deadline, GcpAuthError, GcpSession
from tests.integration.gcp.emulator_calls import (
    CLOUD_PLATFORM,
    MONITORING_READ,
    assert_scope_insufficient,
    bearer,
    google_error,
    list_series,
    series_params,
    service,
    services_url,
)

pytestmark = pytest.mark.integration


def _self_signed_jwt(key_file: str, audience: str | None = None, scope: str | None = None) -> str:
    from google.auth import jwt

    with open(key_file) as f:
        info = json.load(f)
    claims = {"scope": scope} if scope else {}
    credentials = jwt.Credentials.from_service_account_info(info, audience=audience, additional_claims=claims)
    credentials.refresh(None)
    return credentials.token.decode()


def _unauthenticated(response) -> None:
    error = google_error(response, 401, "UNAUTHENTICATED")
    assert error["details"][0]["reason"] == "ACCESS_TOKEN_TYPE_UNSUPPORTED"


def test_a_self_signed_jwt_is_accepted_only_by_the_api_of_its_audience(gcp_env, gcp_key_file):
    monitoring_jwt = _self_signed_jwt(gcp_key_file, audience="https://monitoring.googleapis.com/")
    assert list_series(gcp_env, series_params(), token=monitoring_jwt).status_code == 200
    _unauthenticated(requests.get(services_url(gcp_env), headers=bearer(monitoring_jwt), timeout=5))

    run_jwt = _self_signed_jwt(gcp_key_file, audience="https://run.googleapis.com/")
    assert requests.get(services_url(gcp_env), headers=bearer(run_jwt), timeout=5).status_code == 200
    _unauthenticated(list_series(gcp_env, series_params(), token=run_jwt))

    for audience in ("https://example.com/", None):
        _unauthenticated(list_series(gcp_env, series_params(), token=_self_signed_jwt(gcp_key_file, audience)))


def test_a_scoped_self_signed_jwt_carries_its_scopes(gcp_env, gcp_key_file):
    scoped = _self_signed_jwt(gcp_key_file, scope=MONITORING_READ)
    assert list_series(gcp_env, series_params(), token=scoped).status_code == 200
    answer = requests.get(services_url(gcp_env), headers=bearer(scoped), timeout=5)
    assert_scope_insufficient(answer, "run.googleapis.com", "google.cloud.run.v2.Services.ListServices")


def test_google_clients_self_signed_jwt_access(gcp_env, gcp_key_file):
    """google-auth's always_use_jwt_access path (AIP-4111), as google-api-python-client uses it."""
    from google.oauth2 import service_account

    credentials = service_account.Credentials.from_service_account_file(
        gcp_key_file, scopes=[CLOUD_PLATFORM], always_use_jwt_access=True
    )
    monitoring = service(gcp_env, "monitoring", "v3", credentials=credentials)
    name = f"projects/{gcp_env.project_id}"
    assert monitoring.projects().monitoredResourceDescriptors().list(name=name).execute()["resourceDescriptors"]
    assert not any(r["path"] == "/token" for r in gcp_env.requests())  # no token exchange: the JWT itself


# ---------------------------------------------------------------- authorized_user (gcloud ADC) refresh tokens


def test_google_auth_user_credentials_refresh_against_the_emulator(gcp_env, tmp_path):
    import google.auth.transport.requests
    from google.oauth2 import credentials as user_credentials

    path = gcp_env.write_authorized_user_file(tmp_path / "adc.json")
    credentials = user_credentials.Credentials.from_authorized_user_file(path, scopes=[CLOUD_PLATFORM])
    # google-auth always refreshes user credentials at Google's endpoint, whatever the file's token_uri.
    assert credentials.token_uri == "https://oauth2.googleapis.com/token"
    credentials = credentials.with_token_uri(gcp_env.token_uri)
    credentials.refresh(google.auth.transport.requests.Request())
    assert credentials.valid and credentials.granted_scopes == [CLOUD_PLATFORM]
    (exchange,) = [r for r in gcp_env.requests() if r["path"] == "/token"]
    assert exchange["status"] == 200
    assert list_series(gcp_env, series_params(), token=credentials.token).status_code == 200
    monitoring = service(gcp_env, "monitoring", "v3", credentials=credentials)
    descriptors = monitoring.projects().metricDescriptors().list(name=f"projects/{gcp_env.project_id}").execute()
    assert descriptors["metricDescriptors"]


def _refresh(emulator, **form):
    return requests.post(emulator.token_uri, data={"grant_type": "refresh_token", **form}, timeout=5)


def test_refresh_token_grant_refusals_are_googles_oauth_errors(gcp_env, tmp_path):
    with open(gcp_env.write_authorized_user_file(tmp_path / "adc.json")) as f:
        info = json.load(f)
    grant = {k: info[k] for k in ("client_id", "client_secret", "refresh_token")}
    answer = _refresh(gcp_env, **grant)
    assert answer.status_code == 200 and answer.json()["token_type"] == "Bearer"
    assert CLOUD_PLATFORM in answer.json()["scope"].split()

    cases = [
        ({**grant, "client_secret": "wrong"}, 401, "invalid_client"),
        ({**grant, "client_id": "1-unknown.apps.googleusercontent.com"}, 401, "invalid_client"),
        ({**grant, "refresh_token": "1//unknown"}, 400, "invalid_grant"),
        ({**grant, "scope": "https://www.googleapis.com/auth/monitoring.write"}, 400, "invalid_scope"),
        ({k: v for k, v in grant.items() if k != "refresh_token"}, 400, "invalid_request"),
    ]
    for form, status, error in cases:
        answer = _refresh(gcp_env, **form)
        assert (answer.status_code, answer.json()["error"]) == (status, error), form
        assert set(answer.json()) == {"error", "error_description"}

    gcp_env.tokens.revoke_refresh_token(grant["refresh_token"])
    revoked = _refresh(gcp_env, **grant)
    assert revoked.json() == {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}


def _session(emulator, path, apis):
    options = {
        "monitoring_endpoint": emulator.url,
        "oauth_token_endpoint": emulator.token_uri,
        "credentials_path": path,
    }
    return GcpSession(RequestsWrapper(options, {}), options, apis=apis)


def test_the_checks_credential_loading_reads_an_authorized_user_file(gcp_env, tmp_path):
    path = gcp_env.write_authorized_user_file(tmp_path / "application_default_credentials.json")
    session = _session(gcp_env, path, apis=("monitoring", "aiplatform"))  # the Vertex AI check's: cloud-platform
    deadline = Deadline(20)
    assert session.project_id(deadline) == gcp_env.project_id  # the file's quota_project_id
    token = session.credentials.token(deadline)
    assert list_series(gcp_env, series_params(), token=token).status_code == 200

    with open(path) as f:
        gcp_env.tokens.revoke_refresh_token(json.load(f)["refresh_token"])
    with pytest.raises(GcpAuthError) as failure:
        session.credentials.token(deadline, force_refresh=True)
    assert "invalid_grant" in str(failure.value) and path in str(failure.value)


def test_an_authorized_user_file_asks_for_the_scope_its_grant_holds(gcp_env, tmp_path):
    """gcloud's application-default login grants cloud-platform, and a refresh token cannot be exchanged for scopes
    outside its grant (the emulator refuses monitoring.read with invalid_scope, above): the Cloud Run check, which
    asks a service account for monitoring.read and run.readonly, asks a user's refresh token for cloud-platform."""
    path = gcp_env.write_authorized_user_file(tmp_path / "application_default_credentials.json")
    token = _session(gcp_env, path, apis=("monitoring", "run")).credentials.token(Deadline(20))
    assert list_series(gcp_env, series_params(), token=token).status_code == 200
    refreshes = [r for r in gcp_env.requests() if r["path"] == "/token"]
    assert refreshes and all(r["status"] == 200 for r in refreshes)
