"""All settings of the admin API, from the environment (one class, built lazily)."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

API_BASE_PATH = "/finops/admin"


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
    api_host: str = Field(default="127.0.0.1", alias="FINOPS_API_HOST")
    api_port: int = Field(default=7007, alias="FINOPS_API_PORT", ge=1, le=65535)

    @field_validator("admin_groups", "user_groups", mode="before")
    @classmethod
    def _refs(cls, value: Any) -> Any:
        return _split_refs(value)

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
