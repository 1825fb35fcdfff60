"""Wiring of auth into an app: checks that refuse a broken or unsafe configuration, and state."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from finops_admin_plugin.auth.authenticator import Authenticator
from finops_admin_plugin.auth.caller import DEV_SUBJECT
from finops_admin_plugin.auth.devmode import check_dev_mode_bind
from finops_admin_plugin.settings import AdminSettings

log = logging.getLogger(__name__)

__all__ = ["install_auth"]


def install_auth(app: FastAPI, settings: AdminSettings) -> Authenticator:
    """Validate the auth settings and put the authenticator on `app.state`.

    Raises AuthConfigError (missing FINOPS_BACKSTAGE_URL / FINOPS_STATIC_TOKENS) or
    DevModeBindError (dev mode on a non-loopback address), so a broken setup never serves.
    """
    check_dev_mode_bind(settings)
    authenticator = Authenticator(settings)
    app.state.authenticator = authenticator
    app.state.auth_mode = settings.auth_mode
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
    return authenticator
