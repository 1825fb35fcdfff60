"""The Backstage plugin's dev harness, served for the browser tests.

`backstage-plugin/dev/` holds a Backstage dev app around the plugin (`createDevApp`), bundled
by `node dev/build.mjs` into `dev/dist/` (the plugin's check script builds it; `serve_harness`
builds it again when a source is newer) and served by `node dev/serve.mjs`, which proxies
`/api/proxy/finops-admin/*` to the API as Backstage's proxy entry does.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.support import free_port, require

__all__ = ["PLUGIN", "serve_harness"]

PLUGIN = Path(__file__).resolve().parents[3] / "backstage-plugin"


def _newest(paths: list[Path]) -> float:
    files = [f for path in paths for f in ([path] if path.is_file() else path.rglob("*")) if f.is_file()]
    return max(f.stat().st_mtime for f in files)


@contextlib.contextmanager
def serve_harness(api_root: str, token: str | None = None) -> Iterator[str]:
    """The dev app's URL (`/finops-admin`), served with its proxy to the admin API at `api_root`
    (with `token`, the proxy authenticates the page's calls with it, as a signed-in user)."""
    node = shutil.which("node")
    require(node is not None, "Node.js 20 is needed for the Backstage plugin (make plugin-check)")
    require(
        (PLUGIN / "node_modules" / "@backstage" / "dev-utils").is_dir(),
        "backstage-plugin/node_modules is missing: run make plugin-check (npm ci) first",
    )
    assert node is not None
    dist = PLUGIN / "dev" / "dist"
    sources = [PLUGIN / "src", *(p for p in (PLUGIN / "dev").iterdir() if p.name != "dist")]
    if not (dist / "index.js").is_file() or _newest(sources) > _newest([dist]):
        built = subprocess.run(
            [node, "dev/build.mjs"], cwd=PLUGIN, capture_output=True, text=True, timeout=300, check=False
        )
        assert built.returncode == 0, f"node dev/build.mjs failed:\n{built.stdout}\n{built.stderr}"
    port = free_port()
    command = [node, "dev/serve.mjs", "--api", api_root, "--port", str(port)]
    if token:
        command += ["--token", token]
    server = subprocess.Popen(
        command,
        cwd=PLUGIN,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert "listening on" in line, f"dev/serve.mjs did not start: {line}"
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while httpx.get(f"{base}/api/proxy/finops-admin/healthz").status_code != 200:
            assert time.monotonic() < deadline, "the proxy does not reach the admin API"
            time.sleep(0.1)
        yield f"{base}/finops-admin"
    finally:
        server.terminate()
        server.wait(timeout=10)
