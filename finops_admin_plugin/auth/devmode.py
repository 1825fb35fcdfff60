"""The `dev` auth mode: every caller is an admin, so it may only listen on loopback."""

from __future__ import annotations

import ipaddress

from finops_admin_plugin.settings import AdminSettings

__all__ = ["DevModeBindError", "check_dev_mode_bind", "is_loopback_host"]


class DevModeBindError(RuntimeError):
    """FINOPS_AUTH_MODE=dev with an API reachable from other machines."""


def is_loopback_host(host: str) -> bool:
    """True for `localhost`, 127.0.0.0/8 and ::1 (bracketed or not); False for 0.0.0.0, :: and names."""
    candidate = host.strip()
    if candidate.startswith("[") and candidate.endswith("]"):
        candidate = candidate[1:-1]
    if candidate.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(candidate).is_loopback
    except ValueError:
        # Any other host name may resolve to a public interface: not provably loopback.
        return False


def check_dev_mode_bind(settings: AdminSettings, host: str | None = None) -> None:
    """Refuse to serve in dev mode on anything but loopback.

    `host` is the address the server will bind (defaults to `settings.api_host`);
    servers that bind elsewhere than the settings say must pass it.
    """
    if settings.auth_mode != "dev":
        return
    bind = settings.api_host if host is None else host
    if not is_loopback_host(bind):
        raise DevModeBindError(
            f"FINOPS_AUTH_MODE=dev makes every caller an admin, so the API must listen on loopback only; "
            f"it is configured to listen on {bind!r}. Set FINOPS_API_HOST=127.0.0.1 (or ::1, localhost), "
            f"or set FINOPS_AUTH_MODE=backstage with FINOPS_BACKSTAGE_URL."
        )
