"""The built-in web UI (`/finops/admin/ui`): a static page on top of the JSON API."""

from finops_admin_plugin.ui.router import mount_ui

__all__ = ["mount_ui"]
