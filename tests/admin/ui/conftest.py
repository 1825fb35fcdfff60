"""Fixtures of the browser tests (tests/admin/ui/browser.py), registered once for both user
interfaces' modules so that they share one browser and one run history."""

from tests.admin.ui.browser import axe_source, browser, ui_world

__all__ = ["axe_source", "browser", "ui_world"]
