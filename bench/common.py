"""What the benchmarks share: where their PostgreSQL and files live."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def workdir(data_dir: Path | None, prefix: str) -> Iterator[Path]:
    """`data_dir` (kept afterwards) when given, else a temporary folder removed at the end."""
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        yield data_dir.resolve()
        return
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
