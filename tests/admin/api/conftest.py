"""The reprocess tests share one world per module (tests/reprocess_world.py)."""

from tests.reprocess_world import world  # noqa: F401  # a fixture, found by pytest through this import
