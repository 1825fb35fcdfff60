"""Quality gates of a (period, domain) load: when the new rows must not replace the old ones.

The load stages its rows first; these checks run before anything is replaced. A
failed gate rolls the load's transaction back, so the (period, domain) keeps its
previous rows, and the materialized views are not refreshed (the block fails).

| gate | fails when |
|---|---|
| `empty` | no landing row at all (no file, header-only files) |
| `all_rejected` | rows were read and every one was rejected |
| `rejected_ratio` | rejected / read > `max_rejected_ratio` (FINOPS_MAX_REJECTED_RATIO, 0.01) |
| `shrink` | a loaded month would lose more than `max_shrink_ratio` of its rows |
|  | (FINOPS_MAX_SHRINK_RATIO, 0.5); `allow_shrink: true` in the plan_batch config lets it through |
| `unreadable_file` | a landing file cannot be listed, opened or read through |
| `incomplete_delivery` | a file a provider's delivery names is missing or not of the size it states |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, get_args

from finops_pipeline.landing.quality import PeriodQuality

__all__ = ["GATES", "GatePolicy", "QualityGate", "check_gates", "describe_rejects", "percent"]

# The one definition of the gate names: the admin API's schema and metrics read it from here.
QualityGate = Literal[
    "empty", "all_rejected", "rejected_ratio", "shrink", "unreadable_file", "incomplete_delivery"
]
GATES: Final[tuple[QualityGate, ...]] = get_args(QualityGate)


@dataclass(frozen=True)
class GatePolicy:
    max_rejected_ratio: float = 0.01
    max_shrink_ratio: float = 0.5
    allow_shrink: bool = False

    def __post_init__(self) -> None:
        for name in ("max_rejected_ratio", "max_shrink_ratio"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")


def percent(fraction: float) -> str:
    """A share as a percentage that never rounds a part to none or to all: 0.9986 is
    "99.86%", 0.99999 ">99.99%", 0.00001 "<0.01%"; exact 0 and 1 are "0%" and "100%"."""
    if fraction <= 0 or fraction >= 1:
        return f"{max(0.0, min(fraction, 1.0)):.0%}"
    if fraction < 0.0001:
        return "<0.01%"
    if fraction > 0.9999:
        return ">99.99%"
    return f"{fraction * 100:.2f}".rstrip("0").rstrip(".") + "%"


def describe_rejects(quality: PeriodQuality, top: int = 3) -> str:
    """The top reasons with counts, and the first offending file/line/column."""
    reasons = ", ".join(f"{reason} {count}" for reason, count in quality.rejected.most_common(top))
    first = quality.first_sample()
    where = ""
    if first is not None:
        if first.row_group is not None:
            place = f"row {first.line} (row group {first.row_group})"
        else:
            place = f"line {first.line}" if first.line is not None else "line unknown"
        column = f", column {first.column}" if first.column else ""
        where = f"; first: {first.file} {place}{column}"
    return f"top reasons: {reasons}{where}" if reasons else "no reject"


def check_gates(quality: PeriodQuality, previous_rows: int, policy: GatePolicy) -> tuple[str, str] | None:
    """(gate, message) of the first gate the staged load fails, or None when it may replace."""
    kept = f"the previous {previous_rows} row(s) are kept"
    read, loaded, rejected = quality.rows_read, quality.rows_loaded, quality.rejected_total
    if read == 0:
        return (
            "empty",
            f"no row in {quality.files} landing file(s) (header only or empty); {kept}. "
            "Check the export, then launch again.",
        )
    if loaded == 0:
        return (
            "all_rejected",
            f"every one of the {read} row(s) read was rejected ({describe_rejects(quality)}); {kept}. "
            "Fix the export, then launch again.",
        )
    ratio = rejected / read
    if ratio > policy.max_rejected_ratio:
        return (
            "rejected_ratio",
            f"{rejected} of {read} row(s) rejected ({percent(ratio)}, above FINOPS_MAX_REJECTED_RATIO "
            f"{percent(policy.max_rejected_ratio)}; {describe_rejects(quality)}); {kept}.",
        )
    if previous_rows and not policy.allow_shrink:
        drop = 1 - loaded / previous_rows
        if drop > policy.max_shrink_ratio:
            return (
                "shrink",
                f"the load would replace {previous_rows} row(s) with {loaded} ({percent(drop)} fewer, "
                f"above FINOPS_MAX_SHRINK_RATIO {percent(policy.max_shrink_ratio)}); {kept}. If the drop is "
                "expected, launch again with allow_shrink: true in the plan_batch config.",
            )
    return None
