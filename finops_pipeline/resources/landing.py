"""Landing files (local folder or S3 through dagster-aws) as a Dagster resource."""

import io
from typing import Any

import pyarrow.csv as pacsv
from dagster import ConfigurableResource
from dagster_aws.s3 import S3Resource
from pydantic import Field

from finops_pipeline.landing.store import LandingStore, landing_store_for

REFERENCE_FILE = "reference/applications.csv"


class LandingResource(ConfigurableResource):  # type: ignore[misc]
    uri: str = Field(
        description="landing root: a local folder or s3://bucket/prefix (FINOPS_LANDING_URI); empty when "
        "every domain's sources are in FINOPS_SOURCES and no reference data is kept"
    )
    s3: S3Resource

    def store(self) -> LandingStore:
        return landing_store_for(self.uri, s3_client_factory=self.s3.get_client)

    def read_reference(self) -> list[dict[str, Any]] | None:
        """Rows of `<landing>/reference/applications.csv`, or None when there is none."""
        if not self.uri:
            return None
        data = self.store().read_optional(REFERENCE_FILE)
        if data is None:
            return None
        table = pacsv.read_csv(io.BytesIO(data))
        missing = {"application", "family"} - set(table.column_names)
        if missing:
            raise ValueError(
                f"{self.uri.rstrip('/')}/{REFERENCE_FILE}: missing column(s) {', '.join(sorted(missing))}"
            )
        rows = table.to_pylist()
        return [
            {"application": r["application"], "family": r["family"], "label": r.get("label")}
            for r in rows
            if r.get("application")
        ]
