"""Everything a check needs to talk to Google, built once per check instance from its options."""

from __future__ import annotations

from collections.abc import Mapping

from pettwin_checks.deadline import Deadline

from .credentials import GoogleCredentials
from .endpoints import Endpoints
from .errors import GcpApiError
from .monitoring import DEFAULT_PAGE_SIZE, MonitoringClient
from .rest import GcpRestClient, RetryPolicy
from .scopes import denial_remedy, scopes_for
from .stats import ApiCallStats


class GcpSession:
    """Endpoints, credentials, the REST client, the metadata server and call counting, sharing one `self.http`.

    `options` is the check instance's config mapping; read here: credentials_path, impersonate_service_account,
    and the endpoint overrides (monitoring_endpoint, run_endpoint, aiplatform_endpoint, metadata_endpoint,
    oauth_token_endpoint, iam_credentials_endpoint). `apis` names the APIs the check calls (monitoring, run,
    aiplatform): tokens are asked for the narrowest scopes all of them accept.
    """

    def __init__(self, http, options: Mapping[str, object], *, apis, retry: RetryPolicy | None = None, log=None):
        self.http = http
        self.endpoints = Endpoints.from_config(options)
        self.stats = ApiCallStats()
        self.credentials = GoogleCredentials(
            http,
            self.endpoints,
            credentials_path=_optional_str(options.get("credentials_path")),
            impersonate_service_account=_optional_str(options.get("impersonate_service_account")),
            scopes=scopes_for(apis),
            stats=self.stats,
        )
        self.metadata = self.credentials.metadata
        self.rest = GcpRestClient(http, self.credentials, self.stats, retry, log)
        self._project_id: str | None = _optional_str(options.get("project_id"))

    def project_id(self, deadline: Deadline) -> str:
        """The configured project, else the credentials file's, else the metadata server's (cached once known)."""
        if not self._project_id:
            self._project_id = self.credentials.discover_project_id(deadline)
        return self._project_id

    def denial_remedy(self, failure: GcpApiError, role: str) -> str:
        """What to do about a 403 from an API: add the missing scope, or grant `role`."""
        return denial_remedy(failure, role, self.credentials.source, self.credentials.scopes)

    def monitoring(self, project_id: str, page_size: int = DEFAULT_PAGE_SIZE) -> MonitoringClient:
        return MonitoringClient(self.rest, self.endpoints.monitoring, project_id, page_size)


def _optional_str(value) -> str | None:
    return str(value) if value not in (None, "") else None
