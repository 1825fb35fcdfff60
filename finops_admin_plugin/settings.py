"""All settings of the admin API, from the environment (one class, built lazily)."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

API_BASE_PATH = "/finops/admin"
ASYMMETRIC_JWT_ALGORITHMS = (
    "ES256",
    "ES384",
    "ES512",
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "EdDSA",
)


class StaticToken(BaseModel):
    token: str = Field(min_length=16)
    subject: str = Field(min_length=1)
    role: Literal["admin", "user"]


def _split_refs(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class AdminSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    database_url: str = Field(
        default="", alias="FINOPS_DATABASE_URL", description="PostgreSQL of the plugin's tables"
    )
    dagster_home: str = Field(
        default="", alias="DAGSTER_HOME", description="folder with the Dagster instance's dagster.yaml"
    )
    dagster_ui_url: str = Field(
        default="http://127.0.0.1:3000", alias="FINOPS_DAGSTER_UI_URL", description="Dagster UI base URL"
    )
    logs_url_template: str = Field(
        default="",
        alias="FINOPS_LOGS_URL_TEMPLATE",
        description="Kibana/Loki/Grafana link template with {runId} {domain} {stepKey} {start} {end}",
    )
    logs_url_margin_seconds: float = Field(
        default=300.0,
        alias="FINOPS_LOGS_URL_MARGIN_SECONDS",
        ge=0,
        le=86_400,
        description="the external log link's time window starts this long before the run and ends this "
        "long after it (clock skew, log shipping delay)",
    )
    auth_mode: Literal["backstage", "static", "dev"] = Field(default="backstage", alias="FINOPS_AUTH_MODE")
    backstage_url: str = Field(default="", alias="FINOPS_BACKSTAGE_URL")
    admin_groups: Annotated[list[str], NoDecode] = Field(
        default=["group:default/finops-admin"], alias="FINOPS_ADMIN_GROUPS"
    )
    user_groups: Annotated[list[str], NoDecode] = Field(
        default=["group:default/finops-user"], alias="FINOPS_USER_GROUPS"
    )
    user_access: Literal["none", "read"] = Field(default="none", alias="FINOPS_USER_ACCESS")
    static_tokens: Annotated[list[StaticToken], NoDecode] = Field(
        default_factory=list, alias="FINOPS_STATIC_TOKENS"
    )
    jwt_algorithms: Annotated[list[str], NoDecode] = Field(
        default=["ES256"],
        alias="FINOPS_JWT_ALGORITHMS",
        description="signature algorithms accepted on Backstage tokens; never taken from the token itself",
    )
    jwt_leeway_seconds: float = Field(
        default=30.0, alias="FINOPS_JWT_LEEWAY_SECONDS", ge=0, le=300, description="clock skew allowed"
    )
    jwks_min_refetch_seconds: float = Field(
        default=60.0,
        alias="FINOPS_JWKS_MIN_REFETCH_SECONDS",
        ge=0,
        description="an unknown key id refetches the JWKS at most this often",
    )
    jwks_max_age_seconds: float = Field(
        default=3600.0,
        alias="FINOPS_JWKS_MAX_AGE_SECONDS",
        gt=0,
        description="cached Backstage keys are refetched after this age",
    )
    identity_timeout_seconds: float = Field(
        default=5.0,
        alias="FINOPS_IDENTITY_TIMEOUT_SECONDS",
        gt=0,
        le=60,
        description="deadline of each call to Backstage's JWKS and userinfo endpoints, in all: connect, "
        "headers and body",
    )
    identity_failure_cache_seconds: float = Field(
        default=15.0,
        alias="FINOPS_IDENTITY_FAILURE_CACHE_SECONDS",
        ge=0,
        le=3600,
        description="a failed JWKS or userinfo call is remembered this long: callers needing it get a "
        "503 with Retry-After at once, and Backstage is not asked again meanwhile",
    )
    userinfo_cache_seconds: float = Field(
        default=300.0,
        alias="FINOPS_USERINFO_CACHE_SECONDS",
        ge=0,
        le=86_400,
        description="a token's groups read from userinfo are reused this long (never past the token's "
        "expiry); a group change reaches the API after at most this delay",
    )
    userinfo_max_concurrent: int = Field(
        default=4,
        alias="FINOPS_USERINFO_MAX_CONCURRENT",
        ge=1,
        le=256,
        description="userinfo calls under way at once (one per new token); a new token beyond that "
        "gets a 503 with Retry-After at once",
    )
    api_host: str = Field(default="127.0.0.1", alias="FINOPS_API_HOST")
    api_port: int = Field(default=7007, alias="FINOPS_API_PORT", ge=1, le=65535)
    api_head_timeout_seconds: float = Field(
        default=10.0,
        alias="FINOPS_API_HEAD_TIMEOUT_SECONDS",
        gt=0,
        le=600,
        description="a client has this long to send a request's line and headers (counted from the "
        "connection, or from the previous answer on a kept-alive one); then 408, or a silent close",
    )
    api_body_timeout_seconds: float = Field(
        default=30.0,
        alias="FINOPS_API_BODY_TIMEOUT_SECONDS",
        gt=0,
        le=3600,
        description="a client has this long, from the end of the headers, to send the whole request body; "
        "then 408",
    )
    api_max_connections: int = Field(
        default=1000,
        alias="FINOPS_API_MAX_CONNECTIONS",
        ge=1,
        le=1_000_000,
        description="open connections per process (lowered to fit the open-files limit); beyond it the "
        "connection idle the longest before sending a request is closed, or the new one gets a 503",
    )
    landing_uri: str = Field(
        default="",
        alias="FINOPS_LANDING_URI",
        description="landing root (folder or s3://bucket/prefix) that a reprocess dry run reads",
    )
    sources_file: str = Field(
        default="",
        alias="FINOPS_SOURCES",
        description="the sources file the pipeline reads (same value): the sources `GET /sources` lists; "
        "unset: one landing source per domain under FINOPS_LANDING_URI",
    )
    reprocess_rate_limit: int = Field(
        default=10,
        alias="FINOPS_REPROCESS_RATE_LIMIT",
        ge=1,
        le=10_000,
        description="reprocess requests (and dry runs) one caller may file per window",
    )
    reprocess_rate_window_seconds: float = Field(
        default=600.0,
        alias="FINOPS_REPROCESS_RATE_WINDOW_SECONDS",
        gt=0,
        le=86_400,
        description="length of the per-caller reprocess rate window",
    )
    log_followers_per_caller: int = Field(
        default=4,
        alias="FINOPS_LOG_FOLLOWERS_PER_CALLER",
        ge=1,
        le=100,
        description="log streams (GET /runs/{runId}/logs?follow=true) one caller may have open at once",
    )
    log_follow_poll_seconds: float = Field(
        default=1.0,
        alias="FINOPS_LOG_FOLLOW_POLL_SECONDS",
        ge=0.05,
        le=30,
        description="how often a followed log looks for new events and compute log bytes",
    )
    log_follow_max_seconds: float = Field(
        default=6 * 3600.0,
        alias="FINOPS_LOG_FOLLOW_MAX_SECONDS",
        gt=0,
        le=7 * 86_400,
        description="a followed log ends after this long even if the run goes on (the client follows again)",
    )

    @field_validator("admin_groups", "user_groups", mode="before")
    @classmethod
    def _refs(cls, value: Any) -> Any:
        return _split_refs(value)

    @field_validator("jwt_algorithms", mode="before")
    @classmethod
    def _algorithms(cls, value: Any) -> Any:
        return _split_refs(value)

    @field_validator("jwt_algorithms")
    @classmethod
    def _asymmetric_only(cls, value: list[str]) -> list[str]:
        # Symmetric algorithms (HS*) would let anyone holding the public key forge tokens.
        unknown = [alg for alg in value if alg not in ASYMMETRIC_JWT_ALGORITHMS]
        if unknown or not value:
            raise ValueError(
                f"FINOPS_JWT_ALGORITHMS must list asymmetric algorithms among "
                f"{', '.join(ASYMMETRIC_JWT_ALGORITHMS)}; got {value!r}"
            )
        return value

    @field_validator("backstage_url")
    @classmethod
    def _backstage_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(
                f"FINOPS_BACKSTAGE_URL must be the Backstage backend's http(s) base URL, got {value!r}"
            )
        return value

    @field_validator("static_tokens", mode="before")
    @classmethod
    def _tokens(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not value.strip():
                return []
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"FINOPS_STATIC_TOKENS must be a JSON list of {{token, subject, role}}: {exc}"
                ) from exc
        return value


@lru_cache
def get_settings() -> AdminSettings:
    return AdminSettings()
