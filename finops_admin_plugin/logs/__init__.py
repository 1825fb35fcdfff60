"""A run's logs: the streamed download, the failure excerpt, links to Dagster and Kibana/Loki.

- `links`, `selection`, `formatting`, `captures`: pure (templates, `step`/`stream`,
  event lines, Dagster records -> captures);
- `store`: the only I/O, through public Dagster APIs (event records, compute log manager);
- `download`, `excerpt`: what the API serves, built from the two.
"""

from finops_admin_plugin.logs.captures import Capture, captures_from_entries
from finops_admin_plugin.logs.download import LogDownload, LogsNotAvailable, RunNotFound, prepare_download
from finops_admin_plugin.logs.excerpt import EXCERPT_LINES, build_excerpt, excerpt_lines
from finops_admin_plugin.logs.formatting import format_event, section_header
from finops_admin_plugin.logs.links import (
    DEFAULT_MARGIN_SECONDS,
    TEMPLATE_PLACEHOLDERS,
    dagster_run_url,
    external_link,
    template_problems,
)
from finops_admin_plugin.logs.selection import (
    STREAMS,
    LogSelection,
    StepNotInRun,
    Stream,
    attachment_filename,
    select_logs,
)
from finops_admin_plugin.logs.store import CHUNK_BYTES, LogStorageUnavailable, RunLogSource

__all__ = [
    "CHUNK_BYTES",
    "DEFAULT_MARGIN_SECONDS",
    "EXCERPT_LINES",
    "STREAMS",
    "TEMPLATE_PLACEHOLDERS",
    "Capture",
    "LogDownload",
    "LogSelection",
    "LogStorageUnavailable",
    "LogsNotAvailable",
    "RunLogSource",
    "RunNotFound",
    "StepNotInRun",
    "Stream",
    "attachment_filename",
    "build_excerpt",
    "captures_from_entries",
    "dagster_run_url",
    "excerpt_lines",
    "external_link",
    "format_event",
    "prepare_download",
    "section_header",
    "select_logs",
    "template_problems",
]
