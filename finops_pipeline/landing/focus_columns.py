"""The FOCUS Cost and Usage columns kept in `finops.releves`, and how exports name them.

One entry per FOCUS 1.2 column (mandatory, conditional and recommended), with
its FOCUS data type, feature level and whether FOCUS allows nulls, as the
specification's column pages state them (`FOCUS_Spec` `specification/columns/*.md`,
tag v1.2). Files of FOCUS 1.0 to 1.4 are read; their columns are mapped
to the 1.2 names here, and everything else (provider-specific and `x_` columns)
is carried unparsed in the `extra` jsonb column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Literal

__all__ = [
    "CHARGE_CATEGORIES",
    "FOCUS_BY_NAME",
    "FOCUS_COLUMNS",
    "RELEVES_COLUMNS",
    "REQUIRED_COLUMNS",
    "SERVICE_CATEGORIES",
    "FocusColumn",
    "billing_currencies",
    "detect_version",
    "map_column_names",
]

Kind = Literal["string", "decimal", "datetime", "json"]
Level = Literal["mandatory", "conditional", "recommended"]


@dataclass(frozen=True)
class FocusColumn:
    name: str  # FOCUS 1.2 column ID
    kind: Kind
    level: Level
    nullable: bool  # what FOCUS allows; the table itself only requires what a row needs to be stored

    @property
    def sql(self) -> str:
        """snake_case column name in finops.releves (BilledCost -> billed_cost)."""
        return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", self.name).lower()


def _c(name: str, kind: Kind, level: Level, nullable: bool) -> FocusColumn:
    return FocusColumn(name, kind, level, nullable)


# FOCUS 1.2, alphabetical as in the specification.
FOCUS_COLUMNS: Final[tuple[FocusColumn, ...]] = (
    _c("AvailabilityZone", "string", "recommended", True),
    _c("BilledCost", "decimal", "mandatory", False),
    _c("BillingAccountId", "string", "mandatory", False),
    _c("BillingAccountName", "string", "mandatory", True),
    _c("BillingAccountType", "string", "conditional", False),
    _c("BillingCurrency", "string", "mandatory", False),
    _c("BillingPeriodEnd", "datetime", "mandatory", False),
    _c("BillingPeriodStart", "datetime", "mandatory", False),
    _c("CapacityReservationId", "string", "conditional", True),
    _c("CapacityReservationStatus", "string", "conditional", True),
    _c("ChargeCategory", "string", "mandatory", False),
    _c("ChargeClass", "string", "mandatory", True),
    _c("ChargeDescription", "string", "mandatory", True),
    _c("ChargeFrequency", "string", "recommended", False),
    _c("ChargePeriodEnd", "datetime", "mandatory", False),
    _c("ChargePeriodStart", "datetime", "mandatory", False),
    _c("CommitmentDiscountCategory", "string", "conditional", True),
    _c("CommitmentDiscountId", "string", "conditional", True),
    _c("CommitmentDiscountName", "string", "conditional", True),
    _c("CommitmentDiscountQuantity", "decimal", "conditional", True),
    _c("CommitmentDiscountStatus", "string", "conditional", True),
    _c("CommitmentDiscountType", "string", "conditional", True),
    _c("CommitmentDiscountUnit", "string", "conditional", True),
    _c("ConsumedQuantity", "decimal", "conditional", True),
    _c("ConsumedUnit", "string", "conditional", True),
    _c("ContractedCost", "decimal", "mandatory", False),
    _c("ContractedUnitPrice", "decimal", "conditional", True),
    _c("EffectiveCost", "decimal", "mandatory", False),
    _c("InvoiceId", "string", "recommended", True),
    _c("InvoiceIssuerName", "string", "mandatory", False),
    _c("ListCost", "decimal", "mandatory", False),
    _c("ListUnitPrice", "decimal", "conditional", True),
    _c("PricingCategory", "string", "conditional", True),
    _c("PricingCurrency", "string", "conditional", True),
    _c("PricingCurrencyContractedUnitPrice", "decimal", "conditional", True),
    _c("PricingCurrencyEffectiveCost", "decimal", "conditional", True),
    _c("PricingCurrencyListUnitPrice", "decimal", "conditional", True),
    _c("PricingQuantity", "decimal", "mandatory", True),
    _c("PricingUnit", "string", "mandatory", True),
    _c("ProviderName", "string", "mandatory", False),
    _c("PublisherName", "string", "mandatory", False),
    _c("RegionId", "string", "conditional", True),
    _c("RegionName", "string", "conditional", True),
    _c("ResourceId", "string", "conditional", True),
    _c("ResourceName", "string", "conditional", True),
    _c("ResourceType", "string", "conditional", True),
    _c("ServiceCategory", "string", "mandatory", False),
    _c("ServiceName", "string", "mandatory", False),
    _c("ServiceSubcategory", "string", "recommended", False),
    _c("SkuId", "string", "conditional", True),
    _c("SkuMeter", "string", "conditional", True),
    _c("SkuPriceDetails", "json", "conditional", True),
    _c("SkuPriceId", "string", "conditional", True),
    _c("SubAccountId", "string", "conditional", True),
    _c("SubAccountName", "string", "conditional", True),
    _c("SubAccountType", "string", "conditional", True),
    _c("Tags", "json", "conditional", True),
)
FOCUS_BY_NAME: Final = {c.name: c for c in FOCUS_COLUMNS}

# Without these a row cannot be stored truthfully: it is rejected. Every other FOCUS rule
# a row breaks is a conformance warning and the row loads.
REQUIRED_COLUMNS: Final = (
    "BilledCost",
    "BillingCurrency",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargePeriodStart",
    "ChargePeriodEnd",
)

# Columns of finops.releves, in table order: the load's own columns around the FOCUS ones.
RELEVES_COLUMNS: Final[tuple[str, ...]] = (
    "period",
    "domain",
    *(c.sql for c in FOCUS_COLUMNS),
    "application",
    "extra",
    "focus_version",
    "source_file",
    "source_line",
    "dagster_run_id",
)

CHARGE_CATEGORIES: Final = frozenset({"Usage", "Purchase", "Tax", "Credit", "Adjustment"})
SERVICE_CATEGORIES: Final = frozenset(
    {
        "AI and Machine Learning", "Analytics", "Business Applications", "Compute", "Databases",
        "Developer Tools", "Multicloud", "Identity", "Integration", "Internet of Things",
        "Management and Governance", "Media", "Migration", "Mobile", "Networking", "Security",
        "Storage", "Web", "Other",
    }
)  # fmt: skip

# Columns a version introduced (by the specification's "Introduced (version)"), used to tell
# which FOCUS version wrote a file: the newest version whose columns appear.
_INTRODUCED: Final[tuple[tuple[str, frozenset[str]], ...]] = (
    # Cost and Usage columns of FOCUS 1.4 (`TagDetails`, `CommitmentProgramEligibilityDetails`:
    # "Introduced (version) 1.4"); kept in `extra`, as no 1.2 column holds them.
    ("1.4", frozenset({"TagDetails", "CommitmentProgramEligibilityDetails"})),
    (
        "1.3",
        frozenset(
            {
                "ServiceProviderName", "HostProviderName", "ContractApplied", "AllocatedMethodId",
                "AllocatedMethodDetails", "AllocatedResourceId", "AllocatedResourceName", "AllocatedTags",
            }
        ),
    ),
    (
        "1.2",
        frozenset(
            {
                "BillingAccountType", "SubAccountType", "InvoiceId", "PricingCurrency",
                "PricingCurrencyContractedUnitPrice", "PricingCurrencyEffectiveCost",
                "PricingCurrencyListUnitPrice",
            }
        ),
    ),
    (
        "1.1",
        frozenset(
            {
                "CapacityReservationId", "CapacityReservationStatus", "CommitmentDiscountQuantity",
                "CommitmentDiscountUnit", "ServiceSubcategory", "SkuMeter", "SkuPriceDetails",
            }
        ),
    ),
)  # fmt: skip
# FOCUS 1.3 renamed ProviderName to ServiceProviderName: a 1.3 file's value lands in the 1.2
# column. (Its other new columns have no 1.2 counterpart and are kept in `extra`.)
_RENAMED_TO_12: Final = {"ServiceProviderName": "ProviderName"}


def detect_version(names: list[str]) -> str:
    """The FOCUS version a file's header says it was written in: "1.0" to "1.4"."""
    present = set(names)
    for version, introduced in _INTRODUCED:
        if present & introduced:
            return version
    return "1.0"


def map_column_names(names: list[str]) -> list[str | None]:
    """The FOCUS 1.2 name each file column maps to, or None for a column kept in `extra`.

    A renamed column counts only when the file lacks the 1.2 name itself.
    """
    present = set(names)
    mapped: list[str | None] = []
    for name in names:
        target = _RENAMED_TO_12.get(name, name)
        if target != name and target in present:
            target = name
        mapped.append(target if target in FOCUS_BY_NAME else None)
    return mapped


# XXX means "no currency" and XTS is for tests: neither can bill anything.
_NOT_BILLING_CURRENCIES: Final = frozenset({"XXX", "XTS"})


@lru_cache(maxsize=1)
def billing_currencies() -> frozenset[str]:
    """Every ISO 4217 alphabetic code, from pycountry's maintained ISO 4217 table."""
    import pycountry

    return frozenset(c.alpha_3 for c in pycountry.currencies) - _NOT_BILLING_CURRENCIES
