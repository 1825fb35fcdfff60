"""Money of the views: a load's per-currency metadata as `Money`, added per currency, never across.

The shape of the metadata is the pipeline's (`finops_pipeline.contract.read_money`); the
arithmetic is its exact one (`finops_pipeline.money`). Amounts keep the digits their sum produced.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from finops_admin_plugin.models import CurrencyAmount, Money
from finops_pipeline.contract import read_money
from finops_pipeline.money import ByCurrency, add_by_currency, decimal_text, largest_first

__all__ = ["add_money", "amounts_of", "metadata_money", "money_of"]


def money_of(amounts: ByCurrency) -> Money:
    """Per-currency amounts as the API shows them: largest first, ties by currency code."""
    return [CurrencyAmount(currency=c, amount=decimal_text(a)) for c, a in largest_first(amounts)]


def amounts_of(money: Money) -> ByCurrency:
    """The exact per-currency amounts of a `Money` (one entry per currency)."""
    return add_by_currency(*({item.currency: Decimal(item.amount)} for item in money))


def add_money(*figures: Money) -> Money:
    """The per-currency sum of several figures, exact."""
    return money_of(add_by_currency(*(amounts_of(f) for f in figures)))


def metadata_money(value: Any) -> Money:
    """A load's money metadata as `Money`; [] for another shape: an older run's one figure over
    every currency cannot be split truthfully, so it is not shown rather than guessed."""
    amounts = read_money(value)
    return [] if amounts is None else money_of(amounts)
