"""A run's logs: the streamed download, the failure excerpt, links to Dagster and Kibana/Loki.

- `selection`, `formatting`: pure (`step`/`stream`, event lines);
- links to Dagster and Kibana/Loki are `finops_admin_plugin.links`;
- which steps captured which logs is mapping (`finops_admin_plugin.mapping.captures`);
- reading Dagster (event records, compute log manager) is `finops_admin_plugin.dagster_reader`'s job;
- `download`, `excerpt`: what the API serves, built from the two;
- `follow`, `followers`: the log as it is written (`?follow=true`), and the open followers.
"""

from finops_admin_plugin.logs.download import LogDownload, LogsNotAvailable, RunNotFound, prepare_download
from finops_admin_plugin.logs.excerpt import EXCERPT_LINES, build_excerpt, excerpt_lines
from finops_admin_plugin.logs.follow import FollowState, LogFollower, prepare_follow
from finops_admin_plugin.logs.followers import FollowerSlot, FollowerSlots, followers_exposition
from finops_admin_plugin.logs.formatting import format_event, section_header
from finops_admin_plugin.logs.selection import (
    STREAMS,
    LogSelection,
    StepNotInRun,
    Stream,
    attachment_filename,
    select_logs,
)

__all__ = [
    "EXCERPT_LINES",
    "STREAMS",
    "FollowState",
    "FollowerSlot",
    "FollowerSlots",
    "LogDownload",
    "LogFollower",
    "LogSelection",
    "LogsNotAvailable",
    "RunNotFound",
    "StepNotInRun",
    "Stream",
    "attachment_filename",
    "build_excerpt",
    "excerpt_lines",
    "followers_exposition",
    "format_event",
    "prepare_download",
    "prepare_follow",
    "section_header",
    "select_logs",
]
