"""The caller (`GET /me`): who the API thinks they are and what they may do."""

from __future__ import annotations

from typing import Literal

from finops_admin_plugin.models.common import ApiModel

__all__ = ["AccessResponse", "CallerResponse"]


class AccessResponse(ApiModel):
    read: bool
    logs: bool
    reprocess: bool


class CallerResponse(ApiModel):
    subject: str
    role: Literal["admin", "user"] | None
    groups: list[str]
    via: Literal["backstage", "static", "dev"]
    auth_mode: Literal["backstage", "static", "dev"]
    dev_mode: bool
    access: AccessResponse
