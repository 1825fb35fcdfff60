"""The authenticated caller, and how its role was established."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["DEV_SUBJECT", "AuthVia", "Caller", "Role", "token_fingerprint"]

Role = Literal["admin", "user"]
AuthVia = Literal["backstage", "static", "dev"]

DEV_SUBJECT = "user:default/dev"


@dataclass(frozen=True)
class Caller:
    """Who called: `subject` is a Backstage entity ref (or a service token's subject).

    `role` is None for an authenticated caller in none of the configured groups:
    it is known who they are, and that they may do nothing.
    """

    subject: str
    role: Role | None
    groups: tuple[str, ...] = field(default=())
    via: AuthVia = "backstage"


def token_fingerprint(token: str) -> str:
    """A short, non-reversible name for a token, the only form of it that may reach a log."""
    return "sha256:" + hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:12]
