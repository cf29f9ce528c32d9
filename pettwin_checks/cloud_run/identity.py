"""Who this instance is: Cloud Run's environment variables, the metadata server, and config overrides -> tags."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# Cloud Run sets these in every container of an instance (https://cloud.google.com/run/docs/container-contract).
ENV_SERVICE, ENV_REVISION, ENV_CONFIGURATION, ENV_PORT = "K_SERVICE", "K_REVISION", "K_CONFIGURATION", "PORT"


@dataclass(frozen=True)
class Identity:
    project_id: str | None = None
    location: str | None = None
    service_name: str | None = None
    revision_name: str | None = None
    configuration_name: str | None = None
    instance_id: str | None = None

    @property
    def on_cloud_run(self) -> bool:
        return bool(self.service_name and self.revision_name)


def from_env(environ: Mapping[str, str]) -> dict[str, str]:
    names = {"service_name": ENV_SERVICE, "revision_name": ENV_REVISION, "configuration_name": ENV_CONFIGURATION}
    return {field: environ[var] for field, var in names.items() if environ.get(var)}


def resolve(configured: Mapping[str, str | None], environ: Mapping[str, str], metadata: Mapping[str, str]) -> Identity:
    """Config wins over the environment, which wins over the metadata server."""
    merged: dict[str, str] = {}
    for source in (metadata, from_env(environ), {k: v for k, v in configured.items() if v}):
        merged.update(source)
    return Identity(**{k: v for k, v in merged.items() if k in Identity.__dataclass_fields__})


def identity_tags(identity: Identity, with_instance_id: bool) -> list[str]:
    tags = []
    for name in ("project_id", "location", "service_name", "revision_name", "configuration_name"):
        value = getattr(identity, name)
        if value:
            tags.append(f"{name}:{value}")
    if with_instance_id and identity.instance_id:
        tags.append(f"instance_id:{identity.instance_id}")
    return tags
