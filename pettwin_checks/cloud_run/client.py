"""This check's calls to Google outside Cloud Monitoring (which the GCP engine reads): the metadata server and
Cloud Run Admin API v2.

Built on pettwin_checks.gcp's GcpSession (as every check is) over the check's HTTP wrapper; every call takes its
timeout from the run's Deadline.
"""

from __future__ import annotations

from pettwin_checks.deadline import Deadline
from pettwin_checks.gcp.errors import MalformedResponse
from pettwin_checks.gcp.rest import RetryPolicy
from pettwin_checks.gcp.session import GcpSession

MAX_SERVICE_PAGES = 100
# Read-only scopes each call accepts (Admin API v2: run.readonly; timeSeries.list: monitoring.read).
APIS = ("monitoring", "run")


class CloudRunClient:
    def __init__(self, http, config, log=None):
        retry = RetryPolicy(call_timeout=config.timeout)
        self.session = GcpSession(http, config.model_dump(), apis=APIS, retry=retry, log=log)
        self.endpoints = self.session.endpoints
        self.credentials = self.session.credentials
        self.metadata = self.session.metadata
        self.rest = self.session.rest

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
