"""Links of a run (and of its blocks) to the admin API, the Dagster UI and an external log viewer.

`FINOPS_LOGS_URL_TEMPLATE` is a URL in which these placeholders are replaced:

    {runId}  {domain}  {stepKey}  {start}  {end}

`{start}` and `{end}` bound the time window: the run's (or block's) start and end
widened by a margin. Their format is chosen per placeholder, so one template
suits the tool it points at:

    {start} / {start:iso}   ISO 8601 UTC, 2026-11-24T02:44:05.000Z  (Kibana `_g=(time:(from:'…'))`)
    {start:ms}              epoch milliseconds, 1795487045000        (Grafana Explore, Loki)
    {start:s}               epoch seconds                            (Loki HTTP API, others)

An end not reached yet (a running run) renders `now`, a start not known yet
`now-1h`: both Kibana and Grafana read these relative times. Values are
percent-encoded; every other character of the template (Grafana's JSON braces,
Kibana's rison) is kept as written, so a template is used exactly as configured.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import quote

from finops_admin_plugin.models import BlockLinks, LogExcerpt, LogsSection, RunDetailResponse, RunLinks
from finops_admin_plugin.settings import API_BASE_PATH

__all__ = [
    "DEFAULT_MARGIN_SECONDS",
    "TEMPLATE_PLACEHOLDERS",
    "TIME_FORMATS",
    "LinkConfig",
    "external_link",
    "render_template",
    "run_link_values",
    "run_links",
    "template_problems",
    "with_links",
]

log = logging.getLogger(__name__)

DEFAULT_MARGIN_SECONDS: Final = 300.0
TEMPLATE_PLACEHOLDERS: Final = ("runId", "domain", "stepKey", "start", "end")
TIME_FORMATS: Final = ("iso", "ms", "s")
RELATIVE_END: Final = "now"
RELATIVE_START: Final = "now-1h"

_PLACEHOLDER = re.compile(r"\{(runId|domain|stepKey|start|end)(?::([A-Za-z]*))?\}")
# Anything that looks like a placeholder, to point out typos such as {runid} or {start:epoch}.
_LOOKALIKE = re.compile(r"\{([A-Za-z]+)(?::([A-Za-z]*))?\}")
_warned: set[str] = set()


def _as_utc(value: datetime | str | float | None) -> datetime | None:
    """A time from a record (datetime, epoch seconds) or a payload (ISO string); None when unknown."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, int | float):
            moment = datetime.fromtimestamp(float(value), UTC)
        else:
            moment = datetime.fromisoformat(str(value))
    except (ValueError, OverflowError, OSError):
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _render_time(moment: datetime | None, fmt: str, relative: str) -> str:
    if moment is None:
        return relative
    if fmt == "ms":
        return str(int(moment.timestamp() * 1000))
    if fmt == "s":
        return str(int(moment.timestamp()))
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def template_problems(template: str) -> list[str]:
    """What is wrong with a link template (empty when usable): scheme, unknown placeholders or formats."""
    problems = []
    if not template.lower().startswith(("http://", "https://")):
        problems.append("it must be an http(s) URL")
    for match in _LOOKALIKE.finditer(template):
        name, fmt = match.group(1), match.group(2)
        if name in TEMPLATE_PLACEHOLDERS:
            if fmt is not None and (name not in ("start", "end") or fmt not in TIME_FORMATS):
                formats = ", ".join(TIME_FORMATS)
                problems.append(
                    f"{match.group(0)}: only {{start}} and {{end}} take a format, one of {formats}"
                )
        elif name.lower() in {p.lower() for p in TEMPLATE_PLACEHOLDERS}:
            wanted = next(p for p in TEMPLATE_PLACEHOLDERS if p.lower() == name.lower())
            problems.append(f"{match.group(0)} is not a placeholder; did you mean {{{wanted}}}?")
    return problems


def render_template(
    template: str,
    *,
    run_id: str,
    domain: str = "",
    step_key: str = "",
    start: datetime | None = None,
    end: datetime | None = None,
) -> str:
    """Replace the placeholders of `template` (window bounds already include the margin)."""
    values = {"runId": run_id, "domain": domain, "stepKey": step_key}

    def replace(match: re.Match[str]) -> str:
        name, fmt = match.group(1), match.group(2) or "iso"
        if name == "start":
            text = _render_time(start, fmt, RELATIVE_START)
        elif name == "end":
            text = _render_time(end, fmt, RELATIVE_END)
        else:
            text = values[name]
        return quote(text, safe="")

    return _PLACEHOLDER.sub(replace, template)


