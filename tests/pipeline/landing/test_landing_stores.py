"""One contract, every landing store: a local folder and an S3 bucket (a real S3 API server, moto).

Whatever the landing is, the loader must see the same files, in the same order,
with the same bytes, and get the same errors.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from finops_pipeline.landing.store import LandingFolderMissing, LandingStore, landing_store_for


@dataclass
class Landing:
    uri: str
    store: LandingStore
    put: Callable[[str, bytes], None]


def _s3_client() -> Any:
    import boto3

    return boto3.client("s3")


@pytest.fixture(params=["local", "s3"])
def landing_store(request: pytest.FixtureRequest, tmp_path: Path) -> Landing:
    if request.param == "local":
        root = tmp_path / "landing"
        root.mkdir()

        def put_local(relative: str, data: bytes) -> None:
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

        return Landing(str(root), landing_store_for(str(root)), put_local)
    request.getfixturevalue("s3_env")
    client = _s3_client()
    bucket = f"landing-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    uri = f"s3://{bucket}/exports/focus"

    def put_s3(relative: str, data: bytes) -> None:
        client.put_object(Bucket=bucket, Key=f"exports/focus/{relative}", Body=data)

    return Landing(uri, landing_store_for(uri, s3_client_factory=_s3_client), put_s3)


def test_lists_the_data_files_of_a_period_in_name_order_with_their_sizes(landing_store: Landing) -> None:
    files = {
        "open/2026-10/b.csv": b"BilledCost\n1\n",
        "open/2026-10/a.parquet": b"PAR1" + b"\x00" * 20,
        "open/2026-10/c.csv.gz": b"\x1f\x8b" + b"\x00" * 10,
    }
    for name, data in files.items():
        landing_store.put(name, data)
    landing_store.put("open/2026-10/.hidden.csv", b"x")
    landing_store.put("open/2026-10/notes.txt", b"not a landing file")
    landing_store.put("open/2026-10/nested/d.csv", b"another folder")
    landing_store.put("open/2026-09/e.csv", b"another period")
    landing_store.put("private/2026-10/f.csv", b"another domain")

    listed = landing_store.store.list_files("open", "2026-10")

    assert [f.name.rsplit("/", 1)[-1] for f in listed] == ["a.parquet", "b.csv", "c.csv.gz"]
    assert landing_store.store.skipped_sub_folders("open", "2026-10") == {"open/2026-10/nested": 1}
    assert landing_store.store.skipped_sub_folders("private", "2026-10") == {}
    assert [f.size for f in listed] == [
        len(files[f"open/2026-10/{n}"]) for n in ("a.parquet", "b.csv", "c.csv.gz")
    ]
    for item in listed:
        with landing_store.store.open(item) as handle:
            assert handle.read() == files[f"open/2026-10/{item.name.rsplit('/', 1)[-1]}"]


def test_a_missing_or_dataless_folder_is_an_error_naming_the_folder(landing_store: Landing) -> None:
    folder = landing_store.store.folder_uri("native", "2026-10")
    assert folder.endswith("native/2026-10/") and folder.startswith(landing_store.uri.rstrip("/"))
    with pytest.raises(LandingFolderMissing) as missing:
        landing_store.store.list_files("native", "2026-10")
    assert folder in str(missing.value)

    landing_store.put("native/2026-10/_SUCCESS", b"")
    landing_store.put("native/2026-10/manifest.json", b"{}")
    with pytest.raises(LandingFolderMissing) as dataless:
        landing_store.store.list_files("native", "2026-10")
    assert folder in str(dataless.value)


def test_reads_an_optional_file_or_says_it_is_absent(landing_store: Landing) -> None:
    assert landing_store.store.read_optional("reference/applications.csv") is None
    landing_store.put("reference/applications.csv", b"application,family\nbilling,Core\n")
    assert landing_store.store.read_optional("reference/applications.csv") == (
        b"application,family\nbilling,Core\n"
    )


def test_a_month_whose_files_sit_in_a_sub_folder_names_the_skipped_folder(landing_store: Landing) -> None:
    landing_store.put("open/2026-10/export-2026-10/part-1.csv", b"BilledCost\n1\n")
    landing_store.put("open/2026-10/export-2026-10/part-2.parquet", b"PAR1")
    landing_store.put("open/2026-10/manifest.json", b"{}")

    with pytest.raises(LandingFolderMissing) as missing:
        landing_store.store.list_files("open", "2026-10")

    message = str(missing.value)
    assert "open/2026-10/export-2026-10/ (2 file(s))" in message and "skipped" in message
    assert "empty" not in message
