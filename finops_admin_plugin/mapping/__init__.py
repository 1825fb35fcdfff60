"""Pure mapping from Dagster records to the admin views: no I/O here."""

from finops_admin_plugin.mapping.runs import map_run_detail, summary_of
from finops_admin_plugin.mapping.status import map_run_status

__all__ = ["map_run_detail", "map_run_status", "summary_of"]
