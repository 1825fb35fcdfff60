"""Deliveries in the batch: which delivery of each source a (period, domain) load takes, the
files of those deliveries as a landing store, and the delivery sensor's run requests.

| module | what |
|---|---|
| `resolve` | the deliveries a load takes: a scan's latest complete one per source, or those a run names |
| `store` | a (period, domain)'s delivery files as a `LandingStore`; their check (`incomplete_delivery`) |
| `requests` | the delivery sensor's tick: compare with what is loaded, one run request per domain |
"""

from finops_pipeline.deliveries.resolve import (
    DeliveryRef,
    PairDeliveries,
    delivery_from_dict,
    delivery_to_dict,
    pinned_deliveries,
    resolve_deliveries,
)
from finops_pipeline.deliveries.store import DeliveryStore, check_delivery_files

__all__ = [
    "DeliveryRef",
    "DeliveryStore",
    "PairDeliveries",
    "check_delivery_files",
    "delivery_from_dict",
    "delivery_to_dict",
    "pinned_deliveries",
    "resolve_deliveries",
]
