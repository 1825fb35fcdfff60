"""One object per app that turns an Authorization header into a Caller, per FINOPS_AUTH_MODE."""

from __future__ import annotations

import logging

from finops_admin_plugin.auth.backstage import BackstageTokenVerifier
from finops_admin_plugin.auth.caller import DEV_SUBJECT, Caller, token_fingerprint
from finops_admin_plugin.auth.static_tokens import StaticTokenTable
from finops_admin_plugin.http.errors import AuthenticationError
from finops_admin_plugin.settings import AdminSettings

log = logging.getLogger(__name__)

__all__ = ["AuthConfigError", "Authenticator"]

# Backstage refuses to issue tokens longer than this; longer headers are garbage or abuse.
_MAX_TOKEN_LENGTH = 32_768


class AuthConfigError(ValueError):
    """The auth settings cannot work; the message names the variable to set."""


class Authenticator:
    def __init__(self, settings: AdminSettings) -> None:
        self.settings = settings
        self.mode = settings.auth_mode
        self.static_tokens = StaticTokenTable(settings.static_tokens)
        self.backstage: BackstageTokenVerifier | None = None
        if self.mode == "backstage":
            if not settings.backstage_url:
                raise AuthConfigError(
                    "FINOPS_AUTH_MODE=backstage needs FINOPS_BACKSTAGE_URL, the Backstage backend base URL "
                    "(e.g. http://backstage:7007); or set FINOPS_AUTH_MODE=static with FINOPS_STATIC_TOKENS"
                )
            self.backstage = BackstageTokenVerifier(settings)
        elif self.mode == "static" and not len(self.static_tokens):
            raise AuthConfigError(
                'FINOPS_AUTH_MODE=static needs FINOPS_STATIC_TOKENS, a JSON list of {"token", "subject", '
                '"role"} (tokens of 16 characters or more)'
            )

    @property
    def may_block(self) -> bool:
        """Whether `authenticate` may wait on the network (Backstage's JWKS or userinfo); dev mode
        and service tokens are answered from memory."""
        return self.backstage is not None

    def authenticate(self, authorization: str | None) -> Caller:
        """The caller behind an `Authorization` header value; raises AuthenticationError (401),
        or ServiceUnavailableError (503) when Backstage cannot be asked."""
        if self.mode == "dev":
            return Caller(subject=DEV_SUBJECT, role="admin", groups=(), via="dev")
        token = self._bearer_token(authorization)
        caller = self.static_tokens.match(token)
        if caller is not None:
            return caller
        if self.backstage is None:
            log.info("rejected unknown service token %s", token_fingerprint(token))
            raise AuthenticationError(
                "unknown service token: it is not one of FINOPS_STATIC_TOKENS",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return self.backstage.authenticate(token)

    @staticmethod
    def _bearer_token(authorization: str | None) -> str:
        if authorization is None or not authorization.strip():
            raise AuthenticationError(
                "no credentials: send 'Authorization: Bearer <token>' (from Backstage, call this API "
                "through the proxy with credentials: forward)"
            )
        scheme, _, rest = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise AuthenticationError(
                f"authorization scheme {scheme[:16]!r} is not supported: send 'Authorization: Bearer <token>'"
            )
        token = rest.strip()
        if not token:
            raise AuthenticationError("empty bearer token: send 'Authorization: Bearer <token>'")
        if len(token) > _MAX_TOKEN_LENGTH or any(ch.isspace() for ch in token):
            raise AuthenticationError("malformed bearer token")
        return token
