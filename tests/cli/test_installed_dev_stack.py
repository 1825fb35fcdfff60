"""`finops dev` from an installed package: nothing read from the source checkout.

The project is built into a wheel and installed (without its dependencies, which
the test environment already has) into a folder outside the checkout that comes
first on the import path; the stack is then started from another folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support import free_port

REPO = Path(__file__).resolve().parents[2]


def _wait_ready(process: subprocess.Popen[str], timeout: float) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                break
            continue
        lines.append(line.rstrip())
        if "Ctrl-C stops everything" in line:
            return lines
    pytest.fail("finops dev did not come up:\n" + "\n".join(lines[-40:]))


@pytest.mark.timeout(420)
def test_finops_dev_runs_from_an_installed_wheel(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(wheels),
            str(REPO),
        ],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = wheels.glob("finops_batch_admin-*.whl")
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        check=True,
        cwd=tmp_path,
    )
    assert (site / "finops_cli" / "templates" / "dagster.yaml").is_file()
    assert (site / "finops_admin_plugin" / "ui" / "static" / "index.html").is_file()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONUNBUFFERED": "1"}
    for name in ("FINOPS_DATABASE_URL", "FINOPS_LANDING_URI", "DAGSTER_HOME", "FINOPS_AUTH_MODE"):
        env.pop(name, None)
    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "import finops_cli, finops_pipeline; print(finops_cli.__file__, finops_pipeline.__file__)",
        ],
        env=env,
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(REPO) not in where and str(site) in where, where

    api_port, dagster_port = free_port(), free_port()
    home = tmp_path / "state"
    process = subprocess.Popen(
        [sys.executable, "-m", "finops_cli", "dev", "--home", str(home), "--api-port", str(api_port),
         "--dagster-port", str(dagster_port), "--no-seed"],
        env=env,
        cwd=elsewhere,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        lines = _wait_ready(process, timeout=300)
        assert any(f"http://127.0.0.1:{api_port}/finops/admin/ui" in line for line in lines), lines
        with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/finops/admin/healthz", timeout=10) as resp:
            health = json.load(resp)
        assert resp.status == 200, health
        with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/finops/admin/ui/", timeout=10) as resp:
            assert resp.status == 200 and b"<html" in resp.read().lower()
        with urllib.request.urlopen(f"http://127.0.0.1:{dagster_port}/server_info", timeout=10) as resp:
            assert resp.status == 200
        assert (home / "dagster_home" / "dagster.yaml").read_text() == (
            site / "finops_cli" / "templates" / "dagster.yaml"
        ).read_text()
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0
