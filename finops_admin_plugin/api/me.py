"""`GET /me`: who the API thinks the caller is, what they may do, and whether dev mode is on.

The UI uses it to hide actions the caller may not take and to show a banner in dev mode.
"""

from __future__ import annotations

from fastapi import APIRouter

from finops_admin_plugin.api.deps import CallerDep, SettingsDep
from finops_admin_plugin.auth.roles import can_administer, can_read
from finops_admin_plugin.models import AccessResponse, CallerResponse

router = APIRouter(tags=["auth"])


@router.get(
    "/me",
    summary="The authenticated caller, their role and what they may do",
    response_model=CallerResponse,
    response_model_by_alias=True,
)
def me(caller: CallerDep, settings: SettingsDep) -> CallerResponse:
    admin = can_administer(caller)
    return CallerResponse(
        subject=caller.subject,
        role=caller.role,
        groups=list(caller.groups),
        via=caller.via,
        auth_mode=settings.auth_mode,
        dev_mode=settings.auth_mode == "dev",
        access=AccessResponse(read=can_read(caller, settings), logs=admin, reprocess=admin),
    )
