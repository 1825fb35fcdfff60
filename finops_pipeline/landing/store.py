"""Landing stores: `<landing>/<domain>/<YYYY-MM>/*.csv|*.csv.gz|*.parquet`, local or S3.

Period folders are read as exporters leave them: hidden files, `_SUCCESS` and other
`_`-prefixed markers, manifests and checksums (`*.json`, `*.crc`...) are skipped;
suffixes match in any case. A symbolic link, or a folder resolving outside the
landing root, is refused (LandingFileRefused) rather than followed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import urlparse

from finops_pipeline.constants import LANDING_FILE_SUFFIXES

__all__ = [
    "LandingFile",
    "LandingFileRefused",
    "LandingFolderMissing",
    "LandingStore",
    "LocalLandingStore",
    "S3LandingStore",
    "landing_store_for",
]


class LandingFolderMissing(FileNotFoundError):
    """The folder of a selected (domain, period) does not exist or holds no file."""

    def __init__(self, domain: str, period: str, expected: str, detail: str = "") -> None:
        self.domain, self.period, self.expected = domain, period, expected
        message = (
            f"no landing files for domain {domain!r}, period {period}: expected FOCUS files "
            f"({', '.join(LANDING_FILE_SUFFIXES)}) under {expected}"
        )
        super().__init__(message + (f" ({detail})" if detail else ""))


class LandingFileRefused(OSError):
    """A landing entry the loader will not read (a symbolic link, a path outside the root)."""


@dataclass(frozen=True)
class LandingFile:
    name: str  # the file's URI, as recorded in finops.releves.source_file
    size: int
    relative: str = ""  # the path under the landing root: what messages name
    # A file that may hold rows of two billing periods (OCI reports): the rows of another period
    # are skipped (they load with that period), not rejected; rows that cannot be placed count
    # only in `home_period`, the month the file was written in.
    skip_other_periods: bool = False
    home_period: str | None = None

    @property
    def label(self) -> str:
        return self.relative or self.name


class LandingStore(Protocol):
    def folder_uri(self, domain: str, period: str) -> str: ...

    def list_files(self, domain: str, period: str) -> list[LandingFile]: ...

    def skipped_sub_folders(self, domain: str, period: str) -> dict[str, int]:
        """Sub-folders of the month folder holding FOCUS files, which are not read: path under
        the landing root -> how many such files."""
        ...

    def open(self, file: LandingFile) -> Any:  # a context manager yielding a binary file
        ...

    def read_optional(self, relative: str) -> bytes | None:
        """A small file under the landing root (e.g. reference data), None when absent."""
        ...


def _is_landing_file(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base.lower().endswith(LANDING_FILE_SUFFIXES) and not base.startswith((".", "_"))


def _nothing_to_load(entries: int, skipped: dict[str, int]) -> str:
    """Why a month folder that exists has no file to load: what it holds instead."""
    if skipped:
        folders = ", ".join(f"{path}/ ({count} file(s))" for path, count in sorted(skipped.items()))
        return (
            f"only sub-folders hold FOCUS files, and they are skipped: {folders}; the loader reads "
            "the files directly in the month folder: move them up"
        )
    if entries:
        return f"the folder holds {entries} entr{'y' if entries == 1 else 'ies'}, none of them a FOCUS file"
    return "the folder exists but is empty"


class LocalLandingStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def folder_uri(self, domain: str, period: str) -> str:
        return str(self.root / domain / period) + "/"

    def list_files(self, domain: str, period: str) -> list[LandingFile]:
        folder = self.root / domain / period
        if not folder.is_dir():
            raise LandingFolderMissing(domain, period, self.folder_uri(domain, period))
        relative_folder = f"{domain}/{period}"
        root = self.root.resolve()
        if folder.is_symlink() or not folder.resolve().is_relative_to(root):
            raise LandingFileRefused(
                f"{relative_folder}/ is a symbolic link or resolves outside the landing root; "
                "the loader reads real folders under the root only: copy the files there"
            )
        files = []
        entries = sorted(folder.iterdir())
        for p in entries:
            if not _is_landing_file(p.name):
                continue
            relative = f"{relative_folder}/{p.name}"
            if p.is_symlink():
                raise LandingFileRefused(
                    f"{relative} is a symbolic link; the loader reads regular files only: "
                    "copy the file into the folder instead of linking it"
                )
            if p.is_file():
                files.append(LandingFile(name=str(p), size=p.stat().st_size, relative=relative))
        if not files:
            detail = _nothing_to_load(len(entries), self.skipped_sub_folders(domain, period))
            raise LandingFolderMissing(domain, period, self.folder_uri(domain, period), detail)
        return files

    def skipped_sub_folders(self, domain: str, period: str) -> dict[str, int]:
        folder = self.root / domain / period
        if not folder.is_dir() or folder.is_symlink():
            return {}
        skipped = {}
        for sub in sorted(folder.iterdir()):
            if sub.is_dir() and not sub.is_symlink():
                count = sum(1 for f in sub.rglob("*") if _is_landing_file(f.name) and f.is_file())
                if count:
                    skipped[f"{domain}/{period}/{sub.name}"] = count
        return skipped

    @contextmanager
    def open(self, file: LandingFile) -> Iterator[BinaryIO]:
        # O_NOFOLLOW: a file swapped for a link after listing is refused, not followed.
        try:
            fd = os.open(file.name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError as exc:
            raise LandingFileRefused(f"{file.label} cannot be opened: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as handle:
            yield handle

    def read_optional(self, relative: str) -> bytes | None:
        try:
            return (self.root / relative).read_bytes()
        except FileNotFoundError:
            return None


class S3LandingStore:
    """Landing files in an S3 (or MinIO) bucket, read through a boto3 client."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client, self.bucket, self.prefix = client, bucket, prefix.strip("/")

    def _folder_key(self, domain: str, period: str) -> str:
        return "/".join(p for p in (self.prefix, domain, period) if p) + "/"

    def folder_uri(self, domain: str, period: str) -> str:
        return f"s3://{self.bucket}/{self._folder_key(domain, period)}"

    def list_files(self, domain: str, period: str) -> list[LandingFile]:
        files, entries, skipped = self._listing(domain, period)
        if not files:
            detail = _nothing_to_load(entries, skipped) if entries else ""
            raise LandingFolderMissing(domain, period, self.folder_uri(domain, period), detail)
        return sorted(files, key=lambda f: f.name)

    def skipped_sub_folders(self, domain: str, period: str) -> dict[str, int]:
        return self._listing(domain, period)[2]

    def _listing(self, domain: str, period: str) -> tuple[list[LandingFile], int, dict[str, int]]:
        """The month's files, how many objects its prefix holds, and its skipped sub-folders."""
        prefix = self._folder_key(domain, period)
        files: list[LandingFile] = []
        entries = 0
        skipped: dict[str, int] = {}
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                entries += 1
                inside = key[len(prefix) :]
                if "/" in inside and _is_landing_file(key):  # counted to say why nothing loads
                    folder = (key[len(self.prefix) + 1 :] if self.prefix else key)[: -len(inside)]
                    folder += inside.split("/", 1)[0]
                    skipped[folder] = skipped.get(folder, 0) + 1
                # Only direct children: nested "folders" are not part of the period.
                if "/" not in inside and _is_landing_file(key):
                    relative = key[len(self.prefix) + 1 :] if self.prefix else key
                    files.append(
                        LandingFile(name=f"s3://{self.bucket}/{key}", size=obj["Size"], relative=relative)
                    )
        return files, entries, skipped

    @contextmanager
    def open(self, file: LandingFile) -> Iterator[BinaryIO]:
        # Spool to a local temporary file: Parquet needs random access, and a local
        # copy keeps a slow network from holding the load's transaction open longer.
        key = urlparse(file.name).path.lstrip("/")
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        with tempfile.TemporaryFile() as spool:
            try:
                shutil.copyfileobj(body, spool, length=8 << 20)
            finally:
                body.close()
            spool.seek(0)
            yield spool  # type: ignore[misc]

    def read_optional(self, relative: str) -> bytes | None:
        key = "/".join(p for p in (self.prefix, relative) if p)
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        except self.client.exceptions.NoSuchKey:
            return None
        try:
            return bytes(body.read())
        finally:
            body.close()


def landing_store_for(uri: str, s3_client_factory: Any = None) -> LandingStore:
    """A store for a local folder or an `s3://bucket/prefix` URI."""
    if not uri or not uri.strip():
        raise ValueError("the landing URI is empty: set FINOPS_LANDING_URI to a folder or s3://bucket/prefix")
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"landing URI {uri!r} names no bucket: use s3://bucket/prefix")
        if s3_client_factory is None:
            raise ValueError(f"landing URI {uri!r} is on S3 but no S3 client is configured")
        return S3LandingStore(s3_client_factory(), parsed.netloc, parsed.path)
    if parsed.scheme in ("", "file"):
        return LocalLandingStore(parsed.path if parsed.scheme == "file" else uri)
    raise ValueError(f"landing URI {uri!r}: unsupported scheme {parsed.scheme!r}; use a path or s3://")
