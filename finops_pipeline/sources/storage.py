"""The sources' storage: one client (obstore) for local folders, S3, Azure Blob and GCS.

`open_storage(uri, options)` gives a `Storage` rooted at a source's uri; every path it takes
or returns is relative to that root. Listing, `head`, bounded reads of small files
(manifests), streaming reads of data files and writes (the demo and test exports) all go
through it, so each provider module only sees paths, sizes, times and ETags. Why obstore:
docs/adr/0006-storage-library.md.

Storage options (a source's `storage:` mapping, `*_env` already resolved) are passed to the
store as obstore configuration keys, with the AWS-style aliases `endpoint_url` (→ `endpoint`)
and `region_name` (→ `region`); an `http://` endpoint allows plain HTTP. Without options the
store reads the usual environment (AWS_*, AZURE_STORAGE_*, GOOGLE_*).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO, Final
from urllib.parse import urlsplit

import obstore
from obstore.store import AzureStore, GCSStore, LocalStore, S3Store

__all__ = [
    "MAX_SMALL_FILE_BYTES",
    "Storage",
    "StorageError",
    "StoredObject",
    "open_storage",
]

# Manifests and markers are read whole; a real one is a few hundred kB (AWS lists every
# column). A bigger file under that name is not a manifest, and is refused rather than
# read into memory.
MAX_SMALL_FILE_BYTES: Final = 32 * 1024 * 1024
# A listing that cannot reach its server fails within this bound instead of obstore's
# default (10 retries over up to 3 minutes): the delivery sensor ticks every minute.
_RETRY: Final = {"max_retries": 3, "retry_timeout": timedelta(seconds=30)}
_ALIASES: Final = {"endpoint_url": "endpoint", "region_name": "region"}


class StorageError(OSError):
    """The storage cannot be listed or read; the message says what and where."""


@dataclass(frozen=True)
class StoredObject:
    path: str  # relative to the storage's root, `/`-separated
    size: int
    last_modified: datetime
    etag: str | None


def _etag(value: object) -> str | None:
    # The same object's ETag is listed without quotes and returned by HEAD with them (GCS,
    # Azure): one spelling, so that ids made from listings and from HEADs agree.
    return str(value).strip('"') if value else None


def _stored(meta: Mapping[str, Any], strip: str = "") -> StoredObject:
    path = str(meta["path"])
    if strip and path.startswith(strip):
        path = path[len(strip) :]
    modified = meta["last_modified"]
    if modified.tzinfo is None:
        modified = modified.replace(tzinfo=UTC)
    return StoredObject(path, int(meta["size"]), modified, _etag(meta.get("e_tag")))


class Storage:
    """A folder of some storage: a local directory, or a bucket/container prefix."""

    def __init__(self, uri: str, store: Any, local_root: Path | None) -> None:
        self.uri = uri.rstrip("/")
        self._remote = store
        self._local_root = local_root
        self._local: LocalStore | None = None

    @property
    def _store(self) -> Any:
        if self._local_root is None:
            return self._remote
        if self._local is None:
            # Made on first use: obstore refuses a local prefix that does not exist yet,
            # and a demo export creates its folder with its first write.
            self._local_root.mkdir(parents=True, exist_ok=True)
            self._local = LocalStore(self._local_root)
        return self._local

    @property
    def is_local(self) -> bool:
        return self._local_root is not None

    def uri_of(self, relative: str) -> str:
        return f"{self.uri}/{relative}" if relative else self.uri

    def _fail(self, action: str, relative: str, exc: Exception) -> StorageError:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return StorageError(f"cannot {action} {self.uri_of(relative)}: {first[:500]}")

    def list(self, prefix: str = "") -> Iterator[StoredObject]:
        """Every object below `prefix` (recursively), in no particular order."""
        if self._local_root is not None and not self._local_root.is_dir():
            raise StorageError(
                f"cannot list {self.uri}: the folder does not exist (or is not a folder); check the "
                "source's uri and that the volume is mounted"
            )
        try:
            for batch in obstore.list(self._store, prefix or None, chunk_size=1000):
                for meta in batch:
                    yield _stored(meta)
        except Exception as exc:  # obstore raises its own hierarchy and OSErrors
            raise self._fail("list", prefix, exc) from exc

    def head(self, relative: str) -> StoredObject | None:
        """The object's current size, time and ETag; None when it does not exist."""
        if self._local_root is not None and not (self._local_root / relative).is_file():
            return None
        try:
            return _stored(obstore.head(self._store, relative))
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise self._fail("read", relative, exc) from exc

    def read_small(self, relative: str, limit: int = MAX_SMALL_FILE_BYTES) -> bytes:
        """A small file whole (a manifest); StorageError when it is larger than `limit`."""
        try:
            result = obstore.get(self._store, relative)
            size = int(result.meta["size"])
            if size > limit:
                raise StorageError(
                    f"{self.uri_of(relative)} is {size} bytes; a manifest is at most {limit}: "
                    "is it really the provider's manifest?"
                )
            return bytes(result.bytes())
        except StorageError:
            raise
        except Exception as exc:
            raise self._fail("read", relative, exc) from exc

    @contextmanager
    def open(self, relative: str) -> Iterator[BinaryIO]:
        """A streaming, seekable binary reader: never the whole file in memory."""
        if self._local_root is not None:
            # O_NOFOLLOW: a file swapped for a link after listing is refused, not followed.
            try:
                fd = os.open(self._local_root / relative, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            except OSError as exc:
                raise self._fail("open", relative, exc) from exc
            with os.fdopen(fd, "rb") as handle:
                yield handle
            return
        try:
            reader = obstore.open_reader(self._store, relative, buffer_size=8 * 1024 * 1024)
        except Exception as exc:
            raise self._fail("open", relative, exc) from exc
        buffered = io.BufferedReader(_RawReader(reader), buffer_size=1024 * 1024)
        try:
            yield buffered  # type: ignore[misc]  # BufferedReader is a BinaryIO in practice
        finally:
            buffered.close()

    def put(self, relative: str, data: bytes) -> None:
        """Write one object (the demo and test exports; the batch itself never writes)."""
        try:
            if self._local_root is not None:
                (self._local_root / relative).parent.mkdir(parents=True, exist_ok=True)
            obstore.put(self._store, relative, data)
        except Exception as exc:
            raise self._fail("write", relative, exc) from exc

    def delete(self, relative: str) -> None:
        try:
            obstore.delete(self._store, relative)
        except FileNotFoundError:
            return
        except Exception as exc:
            raise self._fail("delete", relative, exc) from exc


class _RawReader(io.RawIOBase):
    """obstore's ReadableFile as a standard raw stream (for BufferedReader, pyarrow, gzip)."""

    def __init__(self, reader: Any) -> None:
        super().__init__()
        self._reader = reader

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._reader.read(len(view))
        n = len(data)
        view[:n] = memoryview(data).cast("B") if n else b""
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return int(self._reader.seek(offset, whence))

    def tell(self) -> int:
        return int(self._reader.tell())

    def close(self) -> None:
        if not self.closed:
            self._reader.close()
        super().close()


def _config(options: Mapping[str, str]) -> dict[str, str]:
    config = {_ALIASES.get(k, k): v for k, v in options.items()}
    if config.get("endpoint", "").startswith("http://"):
        config.setdefault("allow_http", "true")
    return config


def open_storage(uri: str, options: Mapping[str, str] | None = None) -> Storage:
    """The storage at `uri` (a local folder, file://, s3://, az://, abfs[s]://, gs://)."""
    return _open(uri.rstrip("/"), tuple(sorted((options or {}).items())))


@lru_cache(maxsize=64)
def _open(uri: str, options: tuple[tuple[str, str], ...]) -> Storage:
    # Cached: a store holds a connection pool and credentials; the sensor lists every
    # source each minute.
    config = _config(dict(options))
    if "://" not in uri or uri.startswith("file://"):
        root = Path(uri.removeprefix("file://")).expanduser().resolve()
        return Storage(str(root), None, root)
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    prefix = parts.path.strip("/") or None
    try:
        store: Any
        if scheme == "s3":
            store = S3Store(parts.netloc, prefix=prefix, config=config, retry_config=_RETRY)  # type: ignore[arg-type]
        elif scheme in ("az", "abfs", "abfss"):
            container, _, account = parts.netloc.partition("@")
            if account and "account_name" not in config:
                config["account_name"] = account.split(".", 1)[0]
            store = AzureStore(container, prefix=prefix, config=config, retry_config=_RETRY)  # type: ignore[arg-type]
        elif scheme == "gs":
            store = GCSStore(parts.netloc, prefix=prefix, config=config, retry_config=_RETRY)  # type: ignore[arg-type]
        else:
            raise StorageError(f"unsupported storage scheme {scheme!r} in {uri}: use s3://, az://, gs://")
    except StorageError:
        raise
    except Exception as exc:
        raise StorageError(f"cannot open {uri}: {str(exc).splitlines()[0]}") from exc
    return Storage(uri, store, None)
