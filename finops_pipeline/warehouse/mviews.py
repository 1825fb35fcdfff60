"""The materialized views behind the FinOps dashboards, and their refresh.

Every view has a unique index, so `REFRESH MATERIALIZED VIEW CONCURRENTLY`
works and dashboard readers are never blocked while it runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

import psycopg

__all__ = ["MV_DEFINITIONS", "MvRefresh", "create_all_sql", "refresh_view"]


@dataclass(frozen=True)
class MvDefinition:
    name: str
    description: str
    query: str
    unique_columns: tuple[str, ...]


MV_DEFINITIONS: Final[dict[str, MvDefinition]] = {
    mv.name: mv
    for mv in (
        MvDefinition(
            "mv_dashboard_monthly",
            "Dashboard: total cost per month and currency",
            """
            SELECT period, billing_currency,
                   sum(billed_cost) AS billed_cost, sum(effective_cost) AS effective_cost,
                   count(*) AS releves, count(DISTINCT application) AS applications
            FROM finops.releves GROUP BY period, billing_currency
            """,
            ("period", "billing_currency"),
        ),
        MvDefinition(
            "mv_domain_monthly",
            "Vue Domaine: cost per domain, month and currency",
            """
            SELECT period, domain, billing_currency,
                   sum(billed_cost) AS billed_cost, sum(effective_cost) AS effective_cost,
                   count(*) AS releves
            FROM finops.releves GROUP BY period, domain, billing_currency
            """,
            ("period", "domain", "billing_currency"),
        ),
        MvDefinition(
            "mv_family_monthly",
            "Vue Famille: cost per application family, month and currency",
            """
            SELECT r.period, coalesce(a.family, 'Unassigned') AS family, r.billing_currency,
                   sum(r.billed_cost) AS billed_cost, sum(r.effective_cost) AS effective_cost,
                   count(*) AS releves, count(DISTINCT r.application) AS applications
            FROM finops.releves r LEFT JOIN finops.applications a USING (application)
            GROUP BY r.period, coalesce(a.family, 'Unassigned'), r.billing_currency
            """,
            ("period", "family", "billing_currency"),
        ),
        MvDefinition(
            "mv_application_monthly",
            "Vue Application: cost per application, domain, month and currency",
            """
            SELECT r.period, r.domain, r.application, coalesce(a.family, 'Unassigned') AS family,
                   r.billing_currency,
                   sum(r.billed_cost) AS billed_cost, sum(r.effective_cost) AS effective_cost,
                   count(*) AS releves
            FROM finops.releves r LEFT JOIN finops.applications a USING (application)
            GROUP BY r.period, r.domain, r.application, coalesce(a.family, 'Unassigned'),
                     r.billing_currency
            """,
            ("period", "domain", "application", "billing_currency"),
        ),
        MvDefinition(
            "mv_application_rankings",
            "Classements: applications ranked by billed cost per month and currency",
            """
            SELECT period, billing_currency, application, billed_cost,
                   rank() OVER (PARTITION BY period, billing_currency
                                ORDER BY billed_cost DESC, application) AS cost_rank
            FROM (SELECT period, billing_currency, application, sum(billed_cost) AS billed_cost
                  FROM finops.releves GROUP BY period, billing_currency, application) t
            """,
            ("period", "billing_currency", "application"),
        ),
        MvDefinition(
            "mv_domain_history",
            "Historique: month-over-month cost per domain and currency",
            """
            SELECT period, domain, billing_currency, billed_cost,
                   lag(billed_cost) OVER w AS previous_billed_cost,
                   billed_cost - lag(billed_cost) OVER w AS delta,
                   CASE WHEN lag(billed_cost) OVER w = 0 THEN NULL
                        ELSE round(100 * (billed_cost - lag(billed_cost) OVER w)
                                   / lag(billed_cost) OVER w, 2) END AS delta_percent
            FROM (SELECT period, domain, billing_currency, sum(billed_cost) AS billed_cost
                  FROM finops.releves GROUP BY period, domain, billing_currency) t
            WINDOW w AS (PARTITION BY domain, billing_currency ORDER BY period)
            """,
            ("period", "domain", "billing_currency"),
        ),
    )
}


def create_all_sql() -> str:
    parts = []
    for mv in MV_DEFINITIONS.values():
        cols = ", ".join(mv.unique_columns)
        parts.append(
            f"CREATE MATERIALIZED VIEW finops.{mv.name} AS {mv.query} WITH DATA;\n"
            f"CREATE UNIQUE INDEX {mv.name}_key ON finops.{mv.name} ({cols});\n"
            f"COMMENT ON MATERIALIZED VIEW finops.{mv.name} IS '{mv.description}';"
        )
    return "\n".join(parts)


@dataclass(frozen=True)
class MvRefresh:
    name: str
    row_count: int
    refresh_seconds: float


def refresh_view(database_url: str, name: str, *, application_name: str = "finops") -> MvRefresh:
    """Refresh one view concurrently (readers keep the old contents meanwhile)."""
    if name not in MV_DEFINITIONS:
        raise ValueError(f"unknown materialized view {name!r}; known: {', '.join(MV_DEFINITIONS)}")
    started = time.perf_counter()
    with psycopg.connect(database_url, autocommit=True, application_name=application_name) as conn:
        conn.execute(f"REFRESH MATERIALIZED VIEW CONCURRENTLY finops.{name}")  # type: ignore[arg-type]
        elapsed = time.perf_counter() - started
        row = conn.execute(f"SELECT count(*) FROM finops.{name}").fetchone()  # type: ignore[arg-type]
    return MvRefresh(name=name, row_count=int(row[0]) if row else 0, refresh_seconds=elapsed)
