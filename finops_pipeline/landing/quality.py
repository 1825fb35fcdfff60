"""What one (period, domain) load saw: rejects with samples, conformance warnings, attribution.

`PeriodQuality.as_metadata()` is the `quality` item of a block's period in the
load op's output metadata (the admin API shows it in camelCase): period,
focus_versions, files, rows_read, rows_loaded, rejected [{reason, count,
samples [{file, line, column, value}]}], warnings [{rule, count}],
unassigned_cost ({currency: amount}, `contract.money_metadata`), unassigned_rows, gate,
deliveries [{source, delivery_id, files, bytes}] (one per source whose delivery the load took;
empty for the landing layout of FINOPS_LANDING_URI).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

from finops_pipeline.contract import money_metadata
from finops_pipeline.money import ByCurrency

__all__ = ["MAX_SAMPLES", "PeriodQuality", "RejectSample"]

MAX_SAMPLES: Final = 3  # per reason
_MAX_VALUE_CHARS: Final = 200


@dataclass(frozen=True)
class RejectSample:
    file: str  # relative to the landing root
    line: int | None  # CSV: record number + 1 (the header is line 1); Parquet: row number in the file
    column: str | None
    value: str | None
    row_group: int | None = None  # Parquet only

    def as_dict(self) -> dict[str, Any]:
        value = self.value
        if value is not None and len(value) > _MAX_VALUE_CHARS:
            value = value[:_MAX_VALUE_CHARS] + "…"
        return {"file": self.file, "line": self.line, "column": self.column, "value": value}


@dataclass
class PeriodQuality:
    period: str
    focus_versions: set[str] = field(default_factory=set)
    files: int = 0
    rows_read: int = 0
    rows_loaded: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    samples: dict[str, list[RejectSample]] = field(default_factory=dict)
    warnings: Counter[str] = field(default_factory=Counter)
    unassigned_cost: ByCurrency = field(default_factory=dict)  # per BillingCurrency
    unassigned_rows: int = 0
    gate: str | None = None
    deliveries: list[dict[str, Any]] = field(default_factory=list)

    def reject(self, reason: str, count: int, samples: list[RejectSample]) -> None:
        self.rejected[reason] += count
        kept = self.samples.setdefault(reason, [])
        kept.extend(samples[: MAX_SAMPLES - len(kept)])

    @property
    def rejected_total(self) -> int:
        return int(self.rejected.total())

    def first_sample(self) -> RejectSample | None:
        """The first offending row of the most frequent reason, for failure messages."""
        for reason, _ in self.rejected.most_common():
            if self.samples.get(reason):
                return self.samples[reason][0]
        return None

    def as_metadata(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "focus_versions": sorted(self.focus_versions),
            "files": self.files,
            "rows_read": self.rows_read,
            "rows_loaded": self.rows_loaded,
            "rejected": [
                {
                    "reason": reason,
                    "count": count,
                    "samples": [s.as_dict() for s in self.samples.get(reason, [])],
                }
                for reason, count in sorted(self.rejected.items(), key=lambda kv: (-kv[1], kv[0]))
            ],
            "warnings": [
                {"rule": rule, "count": count}
                for rule, count in sorted(self.warnings.items(), key=lambda kv: (-kv[1], kv[0]))
            ],
            # Exact decimals, as strings, per currency: money is never a float, nor summed across
            # currencies.
            "unassigned_cost": money_metadata(self.unassigned_cost),
            "unassigned_rows": self.unassigned_rows,
            "gate": self.gate,
            "deliveries": [dict(d) for d in self.deliveries],
        }
