"""FinOps cost-ingestion batch: the Dagster code location."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("finops-batch-admin")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