def external_link(
    template: str,
    *,
    run_id: str,
    domain: str = "",
    step_key: str = "",
    start: datetime | str | float | None = None,
    end: datetime | str | float | None = None,
    margin_seconds: float = DEFAULT_MARGIN_SECONDS,
) -> str | None:
    """The external log viewer's URL for a run or a block; None without a (usable) template.

    A template with a problem gives no link and one warning in the server log, never an error:
    a configuration mistake must not break the run pages.
    """
    if not template:
        return None
    problems = template_problems(template)
    if problems:
        if template not in _warned:
            _warned.add(template)
            log.warning(
                "FINOPS_LOGS_URL_TEMPLATE is not used (%s); placeholders are {%s}, see docs/logs.md",
                "; ".join(problems),
                "} {".join(TEMPLATE_PLACEHOLDERS),
            )
        return None
    margin = timedelta(seconds=max(0.0, margin_seconds))
    begin, finish = _as_utc(start), _as_utc(end)
    if begin is None and finish is not None:
        begin = finish - timedelta(hours=1)
    return render_template(
        template,
        run_id=run_id,
        domain=domain,
        step_key=step_key,
        start=begin - margin if begin is not None else None,
        end=finish + margin if finish is not None else None,
    )


@dataclass(frozen=True)
class LinkConfig:
    dagster_ui_url: str
    logs_url_template: str = ""
    logs_url_margin_seconds: float = DEFAULT_MARGIN_SECONDS

    @classmethod
    def from_settings(cls, settings: Any) -> LinkConfig:
        return cls(
            dagster_ui_url=str(settings.dagster_ui_url).rstrip("/"),
            logs_url_template=str(settings.logs_url_template or ""),
            logs_url_margin_seconds=float(
                getattr(settings, "logs_url_margin_seconds", DEFAULT_MARGIN_SECONDS)
            ),
        )


def run_link_values(
    run_id: str,
    start: datetime | str | None,
    end: datetime | str | None,
    config: LinkConfig,
) -> dict[str, str | None]:
    """A run's links as JSON values (the list serves these as they are: no model per item)."""
    base = f"{API_BASE_PATH}/runs/{quote(run_id, safe='')}"
    return {
        "self": base,
        "logs": f"{base}/logs",
        "dagster": f"{config.dagster_ui_url}/runs/{quote(run_id, safe='')}",
        "external": external_link(
            config.logs_url_template,
            run_id=run_id,
            start=start,
            end=end,
            margin_seconds=config.logs_url_margin_seconds,
        ),
    }


def run_links(
    run_id: str,
    start: datetime | str | None,
    end: datetime | str | None,
    config: LinkConfig,
) -> RunLinks:
    """A run's links: itself and its logs in this API, the Dagster UI, the external log viewer."""
    return RunLinks.model_validate(run_link_values(run_id, start, end, config))


def with_links(
    detail: RunDetailResponse, config: LinkConfig, excerpt: LogExcerpt | None
) -> RunDetailResponse:
    """The detail with its deployment-dependent parts: run, block and log links, and the excerpt."""
    links = run_links(detail.run_id, detail.start_time, detail.end_time, config)
    blocks = [
        block.model_copy(
            update={
                "links": BlockLinks(
                    logs=f"{links.logs}?step={quote(block.domain, safe='')}",
                    external=external_link(
                        config.logs_url_template,
                        run_id=detail.run_id,
                        domain=block.domain,
                        step_key=block.step_key,
                        # A block that never started (or never ended) is searched over the run's window.
                        start=block.start_time or detail.start_time,
                        end=block.end_time or detail.end_time,
                        margin_seconds=config.logs_url_margin_seconds,
                    ),
                )
            }
        )
        for block in detail.blocks
    ]
    logs = LogsSection(
        download_url=links.logs, dagster_url=links.dagster, external_url=links.external, excerpt=excerpt
    )
    return detail.model_copy(update={"links": links, "blocks": blocks, "logs": logs})
