"""Pure mapping from Dagster records to the admin views: no I/O here."""

from finops_admin_plugin.mapping.links import LinkConfig, fill_links
from finops_admin_plugin.mapping.runs import map_run_detail, map_run_summary, summary_of
from finops_admin_plugin.mapping.status import map_run_status

__all__ = ["LinkConfig", "fill_links", "map_run_detail", "map_run_status", "map_run_summary", "summary_of"]
