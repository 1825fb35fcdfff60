"""Warehouse object names and the FOCUS columns, currencies and file types the loader reads.

Names the admin plugin relies on (domains, tags, step keys, metadata keys, MVs) are in
`finops_pipeline.contract`.
"""

from typing import Final

# Warehouse objects.
SCHEMA: Final = "finops"
RELEVES_TABLE: Final = "finops.releves"

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

# Landing files, matched case-insensitively; everything else in a period folder (hidden
# files, `_SUCCESS`, manifests, checksums) is skipped.
LANDING_FILE_SUFFIXES: Final = (".csv", ".csv.gz", ".parquet")
