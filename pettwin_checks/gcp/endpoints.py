"""Base URLs of the Google APIs the checks call, each overridable so a local emulator can stand in."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

METADATA_FLAVOR_HEADER = {"Metadata-Flavor": "Google"}
# Vertex AI's multi-region locations (docs/vertex_ai.md cites where Google documents their hosts).
AIPLATFORM_MULTI_REGIONS = ("us", "eu")
DEFAULT_METADATA_HOST = "metadata.google.internal"
# The config option naming each API's endpoint; the same option names in every check's conf.yaml.
ENDPOINT_OPTIONS = {
    "monitoring": "monitoring_endpoint",
    "run": "run_endpoint",
    "aiplatform": "aiplatform_endpoint",
    "metadata": "metadata_endpoint",
    "oauth_token": "oauth_token_endpoint",
    "iam_credentials": "iam_credentials_endpoint",
}


def _base(url: str) -> str:
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    return url


@dataclass(frozen=True)
class Endpoints:
    """Base URLs without a trailing slash.

    `aiplatform` is None by default: Vertex AI is regional, so the base URL depends on the location
    (`aiplatform_base(location)`). Set, it serves every location (an emulator, a Private Service Connect name).
    `oauth_token` None keeps the token_uri written in the credentials file.
    """

    monitoring: str = "https://monitoring.googleapis.com"
    run: str = "https://run.googleapis.com"
    aiplatform: str | None = None
    metadata: str = ""
    oauth_token: str | None = None
    iam_credentials: str = "https://iamcredentials.googleapis.com"

    def __post_init__(self):
        if not self.metadata:
            # google-auth and Google's client libraries honour GCE_METADATA_HOST; so do we.
            host = os.environ.get("GCE_METADATA_HOST") or DEFAULT_METADATA_HOST
            object.__setattr__(self, "metadata", _base(host))

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> Endpoints:
        """Endpoints from a check's options (`monitoring_endpoint`, `aiplatform_endpoint`...); unset ones default."""
        values = {}
        for api, option in ENDPOINT_OPTIONS.items():
            value = config.get(option)
            if value:
                values[api] = _base(str(value))
        return cls(**values)

    def aiplatform_base(self, location: str) -> str:
        """Vertex AI's host for a location: the global endpoint, a multi-region endpoint (Google's
        SERVICE.MULTIREGION.rep.googleapis.com form: `us`, `eu`), else the regional LOCATION-aiplatform host."""
        if self.aiplatform:
            return self.aiplatform
        if location == "global":
            return "https://aiplatform.googleapis.com"
        if location in AIPLATFORM_MULTI_REGIONS:
            return f"https://aiplatform.{location}.rep.googleapis.com"
        return f"https://{location}-aiplatform.googleapis.com"

    @property
    def metadata_root(self) -> str:
        return f"{self.metadata}/computeMetadata/v1"

    def impersonation_url(self, service_account: str) -> str:
        return f"{self.iam_credentials}/v1/projects/-/serviceAccounts/{service_account}:generateAccessToken"
