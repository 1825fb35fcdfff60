"""Sources: where each domain's cost data is delivered (FINOPS_SOURCES), and their deliveries.

| module | what |
|---|---|
| `config` | the sources file: parsed, checked, every error naming its line |
| `model` | a delivery as each provider defines it: its id, files, completeness |
| `scan` | `scan_source`: a source's latest complete delivery of every period; its files read back |
| `storage` | one storage library (obstore) for local folders, S3, Azure Blob and GCS |
| `landing`, `aws`, `azure`, `oci`, `gcp` | each kind's layout and completeness rule |
| `exports` | writers of each provider's layout (the tests and `finops dev`'s demo) |
| `state` | schema `finops_sources`: what scans saw and which delivery each load took |
"""

from finops_pipeline.sources.config import (
    SOURCE_KINDS,
    Source,
    SourceKind,
    SourcesFileError,
    configured_sources,
    landing_sources,
    load_sources_file,
    redact_location,
)
from finops_pipeline.sources.model import Delivery, DeliveryFile, IncompleteDelivery, SourceScan
from finops_pipeline.sources.scan import (
    SourceUnreachable,
    open_delivery_file,
    scan_source,
    stat_delivery_file,
)

__all__ = [
    "SOURCE_KINDS",
    "Delivery",
    "DeliveryFile",
    "IncompleteDelivery",
    "Source",
    "SourceKind",
    "SourceScan",
    "SourceUnreachable",
    "SourcesFileError",
    "configured_sources",
    "landing_sources",
    "load_sources_file",
    "open_delivery_file",
    "redact_location",
    "scan_source",
    "stat_delivery_file",
]
