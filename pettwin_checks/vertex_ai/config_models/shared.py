from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class SharedConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    service: str | None = None
    timeout: float | None = None
    proxy: dict | None = None
    skip_proxy: bool | None = None
