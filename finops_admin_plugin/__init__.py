"""FinOps Batch Admin: admin views of the FinOps batch, derived from Dagster, for Backstage."""

from finops_pipeline import __version__

__all__ = ["__version__"]
