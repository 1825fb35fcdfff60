"""Who is calling, and what they may do.

Interface used by the routers:
- `CallerDep`: the authenticated caller (`Caller`: subject entity ref, role, groups, via).
  Authentication only: a caller with no role passes. Data routes use one of:
- `ReaderDep`: a caller allowed to read the run list, run detail and coverage
  (admins; users when FINOPS_USER_ACCESS=read).
- `AdminDep`: a caller allowed everything (logs, reprocess).

Modes (FINOPS_AUTH_MODE): `backstage` (Backstage user tokens, plus service
tokens from FINOPS_STATIC_TOKENS), `static` (service tokens only), `dev`
(every caller is an admin; loopback only).
"""

from __future__ import annotations

from finops_admin_plugin.auth.authenticator import AuthConfigError, Authenticator
from finops_admin_plugin.auth.caller import DEV_SUBJECT, Caller, Role, token_fingerprint
from finops_admin_plugin.auth.dependencies import AdminDep, CallerDep, ReaderDep, get_caller
from finops_admin_plugin.auth.devmode import DevModeBindError, check_dev_mode_bind, is_loopback_host
from finops_admin_plugin.auth.install import install_auth

__all__ = [
    "DEV_SUBJECT",
    "AdminDep",
    "AuthConfigError",
    "Authenticator",
    "Caller",
    "CallerDep",
    "DevModeBindError",
    "ReaderDep",
    "Role",
    "check_dev_mode_bind",
    "get_caller",
    "install_auth",
    "is_loopback_host",
    "token_fingerprint",
]
