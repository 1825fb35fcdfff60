"""What every resource's models share: the camelCase base, the page info, the contract's words.

The contract's rules are defined once here or in the pipeline that owns them, and published in
the OpenAPI document (enums, patterns), so a client generated from the document need not restate
them. Published as schema only where the API already checks the value itself with a worded
error (`check_request`, the `/runs` filters), or where the value comes from Dagster: a
response never fails validation on an upstream value (one field degrades, never a page).
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

from finops_pipeline.contract import AMOUNT_PATTERN, CURRENCY_PATTERN, DOMAINS
from finops_pipeline.warehouse.gates import GATES, QualityGate

__all__ = [
    "PERIOD_PATTERN",
    "ApiModel",
    "BlockStatus",
    "CurrencyAmount",
    "DomainName",
    "GateName",
    "Money",
    "PageInfo",
    "Period",
    "QualityGate",
    "RunStatus",
    "Trigger",
]

RunStatus = Literal["QUEUED", "RUNNING", "SUCCESS", "FAILED", "CANCELED", "UNKNOWN"]
BlockStatus = Literal["NOT_SELECTED", "PENDING", "RUNNING", "SUCCESS", "FAILED", "SKIPPED"]
Trigger = Literal["CRON", "DELIVERY", "MANUAL"]

# A month, YYYY-MM (`finops_pipeline.periods.parse_period` also refuses years before 2000).
PERIOD_PATTERN: Final = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
Period = Annotated[str, WithJsonSchema({"type": "string", "pattern": PERIOD_PATTERN})]
DomainName = Annotated[str, WithJsonSchema({"type": "string", "enum": list(DOMAINS)})]
# A gate name as a load's metadata carries it (`QualityGate` where the model checks it).
GateName = Annotated[str, WithJsonSchema({"type": "string", "enum": list(GATES)})]


class ApiModel(BaseModel):
    # Fields with a default are still always sent: the response schemas mark them required, so a
    # client generated from the document does not type them optional.
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, json_schema_serialization_defaults_required=True
    )


class CurrencyAmount(ApiModel):
    """An amount of one currency: exact decimal text, never a JSON number (no float keeps every digit)."""

    currency: str = Field(
        pattern=CURRENCY_PATTERN, description="the BillingCurrency of the rows, as they carry it (ISO 4217)"
    )
    amount: str = Field(
        pattern=AMOUNT_PATTERN,
        description="exact decimal with the digits the sum of the rows produced (no rounding, no exponent)",
    )


# A figure over rows: one item per currency, largest first (ties by code), never added across
# currencies; empty when it covers no row.
Money = list[CurrencyAmount]


class PageInfo(ApiModel):
    next_cursor: str | None = None
