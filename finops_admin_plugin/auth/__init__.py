"""Who is calling, and what they may do.

- `Authenticator` turns an Authorization header into a `Caller` (subject entity ref, role,
  groups, via); one per app, held by `AdminResources`.
- `check_reader` / `check_admin`: the access rules as API errors; the route dependencies
  (`CallerDep`, `ReaderDep`, `AdminDep`) are in `finops_admin_plugin.api.deps`.

Modes (FINOPS_AUTH_MODE): `backstage` (Backstage user tokens, plus service
tokens from FINOPS_STATIC_TOKENS), `static` (service tokens only), `dev`
(every caller is an admin; loopback only).
"""

from __future__ import annotations

from finops_admin_plugin.auth.access import bearer_scheme, check_admin, check_reader
from finops_admin_plugin.auth.announce import announce_auth
from finops_admin_plugin.auth.authenticator import AuthConfigError, Authenticator
from finops_admin_plugin.auth.caller import DEV_SUBJECT, Caller, Role, token_fingerprint
from finops_admin_plugin.auth.devmode import DevModeBindError, check_dev_mode_bind, is_loopback_host

__all__ = [
    "DEV_SUBJECT",
    "AuthConfigError",
    "Authenticator",
    "Caller",
    "DevModeBindError",
    "Role",
    "announce_auth",
    "bearer_scheme",
    "check_admin",
    "check_dev_mode_bind",
    "check_reader",
    "is_loopback_host",
    "token_fingerprint",
]
