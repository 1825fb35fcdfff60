"""The auth setup, said once at start: loud in dev mode, where nothing is protected."""

from __future__ import annotations

import logging

from finops_admin_plugin.auth.authenticator import Authenticator
from finops_admin_plugin.auth.caller import DEV_SUBJECT
from finops_admin_plugin.settings import AdminSettings

log = logging.getLogger(__name__)

__all__ = ["announce_auth"]


def announce_auth(settings: AdminSettings, authenticator: Authenticator) -> None:
    if settings.auth_mode == "dev":
        # Loud on purpose, at every start: nothing here is protected.
        log.warning(
            "FINOPS_AUTH_MODE=dev: authentication is OFF, every caller is an admin (%s). "
            "For the embedded demo only; the API listens on %s (loopback).",
            DEV_SUBJECT,
            settings.api_host,
        )
    else:
        log.info(
            "auth mode %s: admin groups %s, user groups %s, user access %s, %d service token(s)",
            settings.auth_mode,
            ",".join(settings.admin_groups) or "-",
            ",".join(settings.user_groups) or "-",
            settings.user_access,
            len(authenticator.static_tokens),
        )
