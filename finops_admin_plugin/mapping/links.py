"""Links of a run to the admin API, the Dagster UI and an external log viewer."""

from __future__ import annotations

import logging
import string
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from finops_admin_plugin.settings import API_BASE_PATH

__all__ = ["LinkConfig", "external_logs_url", "fill_links"]

log = logging.getLogger(__name__)
_TEMPLATE_FIELDS = ("runId", "domain", "stepKey", "start", "end")
_warned_templates: set[str] = set()


@dataclass(frozen=True)
class LinkConfig:
    dagster_ui_url: str
    logs_url_template: str = ""

    @classmethod
    def from_settings(cls, settings: Any) -> LinkConfig:
        return cls(
            dagster_ui_url=str(settings.dagster_ui_url).rstrip("/"),
            logs_url_template=str(settings.logs_url_template or ""),
        )


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value or "")


def external_logs_url(
    template: str,
    *,
    run_id: str,
    domain: str = "",
    step_key: str = "",
    start: Any = None,
    end: Any = None,
) -> str | None:
    """Fill a Kibana/Loki link template; a broken template gives no link (logged once), never an error."""
    if not template:
        return None
    values = {
        "runId": quote(run_id, safe=""),
        "domain": quote(domain, safe=""),
        "stepKey": quote(step_key, safe=""),
        "start": quote(_iso(start), safe=""),
        "end": quote(_iso(end), safe=""),
    }
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name}
        unknown = fields - set(_TEMPLATE_FIELDS)
        if unknown:
            raise KeyError(", ".join(sorted(unknown)))
        return template.format_map(values)
    except (KeyError, ValueError, IndexError) as exc:
        if template not in _warned_templates:
            _warned_templates.add(template)
            log.warning(
                "FINOPS_LOGS_URL_TEMPLATE %r is not usable (%s); use only {%s}",
                template,
                exc,
                "} {".join(_TEMPLATE_FIELDS),
            )
        return None


def fill_links(run: dict[str, Any], config: LinkConfig) -> dict[str, Any]:
    """Add `links` (and, for a detail, block links and `logs`) to a run's JSON, in place."""
    run_id = run["runId"]
    base = f"{API_BASE_PATH}/runs/{quote(run_id, safe='')}"
    dagster_url = f"{config.dagster_ui_url}/runs/{quote(run_id, safe='')}"
    external = external_logs_url(
        config.logs_url_template, run_id=run_id, start=run.get("startTime"), end=run.get("endTime")
    )
    run["links"] = {"self": base, "logs": f"{base}/logs", "dagster": dagster_url, "external": external}
    blocks = run.get("blocks")
    if blocks is not None:
        for block in blocks:
            block["links"] = {
                "logs": f"{base}/logs?step={quote(block['domain'], safe='')}",
                "external": external_logs_url(
                    config.logs_url_template,
                    run_id=run_id,
                    domain=block["domain"],
                    step_key=block["stepKey"],
                    start=block.get("startTime"),
                    end=block.get("endTime"),
                ),
            }
        run["logs"] = {
            "downloadUrl": f"{base}/logs",
            "dagsterUrl": dagster_url,
            "externalUrl": external,
            "excerpt": (run.get("logs") or {}).get("excerpt"),
        }
    return run
