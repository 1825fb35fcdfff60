"""Links of a run to the admin API, the Dagster UI and an external log viewer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from finops_admin_plugin.logs.links import DEFAULT_MARGIN_SECONDS, external_link
from finops_admin_plugin.settings import API_BASE_PATH

__all__ = ["LinkConfig", "external_logs_url", "fill_links"]


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


def external_logs_url(
    template: str,
    *,
    run_id: str,
    domain: str = "",
    step_key: str = "",
    start: Any = None,
    end: Any = None,
    margin_seconds: float = DEFAULT_MARGIN_SECONDS,
) -> str | None:
    """Fill a Kibana/Loki link template (see finops_admin_plugin.logs.links); a broken template
    gives no link (logged once), never an error."""
    return external_link(
        template,
        run_id=run_id,
        domain=domain,
        step_key=step_key,
        start=start,
        end=end,
        margin_seconds=margin_seconds,
    )


def fill_links(run: dict[str, Any], config: LinkConfig) -> dict[str, Any]:
    """Add `links` (and, for a detail, block links and `logs`) to a run's JSON, in place."""
    run_id = run["runId"]
    base = f"{API_BASE_PATH}/runs/{quote(run_id, safe='')}"
    dagster_url = f"{config.dagster_ui_url}/runs/{quote(run_id, safe='')}"
    external = external_logs_url(
        config.logs_url_template,
        run_id=run_id,
        start=run.get("startTime"),
        end=run.get("endTime"),
        margin_seconds=config.logs_url_margin_seconds,
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
                    # A block that never started (or never ended) is searched over the run's window.
                    start=block.get("startTime") or run.get("startTime"),
                    end=block.get("endTime") or run.get("endTime"),
                    margin_seconds=config.logs_url_margin_seconds,
                ),
            }
        run["logs"] = {
            "downloadUrl": f"{base}/logs",
            "dagsterUrl": dagster_url,
            "externalUrl": external,
            "excerpt": (run.get("logs") or {}).get("excerpt"),
        }
    return run
