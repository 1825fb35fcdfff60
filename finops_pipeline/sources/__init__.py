"""Sources: where each domain's cost data is delivered (FINOPS_SOURCES), and their deliveries.

| module | what |
|---|---|
| `config` | the sources file: parsed, checked, every error naming its line |
| `model` | a delivery as each provider defines it: its id, files, completeness |
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

__all__ = [
    "SOURCE_KINDS",
    "Delivery",
    "DeliveryFile",
    "IncompleteDelivery",
    "Source",
    "SourceKind",
    "SourceScan",
    "SourcesFileError",
    "configured_sources",
    "landing_sources",
    "load_sources_file",
    "redact_location",
]
