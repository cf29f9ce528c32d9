"""The GCE / Cloud Run metadata server: project, region, instance identity and the attached service account.

Paths and the `Metadata-Flavor: Google` header follow Google's documented metadata server. On Cloud Run,
`instance/region` answers `projects/<number>/regions/<region>`; on GCE, `instance/zone` answers
`projects/<number>/zones/<zone>`. Both are reduced to the bare name.
"""

from __future__ import annotations

import json

import requests

from pettwin_checks.deadline import Deadline

from .endpoints import METADATA_FLAVOR_HEADER, Endpoints
from .errors import GcpApiError, MalformedResponse, redact
from .stats import ApiCallStats

METADATA_CALL_TIMEOUT = 3.0


class MetadataServer:
    def __init__(self, http, endpoints: Endpoints, stats: ApiCallStats | None = None):
        self._http = http
        self.root = endpoints.metadata_root
        self._stats = stats

    def get_text(self, path: str, deadline: Deadline, params: dict | None = None) -> str:
        """The body of GET <root>/<path>; raises GcpApiError (status 0 when unreachable)."""
        if self._stats is not None:
            self._stats.record("metadata")
        url = f"{self.root}/{path.lstrip('/')}"
        try:
            response = self._http.get(
                url,
                params=params,
                extra_headers=METADATA_FLAVOR_HEADER,
                timeout=deadline.timeout(METADATA_CALL_TIMEOUT),
                # The metadata server is link-local: a configured HTTP proxy must not be used for it.
                proxies={"http": "", "https": ""},
            )
        except requests.RequestException as failure:
            raise GcpApiError("metadata", 0, f"{self.root} unreachable: {type(failure).__name__}") from None
        if response.status_code != 200:
            raise GcpApiError("metadata", response.status_code, f"GET {path}: {redact(response.text, 120)}")
        if response.headers.get("Metadata-Flavor") != "Google":
            # Something else answered (a captive proxy, a web server): not a metadata server.
            raise MalformedResponse(f"{self.root} answered without the Metadata-Flavor: Google header")
        return response.text

    def get_json(self, path: str, deadline: Deadline, params: dict | None = None) -> dict:
        text = self.get_text(path, deadline, params)
        try:
            body = json.loads(text)
        except ValueError:
            raise MalformedResponse(f"metadata {path}: not JSON") from None
        if not isinstance(body, dict):
            raise MalformedResponse(f"metadata {path}: not a JSON object")
        return body

    def project_id(self, deadline: Deadline) -> str:
        return self.get_text("project/project-id", deadline).strip()

    def region(self, deadline: Deadline) -> str:
        """The Cloud Run region; on GCE, the region of the instance's zone."""
        try:
            return last_path_segment(self.get_text("instance/region", deadline))
        except GcpApiError as missing:
            if missing.status != 404:
                raise
        zone = last_path_segment(self.get_text("instance/zone", deadline))
        return zone.rsplit("-", 1)[0]

    def instance_id(self, deadline: Deadline) -> str:
        return self.get_text("instance/id", deadline).strip()


def last_path_segment(text: str) -> str:
    return text.strip().rstrip("/").rsplit("/", 1)[-1]
