"""A warehouse, a Dagster instance and a sources file of local export folders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from finops_pipeline.settings import get_pipeline_settings
from tests.pipeline.sources.layouts import write_sources_file


@pytest.fixture
def exports(tmp_path: Path) -> dict[str, Path]:
    """Empty export folders: an AWS export `payer`, an Azure export `ea`, a landing folder."""
    folders = {
        "aws": tmp_path / "cur" / "payer",
        "azure": tmp_path / "focus" / "ea",
        "landing": tmp_path / "open",
    }
    for folder in folders.values():
        folder.mkdir(parents=True)
    return folders


@pytest.fixture
def sources_env(
    monkeypatch: pytest.MonkeyPatch, warehouse_url: str, exports: dict[str, Path], tmp_path: Path
) -> Iterator[dict[str, Any]]:
    """FINOPS_SOURCES naming the export folders: public from AWS and Azure, open from a
    landing folder; no FINOPS_LANDING_URI."""
    path = write_sources_file(
        tmp_path / "sources.yaml",
        [
            {"name": "aws-payer", "domain": "public", "kind": "aws-data-exports", "uri": str(exports["aws"])},
            {
                "name": "azure-ea",
                "domain": "public",
                "kind": "azure-cost-exports",
                "uri": str(exports["azure"]),
            },
            {"name": "open-landing", "domain": "open", "kind": "landing", "uri": str(exports["landing"])},
        ],
    )
    monkeypatch.setenv("FINOPS_DATABASE_URL", warehouse_url)
    monkeypatch.delenv("FINOPS_LANDING_URI", raising=False)
    monkeypatch.setenv("FINOPS_SOURCES", str(path))
    monkeypatch.setenv("FINOPS_DELIVERY_SETTLE_SECONDS", "0")
    get_pipeline_settings.cache_clear()
    try:
        yield {"database_url": warehouse_url, "sources_file": path, **exports}
    finally:
        get_pipeline_settings.cache_clear()
