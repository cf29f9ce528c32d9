from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class SharedConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    service: str | None = None
    proxy: dict[str, str] | None = None
    skip_proxy: bool = False
    timeout: float | None = None
