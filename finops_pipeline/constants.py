"""Names shared by the batch and the admin plugin: domains, tags, MVs, FOCUS columns."""

from typing import Final

DOMAINS: Final = ("open", "private", "public", "native")
DOMAIN_LABELS: Final = {"open": "Open", "private": "Private", "public": "Public", "native": "Native"}

JOB_NAME: Final = "finops_batch"
SCHEDULE_NAME: Final = "finops_daily_schedule"
REPROCESS_SENSOR_NAME: Final = "finops_reprocess_sensor"
PLAN_STEP: Final = "plan_batch"
REFRESH_STEP: Final = "refresh_materialized_views"


def load_step_key(domain: str) -> str:
    return f"load_{domain}"


# Dagster run tags: the pipeline -> plugin contract.
TAG_TRIGGER: Final = "finops/trigger"
TAG_PERIODS: Final = "finops/periods"
TAG_DOMAINS: Final = "finops/domains"
TAG_VERSION: Final = "finops/version"
TAG_REQUESTED_BY: Final = "finops/requested_by"
TAG_REPROCESS_REQUEST_ID: Final = "finops/reprocess_request_id"
TAG_REASON: Final = "finops/reason"

TRIGGER_CRON: Final = "CRON"
TRIGGER_MANUAL: Final = "MANUAL"

# Warehouse objects.
SCHEMA: Final = "finops"
RELEVES_TABLE: Final = "finops.releves"
APPLICATIONS_TABLE: Final = "finops.applications"
ASSET_KEY_PREFIX: Final = "finops"

# Materialized views, in the order the dashboards list them.
MATERIALIZED_VIEWS: Final = (
    "mv_dashboard_monthly",
    "mv_domain_monthly",
    "mv_family_monthly",
    "mv_application_monthly",
    "mv_application_rankings",
    "mv_domain_history",
)

# Tag keys (inside FOCUS `Tags`) naming the application a cost record belongs to, in order
# of preference, compared case-insensitively (FINOPS_APPLICATION_TAG_KEYS overrides them):
# the usual spellings, AWS's `user:` prefix for user-defined cost allocation tags, then
# `Project`, which Azure and GCP exports often carry instead.
DEFAULT_APPLICATION_TAG_KEYS: Final = (
    "application",
    "app",
    "user:application",
    "user:app",
    "project",
    "user:project",
)
UNASSIGNED_APPLICATION: Final = "unassigned"
UNASSIGNED_FAMILY: Final = "Unassigned"

# Landing files, matched case-insensitively; everything else in a period folder (hidden
# files, `_SUCCESS`, manifests, checksums) is skipped.
LANDING_FILE_SUFFIXES: Final = (".csv", ".csv.gz", ".parquet")
