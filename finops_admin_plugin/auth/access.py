"""What a caller may do here, as API errors: the reader and admin checks behind `api.deps`."""

from __future__ import annotations

from fastapi.security import HTTPBearer

from finops_admin_plugin.auth.caller import Caller
from finops_admin_plugin.auth.roles import can_administer, can_read
from finops_admin_plugin.http.errors import NotAllowedError
from finops_admin_plugin.settings import AdminSettings

__all__ = ["bearer_scheme", "check_admin", "check_reader"]

# Declared so the OpenAPI document marks every protected operation with its security
# requirement; the header itself is parsed by the Authenticator, which words the errors.
bearer_scheme = HTTPBearer(
    scheme_name="BackstageToken",
    description="A Backstage user token (forwarded by the Backstage proxy) or a configured service token",
    auto_error=False,
)


def _no_role_message(caller: Caller, settings: AdminSettings) -> str:
    return (
        f"{caller.subject} is in none of the groups allowed here (admins: "
        f"{', '.join(settings.admin_groups) or '-'}; users: {', '.join(settings.user_groups) or '-'}); "
        f"ask a FinOps admin to add you to one (FINOPS_ADMIN_GROUPS, FINOPS_USER_GROUPS)"
    )


def check_reader(caller: Caller, settings: AdminSettings) -> Caller:
    """`caller` when they may read runs and coverage; NotAllowedError saying why not otherwise."""
    if can_read(caller, settings):
        return caller
    if caller.role == "user":
        raise NotAllowedError(
            f"{caller.subject} is a FinOps user and user access is 'none'; reading runs needs a group in "
            f"FINOPS_ADMIN_GROUPS, or FINOPS_USER_ACCESS=read"
        )
    raise NotAllowedError(_no_role_message(caller, settings))


def check_admin(caller: Caller, settings: AdminSettings) -> Caller:
    """`caller` when they may do everything (logs, reprocess); NotAllowedError otherwise."""
    if can_administer(caller):
        return caller
    if caller.role == "user":
        raise NotAllowedError(
            f"{caller.subject} is a FinOps user: logs and reprocess need a group in FINOPS_ADMIN_GROUPS"
        )
    raise NotAllowedError(_no_role_message(caller, settings))
