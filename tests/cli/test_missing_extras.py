"""`finops dev` on an install without the [dev] extra: what to install, not a traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from finops_cli.main import main


def test_dev_without_pgserver_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A production install (the image): pgserver cannot be imported.
    monkeypatch.setitem(sys.modules, "pgserver", None)
    home = tmp_path / "state"
    assert main(["dev", "--home", str(home)]) == 2
    err = capsys.readouterr().err
    assert "finops dev: the embedded stack needs pgserver" in err
    assert "pip install 'finops-batch-admin[dev]'" in err
    assert "Traceback" not in err
    assert not home.exists()  # refused before anything was started or written
