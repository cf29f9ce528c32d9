"""All of this check's calls to Google: the metadata server, Cloud Run Admin API v2 and Cloud Monitoring.

Built on pettwin_checks.gcp over the check's HTTP wrapper; every call takes its timeout from the run's Deadline.
"""

from __future__ import annotations

from ..gcp.credentials import CLOUD_PLATFORM_READ_ONLY, GoogleCredentials
from ..gcp.deadline import Deadline
from ..gcp.endpoints import Endpoints
from ..gcp.errors import MalformedResponse
from ..gcp.monitoring import ListResult, MonitoringClient
from ..gcp.rest import GcpRestClient
from ..gcp.stats import ApiCallStats
from ..gcp.timeseries import TimeSeriesQuery

MAX_SERVICE_PAGES = 100


class CloudRunClient:
    def __init__(self, http, config, log=None):
        self.endpoints = Endpoints.from_config(config.model_dump())
        self.stats = ApiCallStats()
        self.credentials = GoogleCredentials(
            http, self.endpoints, credentials_path=config.credentials_path,
            impersonate_service_account=config.impersonate_service_account,
            scopes=(CLOUD_PLATFORM_READ_ONLY,), stats=self.stats,
        )
        self.metadata = self.credentials.metadata
        self.rest = GcpRestClient(http, self.credentials, self.stats, log=log)

    def metadata_identity(self, wanted: set[str], deadline: Deadline) -> dict[str, str]:
        """project_id / location / instance_id from the metadata server, as many as `wanted`."""
        found = {}
        if "project_id" in wanted:
            found["project_id"] = self.metadata.project_id(deadline)
        if "location" in wanted:
            found["location"] = self.metadata.region(deadline)
        if "instance_id" in wanted:
            found["instance_id"] = self.metadata.instance_id(deadline)
        return found

    def list_services(self, project: str, location: str, deadline: Deadline) -> list[dict]:
        """Every Service in the location (one call per page of 100)."""
        url = f"{self.endpoints.run}/v2/projects/{project}/locations/{location}/services"
        services, token = [], ""
        for _ in range(MAX_SERVICE_PAGES):
            params = {"pageSize": "100", **({"pageToken": token} if token else {})}
            body = self.rest.get_json("run", url, deadline, params=params)
            page = body.get("services") or []
            if not isinstance(page, list):
                raise MalformedResponse("run API: services is not a list")
            services.extend(s for s in page if isinstance(s, dict))
            token = body.get("nextPageToken") or ""
            if not token:
                return services
        raise MalformedResponse("run API: services page tokens do not end")

    def get_revision(self, resource_name: str, deadline: Deadline) -> dict:
        return self.rest.get_json("run", f"{self.endpoints.run}/v2/{resource_name}", deadline)

    def list_time_series(self, project: str, query: TimeSeriesQuery, start: float, end: float,
                         deadline: Deadline) -> ListResult:
        return MonitoringClient(self.rest, self.endpoints.monitoring, project).list_time_series(
            query, start, end, deadline)
