"""FastAPI dependencies: `CallerDep` (who), `ReaderDep` (may read), `AdminDep` (may do everything)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from finops_admin_plugin.auth.authenticator import Authenticator
from finops_admin_plugin.auth.caller import Caller
from finops_admin_plugin.auth.roles import can_administer, can_read
from finops_admin_plugin.errors import NotAllowedError
from finops_admin_plugin.settings import AdminSettings

__all__ = ["AdminDep", "CallerDep", "ReaderDep", "get_authenticator", "get_caller"]

# Declared so the OpenAPI document marks every protected operation with its security
# requirement; the header itself is parsed by the Authenticator, which words the errors.
bearer_scheme = HTTPBearer(
    scheme_name="BackstageToken",
    description="A Backstage user token (forwarded by the Backstage proxy) or a configured service token",
    auto_error=False,
)


def get_authenticator(request: Request) -> Authenticator:
    authenticator = getattr(request.app.state, "authenticator", None)
    if authenticator is None:
        # An app assembled without create_app: build it once from its settings.
        authenticator = Authenticator(request.app.state.settings)
        request.app.state.authenticator = authenticator
    return authenticator


def get_caller(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Caller:
    # A plain `def`: verification may call Backstage (JWKS, userinfo), so FastAPI runs it in
    # its thread pool instead of blocking the event loop.
    return get_authenticator(request).authenticate(request.headers.get("authorization"))


CallerDep = Annotated[Caller, Depends(get_caller)]


def _settings(request: Request) -> AdminSettings:
    return request.app.state.settings


def _no_role_message(caller: Caller, settings: AdminSettings) -> str:
    return (
        f"{caller.subject} is in none of the groups allowed here (admins: "
        f"{', '.join(settings.admin_groups) or '-'}; users: {', '.join(settings.user_groups) or '-'}); "
        f"ask a FinOps admin to add you to one (FINOPS_ADMIN_GROUPS, FINOPS_USER_GROUPS)"
    )


def require_reader(request: Request, caller: CallerDep) -> Caller:
    settings = _settings(request)
    if can_read(caller, settings):
        return caller
    if caller.role == "user":
        raise NotAllowedError(
            f"{caller.subject} is a FinOps user and user access is 'none'; reading runs needs a group in "
            f"FINOPS_ADMIN_GROUPS, or FINOPS_USER_ACCESS=read"
        )
    raise NotAllowedError(_no_role_message(caller, settings))


def require_admin(request: Request, caller: CallerDep) -> Caller:
    if can_administer(caller):
        return caller
    if caller.role == "user":
        raise NotAllowedError(
            f"{caller.subject} is a FinOps user: logs and reprocess need a group in FINOPS_ADMIN_GROUPS"
        )
    raise NotAllowedError(_no_role_message(caller, _settings(request)))


ReaderDep = Annotated[Caller, Depends(require_reader)]
AdminDep = Annotated[Caller, Depends(require_admin)]
