"""Group membership -> role, and role -> what may be done. Denied unless configured."""

from __future__ import annotations

from collections.abc import Iterable

from finops_admin_plugin.auth.caller import Caller, Role
from finops_admin_plugin.settings import AdminSettings

__all__ = ["can_administer", "can_read", "role_for_groups"]


def role_for_groups(groups: Iterable[str], settings: AdminSettings) -> Role | None:
    """The strongest role any of `groups` grants.

    Entity refs are compared exactly: no case folding, no prefix match, so
    `group:default/finops-admin-old` or `Group:Default/Finops-Admin` grant nothing
    unless listed themselves.
    """
    owned = set(groups)
    if owned.intersection(settings.admin_groups):
        return "admin"
    if owned.intersection(settings.user_groups):
        return "user"
    return None


def can_read(caller: Caller, settings: AdminSettings) -> bool:
    """Run list, run detail, coverage: admins, and users when FINOPS_USER_ACCESS=read."""
    return caller.role == "admin" or (caller.role == "user" and settings.user_access == "read")


def can_administer(caller: Caller) -> bool:
    """Logs and reprocess: admins only."""
    return caller.role == "admin"
