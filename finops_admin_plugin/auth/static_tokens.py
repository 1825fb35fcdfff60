"""Configured service tokens (FINOPS_STATIC_TOKENS), compared in constant time."""

from __future__ import annotations

import hashlib
import hmac

from finops_admin_plugin.auth.caller import Caller
from finops_admin_plugin.settings import StaticToken

__all__ = ["StaticTokenTable"]


def _digest(token: str) -> bytes:
    # Comparing fixed-length digests keeps even the token length out of the timing.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class StaticTokenTable:
    def __init__(self, tokens: list[StaticToken]) -> None:
        self._entries = [(_digest(t.token), t.subject, t.role) for t in tokens]

    def __len__(self) -> int:
        return len(self._entries)

    def match(self, token: str) -> Caller | None:
        """The caller a service token stands for, or None.

        Every entry is compared, whatever matched first, so the time taken does
        not tell which entry (or how many) exist.
        """
        presented = _digest(token)
        found: Caller | None = None
        for digest, subject, role in self._entries:
            if hmac.compare_digest(presented, digest) and found is None:
                found = Caller(subject=subject, role=role, groups=(), via="static")
        return found
