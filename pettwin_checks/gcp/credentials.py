"""Google credentials with google-auth, in Application Default Credentials order, and access tokens from them.

Sources, first that applies:
1. `credentials_path` from the check's config: any credentials file google-auth reads (service-account key,
   authorized user, external account / workload identity federation, impersonated service account).
2. The file named by GOOGLE_APPLICATION_CREDENTIALS.
3. gcloud's application default credentials file (`gcloud auth application-default login`).
4. The metadata server's attached service account (Cloud Run, GCE, GKE workload identity), at the metadata
   endpoint (config `metadata_endpoint`, else GCE_METADATA_HOST, else metadata.google.internal).
With `impersonate_service_account`, the source's token is exchanged for that account's through IAM Credentials.

Tokens are refreshed before they expire (google-auth's threshold, 3 min 45 s ahead) and on demand after a 401.
Every failure raises GcpAuthError naming the source that was tried; no message carries a token or a key.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

import google.auth
from google.auth import credentials as auth_credentials
from google.auth import exceptions as auth_exceptions
from google.auth import impersonated_credentials
from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account

from pettwin_checks.deadline import Deadline, DeadlineExceeded

from .endpoints import Endpoints
from .errors import GcpApiError, GcpAuthError, GcpError, MalformedResponse
from .metadata import MetadataServer
from .scopes import CLOUD_PLATFORM
from .stats import ApiCallStats
from .transport import HttpWrapperRequest

# Without a narrower request, one scope every Google API accepts (see scopes.py for the narrow ones).
DEFAULT_SCOPES = (CLOUD_PLATFORM,)


def gcloud_adc_path() -> Path:
    config_dir = os.environ.get("CLOUDSDK_CONFIG")
    if config_dir:
        return Path(config_dir) / "application_default_credentials.json"
    if os.name == "nt":
        return Path(os.environ.get("APPDATA", "")) / "gcloud" / "application_default_credentials.json"
    return Path.home() / ".config" / "gcloud" / "application_default_credentials.json"


class MetadataServerCredentials(auth_credentials.Scoped, auth_credentials.Credentials):
    """The attached service account's tokens from the metadata server.

    google-auth's compute_engine credentials read the metadata host once at import; this class asks the
    MetadataServer client, so `metadata_endpoint` and the run's deadline apply.
    """

    def __init__(self, metadata: MetadataServer, scopes=None, default_scopes=None):
        super().__init__()
        self._metadata = metadata
        self._scopes = scopes
        self._default_scopes = default_scopes
        self.deadline = Deadline.unbounded()

    @property
    def requires_scopes(self) -> bool:
        return False

    def with_scopes(self, scopes, default_scopes=None):
        return MetadataServerCredentials(self._metadata, scopes, default_scopes)

    def refresh(self, request):
        scopes = self._scopes or self._default_scopes
        params = {"scopes": ",".join(scopes)} if scopes else None
        try:
            body = self._metadata.get_json("instance/service-accounts/default/token", self.deadline, params)
        except (GcpError, DeadlineExceeded) as failure:
            raise auth_exceptions.RefreshError(str(failure)) from None
        token, expires_in = body.get("access_token"), body.get("expires_in")
        if not isinstance(token, str) or not isinstance(expires_in, (int, float)):
            raise auth_exceptions.RefreshError("the metadata server's token answer has no access_token/expires_in")
        self.token = token
        # google-auth keeps expiry as a naive UTC datetime.
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        self.expiry = now + datetime.timedelta(seconds=float(expires_in))


class GoogleCredentials:
    """Where tokens come from, for one check instance. Cheap to build; nothing is fetched until `token()`."""

    def __init__(
        self,
        http,
        endpoints: Endpoints,
        *,
        credentials_path: str | None = None,
        impersonate_service_account: str | None = None,
        scopes=DEFAULT_SCOPES,
        stats: ApiCallStats | None = None,
    ):
        self._http = http
        self._endpoints = endpoints
        self._credentials_path = credentials_path
        self._impersonate = impersonate_service_account
        self.scopes = tuple(scopes)
        self._stats = stats
        self.metadata = MetadataServer(http, endpoints, stats)
        self._credentials = None
        self.project_id: str | None = None  # the project the credentials belong to, when they say
        self.source = self._describe_source()

    def _describe_source(self) -> str:
        if self._credentials_path:
            base = f"credentials_path {self._credentials_path}"
        elif os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
            base = f"GOOGLE_APPLICATION_CREDENTIALS={os.environ['GOOGLE_APPLICATION_CREDENTIALS']}"
        elif gcloud_adc_path().is_file():
            base = f"gcloud application default credentials {gcloud_adc_path()}"
        else:
            base = f"the metadata server at {self._endpoints.metadata} (attached service account)"
        if self._impersonate:
            return f"{base}, impersonating {self._impersonate}"
        return base

    def _request(self, deadline: Deadline) -> HttpWrapperRequest:
        return HttpWrapperRequest(self._http, deadline, self._stats, api="auth")

    def _load(self):
        path = self._credentials_path or os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        if not path and gcloud_adc_path().is_file():
            path = str(gcloud_adc_path())
        if path:
            credentials = self._load_file(path)
        else:
            credentials = MetadataServerCredentials(self.metadata, scopes=self.scopes)
        if self._impersonate:
            credentials = impersonated_credentials.Credentials(
                source_credentials=credentials,
                target_principal=self._impersonate,
                target_scopes=self.scopes,
                iam_endpoint_override=self._endpoints.impersonation_url(self._impersonate),
            )
        return credentials

    def _load_file(self, path: str):
        try:
            with open(path) as f:
                info = json.load(f)
        except OSError as failure:
            raise GcpAuthError(self.source, f"cannot read the file: {failure.strerror}") from None
        except ValueError:
            raise GcpAuthError(self.source, "the file is not JSON") from None
        if not isinstance(info, dict):
            raise GcpAuthError(self.source, "the file is not a JSON object")
        if self._endpoints.oauth_token and info.get("type") == "service_account":
            info = dict(info, token_uri=f"{self._endpoints.oauth_token}")
        try:
            if info.get("type") == "service_account":
                credentials = service_account.Credentials.from_service_account_info(info, scopes=self.scopes)
            else:
                # A user's refresh token (gcloud's application-default login) was granted cloud-platform and
                # cannot be exchanged for scopes outside its grant: it asks for what it holds.
                scopes = DEFAULT_SCOPES if info.get("type") == "authorized_user" else self.scopes
                credentials, _ = google.auth.load_credentials_from_file(path, scopes=scopes)
                if self._endpoints.oauth_token and isinstance(credentials, user_credentials.Credentials):
                    # google-auth refreshes an authorized_user file at Google's endpoint whatever it says.
                    credentials = credentials.with_token_uri(self._endpoints.oauth_token)
        except (auth_exceptions.GoogleAuthError, ValueError, KeyError) as failure:
            # ValueError texts from key parsing never include the key itself; redact() is the second guard.
            reason = f"unusable credentials file ({type(failure).__name__}: {failure})"
            raise GcpAuthError(self.source, reason) from None
        self.project_id = info.get("project_id") or info.get("quota_project_id") or None
        return credentials

    def token(self, deadline: Deadline, force_refresh: bool = False) -> str:
        """A valid access token, refreshed when it is about to expire or `force_refresh` (after a 401)."""
        if self._credentials is None:
            self._credentials = self._load()
        credentials = self._credentials
        if isinstance(credentials, MetadataServerCredentials):
            credentials.deadline = deadline
        source_credentials = getattr(credentials, "_source_credentials", None)
        if isinstance(source_credentials, MetadataServerCredentials):
            source_credentials.deadline = deadline
        if force_refresh or not credentials.valid:
            try:
                credentials.refresh(self._request(deadline))
            except auth_exceptions.GoogleAuthError as failure:
                raise GcpAuthError(self.source, _auth_failure_text(failure)) from None
            except (GcpApiError, MalformedResponse, DeadlineExceeded) as failure:
                raise GcpAuthError(self.source, str(failure)) from None
        if not credentials.token:
            raise GcpAuthError(self.source, "no token after refresh")
        return credentials.token

    def discover_project_id(self, deadline: Deadline) -> str:
        """The project of the credentials file, else the metadata server's project."""
        if self._credentials is None:
            self._credentials = self._load()
        if self.project_id:
            return self.project_id
        return self.metadata.project_id(deadline)


def _auth_failure_text(failure: Exception) -> str:
    # RefreshError args are (message, response body); the body can hold a token on odd answers, so only the
    # message goes on, and redact() runs over it in GcpAuthError.
    first = failure.args[0] if failure.args else failure
    return f"{type(failure).__name__}: {first}"
