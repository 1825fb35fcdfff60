"""Warehouse object names and the FOCUS columns, currencies and file types the loader reads.

Names the admin plugin relies on (domains, tags, step keys, metadata keys, MVs) are in
`finops_pipeline.contract`.
"""

from typing import Final

# Warehouse objects.
SCHEMA: Final = "finops"
RELEVES_TABLE: Final = "finops.releves"
APPLICATIONS_TABLE: Final = "finops.applications"

# FOCUS 1.2 columns read from landing files. Mandatory ones must exist and be non-empty.
FOCUS_MANDATORY_COLUMNS: Final = (
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ChargeCategory",
    "BilledCost",
    "EffectiveCost",
    "BillingCurrency",
    "ServiceName",
    "ServiceCategory",
    "SubAccountId",
)
FOCUS_OPTIONAL_COLUMNS: Final = (
    "BillingAccountId",
    "ProviderName",
    "RegionId",
    "ResourceId",
    "ResourceName",
    "SubAccountName",
    "ConsumedQuantity",
    "ConsumedUnit",
    "Tags",
)
FOCUS_COLUMNS: Final = FOCUS_MANDATORY_COLUMNS + FOCUS_OPTIONAL_COLUMNS

# Tag key (inside FOCUS `Tags`) naming the application a cost record belongs to.
APPLICATION_TAG: Final = "application"
UNASSIGNED_APPLICATION: Final = "unassigned"
UNASSIGNED_FAMILY: Final = "Unassigned"

# ISO 4217 codes accepted in BillingCurrency.
CURRENCIES: Final = frozenset(
    {
        "EUR", "USD", "GBP", "CHF", "JPY", "CAD", "AUD", "NZD", "SEK", "NOK", "DKK", "PLN",
        "CZK", "HUF", "RON", "BGN", "CNY", "HKD", "SGD", "INR", "BRL", "MXN", "ZAR", "KRW",
        "TRY", "ILS", "AED", "SAR", "MAD", "TND", "XOF", "XAF",
    }
)  # fmt: skip

LANDING_FILE_SUFFIXES: Final = (".csv", ".csv.gz", ".parquet")
