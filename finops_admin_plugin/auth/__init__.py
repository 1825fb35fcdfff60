"""Who is calling, and what they may do.

Interface used by the routers (kept stable):
- `CallerDep`: the authenticated caller (`Caller`: subject entity ref, role).
- `ReaderDep`: a caller allowed to read run list, detail and coverage.
- `AdminDep`: a caller allowed everything (logs, reprocess).

NOTE: interim implementation - every caller is a dev admin. Replaced by the
Backstage/static/dev implementation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends

__all__ = ["AdminDep", "Caller", "CallerDep", "ReaderDep"]


@dataclass(frozen=True)
class Caller:
    subject: str
    role: Literal["admin", "user"]


def get_caller() -> Caller:
    return Caller(subject="user:default/dev", role="admin")


CallerDep = Annotated[Caller, Depends(get_caller)]
ReaderDep = CallerDep
AdminDep = CallerDep
