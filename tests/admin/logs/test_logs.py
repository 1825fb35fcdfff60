"""Log download, excerpt and links on real runs, with local and S3 (moto server) compute logs.

One module-scoped world, built once (multiprocess runs start a process per step):

  local instance (LocalComputeLogManager under tmp):
    mp         open + native, [2026-11, 2026-10], multiprocess; native 2026-10 has no landing
               files, so load_native fails (FAILED run, one capture per step process)
    inproc     open, [2026-11], in process (SUCCESS, one capture shared by every step)
    expired    public, [2026-11], in process, then its compute logs deleted
    queued     private, created and never launched (no capture)
    other      a Dagster job that is not the FinOps batch
  S3 instance (S3ComputeLogManager on the moto server), its own Dagster storage:
    s3_mp      the same run as `mp`, multiprocess
  a second reader of that storage whose S3 endpoint is a closed port (503 cases).
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import dagster
import pytest
from dagster import DagsterInstance, DagsterRunStatus, job, op
from fastapi.testclient import TestClient

from finops_admin_plugin.app import create_app
from finops_admin_plugin.dagster_reader import DagsterReader, DagsterUnavailable
from finops_admin_plugin.links import external_link, template_problems
from finops_admin_plugin.logs import build_excerpt, format_event, prepare_download
from finops_admin_plugin.mapping.captures import captures_from_entries
from finops_admin_plugin.settings import AdminSettings
from finops_pipeline.contract import JOB_NAME, TRIGGER_MANUAL, batch_run_config, batch_tags
from tests.support import create_database, free_port, run_batch, write_dagster_yaml

ADMIN_TOKEN = "logs-admin-token-0123456789"
READER_TOKEN = "logs-reader-token-0123456789"
TOKENS = json.dumps(
    [
        {"token": ADMIN_TOKEN, "subject": "component:default/ops-console", "role": "admin"},
        {"token": READER_TOKEN, "subject": "component:default/dashboard", "role": "user"},
    ]
)
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PERIODS = ["2026-11", "2026-10"]
DOMAINS_MP = ["open", "native"]
BUCKET = f"compute-logs-{uuid.uuid4().hex[:8]}"
S3_PREFIX = "finops/compute-logs"
SECRET = b"this-must-never-be-served-0f3c"
HEADER = re.compile(rb"\n===== (.+?) =====\n")

# The example templates of docs/logs.md, as an operator would paste them.
DOC_TEMPLATES = re.findall(
    r"""^FINOPS_LOGS_URL_TEMPLATE=["'](.+)["']$""",
    (Path(__file__).resolve().parents[3] / "docs" / "logs.md").read_text(),
    flags=re.MULTILINE,
)
KIBANA_TEMPLATE = next(t for t in DOC_TEMPLATES if "kibana" in t and "step_key" in t)
GRAFANA_TEMPLATE = next(t for t in DOC_TEMPLATES if "grafana" in t)


@op
def say_hello() -> int:
    print("hello from another job")
    return 1


@job(name="not_the_finops_batch")
def other_job() -> None:
    say_hello()


@dataclass
class World:
    tmp: Path
    local: DagsterInstance
    s3: DagsterInstance
    s3_reader: DagsterInstance
    s3_broken: DagsterInstance
    local_logs: Path
    readmodel_url: str
    runs: dict[str, str] = field(default_factory=dict)
    clients: dict[str, TestClient] = field(default_factory=dict)

    def client(self, name: str) -> TestClient:
        return self.clients[name]


def _s3() -> Any:
    return boto3.client("s3")


def _run_config(periods: list[str], domains: list[str]) -> dict[str, Any]:
    return batch_run_config(periods, domains)


def _multiprocess_run(instance: DagsterInstance) -> str:
    import finops_pipeline.definitions as definitions

    result = dagster.execute_job(
        dagster.reconstructable(definitions.finops_batch_job),
        instance=instance,
        run_config=_run_config(PERIODS, DOMAINS_MP),
        tags=batch_tags(
            trigger=TRIGGER_MANUAL, periods=PERIODS, domains=DOMAINS_MP, requested_by="user:default/tester"
        ),
    )
    assert not result.success  # native 2026-10 has no landing files
    return result.run_id


def _s3_logs(local_dir: Path, endpoint: str) -> dict[str, Any]:
    return {
        "module": "dagster_aws.s3.compute_log_manager",
        "class": "S3ComputeLogManager",
        "config": {
            "bucket": BUCKET,
            "prefix": S3_PREFIX,
            "endpoint_url": endpoint,
            "local_dir": str(local_dir),
            "use_ssl": False,
        },
    }


def _instance(home: Path, storage_url: str, compute_logs: dict[str, Any]) -> DagsterInstance:
    write_dagster_yaml(home, storage_url, compute_logs=compute_logs)
    return DagsterInstance.from_config(str(home))


def _app_client(readmodel_url: str, instance: DagsterInstance) -> TestClient:
    # Values as the environment gives them (strings, JSON), parsed by the settings class.
    env: dict[str, Any] = {
        "FINOPS_DATABASE_URL": readmodel_url,
        "FINOPS_AUTH_MODE": "static",
        "FINOPS_STATIC_TOKENS": TOKENS,
        "FINOPS_USER_ACCESS": "read",
        "FINOPS_DAGSTER_UI_URL": "https://dagster.example.com/",
        "FINOPS_LOGS_URL_TEMPLATE": KIBANA_TEMPLATE,
        "FINOPS_LOGS_URL_MARGIN_SECONDS": "120",
    }
    settings = AdminSettings(**env)
    return TestClient(create_app(settings, dagster_instance=instance, projector_interval=None))


@pytest.fixture(scope="module")
def world(pg_base_url: str, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from finops_pipeline.demo_data import write_demo_landing
    from finops_pipeline.warehouse.schema import ensure_schema

    tmp = tmp_path_factory.mktemp("logs")
    with pytest.MonkeyPatch.context() as mp:
        warehouse = create_database(pg_base_url, "wh")
        ensure_schema(warehouse)
        landing = tmp / "landing"
        write_demo_landing(str(landing), months=2, now=datetime(2026, 11, 15, tzinfo=UTC), scale=0.25)
        shutil.rmtree(landing / "native" / "2026-10")
        mp.setenv("FINOPS_DATABASE_URL", warehouse)
        mp.setenv("FINOPS_LANDING_URI", str(landing))
        mp.setenv("AWS_ENDPOINT_URL", s3_endpoint)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        _s3().create_bucket(Bucket=BUCKET)
        # A file beside the compute logs that no request may ever reach.
        local_logs = tmp / "compute_logs"
        local_logs.mkdir()
        (tmp / "secret.out").write_bytes(SECRET)
        (local_logs / "secret.out").write_bytes(SECRET)

        local = _instance(
            tmp / "home_local",
            create_database(pg_base_url, "dagster"),
            {
                "module": "dagster.core.storage.local_compute_log_manager",
                "class": "LocalComputeLogManager",
                "config": {"base_dir": str(local_logs)},
            },
        )
        s3_storage = create_database(pg_base_url, "dagster")
        s3 = _instance(tmp / "home_s3", s3_storage, _s3_logs(tmp / "s3_worker_cache", s3_endpoint))
        world = World(
            tmp=tmp,
            local=local,
            s3=s3,
            # The API reads with its own instance and cache folder, as `finops serve` on another host.
            s3_reader=_instance(tmp / "home_s3_reader", s3_storage, _s3_logs(tmp / "api_cache", s3_endpoint)),
            s3_broken=_instance(
                tmp / "home_s3_broken",
                s3_storage,
                _s3_logs(tmp / "broken_cache", f"http://127.0.0.1:{free_port()}"),
            ),
            local_logs=local_logs,
            readmodel_url=create_database(pg_base_url, "admin"),
        )
        try:
            world.runs["mp"] = _multiprocess_run(local)
            world.runs["inproc"] = run_batch(local, periods=["2026-11"], domains=["open"]).run_id
            expired = run_batch(local, periods=["2026-11"], domains=["public"]).run_id
            local.compute_log_manager.delete_logs(prefix=[expired])
            world.runs["expired"] = expired
            from finops_pipeline.definitions import build_definitions

            queued = local.create_run_for_job(
                job_def=build_definitions().resolve_job_def(JOB_NAME),
                run_config=_run_config(["2026-11"], ["private"]),
                tags=batch_tags(trigger=TRIGGER_MANUAL, periods=["2026-11"], domains=["private"]),
                status=DagsterRunStatus.NOT_STARTED,
            )
            world.runs["queued"] = queued.run_id
            world.runs["other"] = other_job.execute_in_process(instance=local).run_id
            world.runs["s3_mp"] = _multiprocess_run(s3)

            for name, instance in (("local", local), ("s3", world.s3_reader), ("broken", world.s3_broken)):
                client = _app_client(world.readmodel_url, instance)
                client.__enter__()
                world.clients[name] = client
            yield world
        finally:
            for client in world.clients.values():
                client.__exit__(None, None, None)
            for instance in (world.local, world.s3, world.s3_reader, world.s3_broken):
                instance.dispose()


# --- helpers ---------------------------------------------------------------------------------------


def sections(body: bytes) -> dict[str, bytes]:
    """Section title (without the file key) -> its bytes, in order."""
    found: dict[str, bytes] = {}
    matches = list(HEADER.finditer(body))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(body)
        title = re.sub(r" \(file key [^)]*\)$", "", match.group(1).decode())
        assert title not in found, f"section {title!r} appears twice"
        found[title] = body[match.end() : end]
    return found


def local_file(world: World, run_id: str, file_key: str, ext: str) -> bytes:
    # LocalComputeLogManager's documented layout: <base_dir>/<run_id>/compute_logs/<file_key>.<out|err>
    return (world.local_logs / run_id / "compute_logs" / f"{file_key}.{ext}").read_bytes()


def s3_object(run_id: str, file_key: str, ext: str) -> bytes:
    # S3ComputeLogManager's layout: <prefix>/storage/<run_id>/compute_logs/<file_key>.<out|err>
    key = f"{S3_PREFIX}/storage/{run_id}/compute_logs/{file_key}.{ext}"
    return _s3().get_object(Bucket=BUCKET, Key=key)["Body"].read()


def step_captures(instance: DagsterInstance, run_id: str) -> dict[str, str]:
    """step key -> file key, read from the run's LOGS_CAPTURED events."""
    captures = captures_from_entries(instance.all_logs(run_id))
    return {step: c.file_key for c in captures for step in c.step_keys}


def get_logs(client: TestClient, run_id: str, **params: str) -> Any:
    return client.get(f"/finops/admin/runs/{run_id}/logs", params=params, headers=ADMIN)


def expected_stdout_lines(instance: DagsterInstance, run_id: str, domain: str) -> list[str]:
    """The summary lines the load op prints, rebuilt from the run's materialization metadata."""
    lines = []
    for entry in instance.all_logs(run_id, of_type=dagster.DagsterEventType.ASSET_MATERIALIZATION):
        meta = entry.dagster_event.event_specific_data.materialization.metadata  # type: ignore[union-attr]
        if "domain" not in meta or meta["domain"].value != domain:
            continue
        lines.append(
            f"finops.load domain={domain} period={meta['period'].value} "
            f"inserted={meta['releves_inserted'].value} deleted={meta['releves_deleted'].value}"
        )
    return lines


def assert_error(response: Any, status: int, name: str, *fragments: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["name"] == name
    assert body["response"]["statusCode"] == status
    for fragment in fragments:
        assert fragment in body["error"]["message"], body["error"]["message"]
    return body


# --- whole run and per step, local compute logs ------------------------------------------------------


def test_multiprocess_run_whole_download_is_the_event_log_and_every_step_log(world: World) -> None:
    run_id = world.runs["mp"]
    response = get_logs(world.client("local"), run_id)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["content-disposition"] == f'attachment; filename="finops-run-{run_id}.log"'
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    body = response.content
    assert body.startswith(f"# FinOps batch run {run_id} (Dagster job finops_batch, status FAILURE)".encode())
    parts = sections(body)
    captured = step_captures(world.local, run_id)
    # Each step ran in its own process: plan, then the two loads; the refresh never ran.
    assert set(captured) == {"plan_batch", "load_open", "load_native"}
    expected_titles = ["event log"] + [
        f"step {step} | {stream}"
        for step in sorted(captured, key=list(captured).index)
        for stream in ("stdout", "stderr")
    ]
    assert list(parts) == expected_titles
    for step, file_key in captured.items():
        assert parts[f"step {step} | stdout"] == local_file(world, run_id, file_key, "out")
        assert parts[f"step {step} | stderr"] == local_file(world, run_id, file_key, "err")
    # What the load op printed, on its own stdout and nowhere else.
    stdout_open = parts["step load_open | stdout"].decode()
    expected = expected_stdout_lines(world.local, run_id, "open")
    assert len(expected) == 2
    for line in expected:
        prefix, rest = line.split(" inserted=")
        assert re.search(re.escape(prefix) + r" rows_read=\d+ inserted=" + re.escape(rest), stdout_open), line
    assert "domain=native period=2026-11" in parts["step load_native | stdout"].decode()
    assert "domain=native period=2026-10" not in parts["step load_native | stdout"].decode()
    assert "finops.load" not in parts["step plan_batch | stdout"].decode()
    # The failing step's stderr carries Dagster's failure report.
    assert (
        "no landing files for domain 'native', period 2026-10" in parts["step load_native | stderr"].decode()
    )
    # Event log: one structured line per event, every step, the failure with its error.
    events = parts["event log"].decode()
    event_lines = [line for line in events.splitlines() if line and not line.startswith(" ")]
    assert len(event_lines) == len(world.local.all_logs(run_id))
    assert all(
        re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR)\s", line)
        for line in event_lines
    )
    assert re.search(r"ERROR\s+load_native\s+STEP_FAILURE\s+Execution of step \"load_native\" failed", events)
    assert "    dagster._core.definitions.events.Failure: Native: 1 of 2 period(s) failed" in events
    assert re.search(r"INFO\s+load_open\s+-\s+Open 2026-11: \d+ rows read", events)
    assert SECRET not in body


def test_per_step_and_per_stream_downloads(world: World) -> None:
    run_id = world.runs["mp"]
    client = world.client("local")
    captured = step_captures(world.local, run_id)

    by_domain = get_logs(client, run_id, step="open")
    assert by_domain.status_code == 200, by_domain.text
    assert by_domain.headers["content-disposition"] == f'attachment; filename="finops-run-{run_id}-open.log"'
    parts = sections(by_domain.content)
    assert list(parts) == ["event log", "step load_open | stdout", "step load_open | stderr"]
    assert parts["step load_open | stderr"] == local_file(world, run_id, captured["load_open"], "err")
    event_steps = {
        line.split()[2]
        for line in parts["event log"].decode().splitlines()
        if line and not line.startswith(" ")
    }
    assert event_steps == {"load_open", "-"}  # its own events, and its capture's LOGS_CAPTURED
    assert "load_native" not in parts["event log"].decode()

    # A step key works as well as a domain; the name in the file stays what was asked for.
    stderr_only = get_logs(client, run_id, step="load_native", stream="stderr")
    assert stderr_only.status_code == 200
    assert (
        'filename="finops-run-' + run_id + '-load_native.log"' in stderr_only.headers["content-disposition"]
    )
    parts = sections(stderr_only.content)
    assert list(parts) == ["step load_native | stderr"]
    assert parts["step load_native | stderr"] == local_file(world, run_id, captured["load_native"], "err")

    stdout_all = sections(get_logs(client, run_id, stream="stdout").content)
    assert list(stdout_all) == [f"step {s} | stdout" for s in captured]

    events_only = get_logs(client, run_id, step="NATIVE", stream="events")
    parts = sections(events_only.content)
    assert list(parts) == ["event log"]
    assert "STEP_FAILURE" in parts["event log"].decode()
    assert "load_open " not in parts["event log"].decode()


def test_in_process_run_shares_one_capture_between_steps(world: World) -> None:
    run_id = world.runs["inproc"]
    client = world.client("local")
    captures = captures_from_entries(world.local.all_logs(run_id))
    assert len(captures) == 1 and captures[0].shared
    capture = captures[0]
    title = "steps " + ", ".join(capture.step_keys)
    body = get_logs(client, run_id).content
    assert b"share its stdout/stderr" in body.split(b"\n=====", 1)[0]
    parts = sections(body)
    assert list(parts) == ["event log", f"{title} | stdout", f"{title} | stderr"]
    stdout = local_file(world, run_id, capture.file_key, "out")
    assert parts[f"{title} | stdout"] == stdout
    assert parts[f"{title} | stderr"] == local_file(world, run_id, capture.file_key, "err")
    for line in expected_stdout_lines(world.local, run_id, "open"):
        assert line.split(" inserted=")[0] in stdout.decode()
    # One step of an in-process run: its events, and the shared capture it wrote into.
    per_step = sections(get_logs(client, run_id, step="open").content)
    assert list(per_step) == ["event log", f"{title} | stdout", f"{title} | stderr"]
    event_steps = {
        line.split()[2]
        for line in per_step["event log"].decode().splitlines()
        if line and not line.startswith(" ")
    }
    assert event_steps == {"load_open", "-"}


# --- S3 compute logs -------------------------------------------------------------------------------


def test_s3_compute_logs_download_whole_run_and_one_step(world: World) -> None:
    run_id = world.runs["s3_mp"]
    client = world.client("s3")
    captured = step_captures(world.s3_reader, run_id)
    assert set(captured) == {"plan_batch", "load_open", "load_native"}
    # The step processes uploaded their logs and removed their local copies.
    assert not list((world.tmp / "s3_worker_cache").rglob("*.err"))
    body = get_logs(client, run_id).content
    parts = sections(body)
    for step, file_key in captured.items():
        assert parts[f"step {step} | stdout"] == s3_object(run_id, file_key, "out")
        assert parts[f"step {step} | stderr"] == s3_object(run_id, file_key, "err")
    assert "domain=open period=2026-10" in parts["step load_open | stdout"].decode()
    one = get_logs(client, run_id, step="native", stream="stdout")
    assert one.status_code == 200
    assert sections(one.content) == {
        "step load_native | stdout": s3_object(run_id, captured["load_native"], "out")
    }


def test_excerpt_of_a_failed_run_shows_the_failing_step_and_its_error(world: World) -> None:
    for instance, run_id in ((world.local, world.runs["mp"]), (world.s3_reader, world.runs["s3_mp"])):
        excerpt = build_excerpt(DagsterReader(instance), run_id)
        assert excerpt is not None
        # load_open failed first or second depending on scheduling: both miss 2026-10... only native does.
        assert excerpt.step_key == "load_native"
        lines = excerpt.lines
        assert 1 <= len(lines) <= 45
        text = "\n".join(lines)
        assert (
            "Native 2026-10: quality gate empty: no landing files for domain 'native', period 2026-10" in text
        )
        assert "Failure: Native: 1 of 2 period(s) failed" in text
        # The lines are the end of the step's stderr, as stored.
        file_key = step_captures(instance, run_id)["load_native"]
        stored = (
            local_file(world, run_id, file_key, "err")
            if instance is world.local
            else s3_object(run_id, file_key, "err")
        )
        tail = stored.decode().splitlines()[-40:]
        assert lines[: len(tail)] == tail
    assert build_excerpt(DagsterReader(world.local), world.runs["inproc"]) is None  # SUCCESS
    assert build_excerpt(DagsterReader(world.local), world.runs["queued"]) is None


def test_excerpt_degrades_to_the_error_message_when_logs_cannot_be_read(world: World) -> None:
    excerpt = build_excerpt(DagsterReader(world.s3_broken), world.runs["s3_mp"])
    assert excerpt is not None and excerpt.step_key == "load_native"
    text = "\n".join(excerpt.lines)
    assert "could not be read" in text
    assert "Failure: Native: 1 of 2 period(s) failed" in text


def kibana_window(url: str) -> tuple[str, str]:
    match = re.search(r"time:\(from:'([^']*)',to:'([^']*)'\)", unquote(urlsplit(url).fragment))
    assert match, url
    return match.group(1), match.group(2)


def shifted(iso: str, seconds: float) -> str:
    moment = datetime.fromisoformat(iso).astimezone(UTC) + timedelta(seconds=seconds)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_run_detail_carries_the_excerpt_and_external_links(world: World) -> None:
    client = world.client("local")
    run_id = world.runs["mp"]
    body = client.get(f"/finops/admin/runs/{run_id}", headers=ADMIN).json()
    assert body["status"] == "FAILED"
    excerpt = build_excerpt(DagsterReader(world.local), run_id)
    assert excerpt is not None and body["logs"]["excerpt"] == excerpt.model_dump(by_alias=True)
    assert body["logs"]["excerpt"]["stepKey"] == "load_native"
    assert body["links"]["dagster"] == f"https://dagster.example.com/runs/{run_id}"
    assert body["logs"]["dagsterUrl"] == body["links"]["dagster"]
    external = body["links"]["external"]
    assert external == body["logs"]["externalUrl"]
    # FINOPS_LOGS_URL_MARGIN_SECONDS=120 around the run.
    assert kibana_window(external) == (shifted(body["startTime"], -120), shifted(body["endTime"], 120))
    assert f'dagster.run_id:"{run_id}" and dagster.step_key:*' in unquote(urlsplit(external).fragment)
    blocks = {b["domain"]: b for b in body["blocks"]}
    native = blocks["native"]
    assert f"dagster.step_key:{native['stepKey']}*" in unquote(urlsplit(native["links"]["external"]).fragment)
    assert kibana_window(native["links"]["external"]) == (
        shifted(native["startTime"], -120),
        shifted(native["endTime"], 120),
    )
    # A domain that did not run is searched over the whole run's window.
    assert blocks["private"]["status"] == "NOT_SELECTED"
    assert kibana_window(blocks["private"]["links"]["external"]) == kibana_window(external)
    # Log content is for admins; a reader sees the detail without it.
    as_reader = client.get(
        f"/finops/admin/runs/{run_id}", headers={"Authorization": f"Bearer {READER_TOKEN}"}
    )
    assert as_reader.status_code == 200 and as_reader.json()["logs"]["excerpt"] is None
    ok = client.get(f"/finops/admin/runs/{world.runs['inproc']}", headers=ADMIN).json()
    assert ok["status"] == "SUCCESS" and ok["logs"]["excerpt"] is None


# --- errors ----------------------------------------------------------------------------------------


def test_unknown_and_other_job_runs_are_404(world: World) -> None:
    client = world.client("local")
    assert_error(get_logs(client, str(uuid.uuid4())), 404, "NotFoundError", "no run")
    assert_error(get_logs(client, world.runs["other"]), 404, "NotFoundError", "not_the_finops_batch")


def test_logs_never_captured_or_expired_are_404_naming_the_event_log(world: World) -> None:
    client = world.client("local")
    queued = world.runs["queued"]
    body = assert_error(get_logs(client, queued), 404, "NotFoundError", "no compute logs were captured")
    assert f"/finops/admin/runs/{queued}/logs?stream=events" in body["error"]["message"]
    events = get_logs(client, queued, stream="events")
    assert events.status_code == 200 and list(sections(events.content)) == ["event log"]

    expired = world.runs["expired"]
    body = assert_error(
        get_logs(client, expired), 404, "NotFoundError", "no longer in the compute log storage"
    )
    assert "stream=events" in body["error"]["message"]
    assert_error(
        get_logs(client, expired, step="public", stream="stdout"), 404, "NotFoundError", "step=public"
    )
    kept = sections(get_logs(client, expired, stream="events").content)["event log"].decode()
    assert "STEP_SUCCESS" in kept
    # A step that never ran in a run that did: its events remain, its output never existed.
    assert_error(get_logs(client, world.runs["mp"], step="public"), 404, "NotFoundError", "never ran")


@pytest.mark.parametrize(
    "step",
    [
        "../../etc/passwd",
        "%2e%2e%2f%2e%2e%2fsecret",
        "..%2F..%2Fsecret",
        "/etc/passwd",
        str(Path(__file__).resolve()),
        "load_open/../../secret",
        "load_open\x00",
        "..",
        "secret",
        "compute_logs",
        "Load_Open",
        "x" * 200,
    ],
)
def test_a_step_not_in_the_run_is_400_listing_its_steps(world: World, step: str) -> None:
    run_id = world.runs["mp"]
    response = get_logs(world.client("local"), run_id, step=step)
    body = assert_error(
        response,
        400,
        "InputError",
        f"is not a step of run {run_id}",
        "steps: plan_batch, load_native, load_open, load_private, load_public, refresh_materialized_views",
    )
    assert SECRET.decode() not in json.dumps(body)


@pytest.mark.parametrize(
    "path",
    [
        "/finops/admin/runs/..%2F..%2Fsecret/logs",
        "/finops/admin/runs/%2e%2e/logs",
        "/finops/admin/runs/%2Fetc%2Fpasswd/logs",
        "/finops/admin/runs/..%00/logs",
        "/finops/admin/runs/secret.out/logs",
    ],
)
def test_run_ids_that_are_paths_never_reach_the_storage(world: World, path: str) -> None:
    response = world.client("local").get(path, headers=ADMIN)
    assert response.status_code in (400, 404), response.text
    assert response.json()["error"]["name"] in ("InputError", "NotFoundError")
    assert SECRET not in response.content


def test_bad_stream_too_long_step_and_roles(world: World) -> None:
    client = world.client("local")
    run_id = world.runs["mp"]
    assert_error(get_logs(client, run_id, stream="../out"), 400, "InputError", "stream")
    assert_error(get_logs(client, run_id, step="x" * 201), 400, "InputError", "step")
    no_token = client.get(f"/finops/admin/runs/{run_id}/logs")
    assert_error(no_token, 401, "AuthenticationError")
    reader = client.get(
        f"/finops/admin/runs/{run_id}/logs", headers={"Authorization": f"Bearer {READER_TOKEN}"}
    )
    assert_error(reader, 403, "NotAllowedError", "logs")


def test_unreachable_object_storage_is_503_before_any_byte(world: World) -> None:
    client = world.client("broken")
    run_id = world.runs["s3_mp"]
    body = assert_error(
        get_logs(client, run_id), 503, "ServiceUnavailableError", "compute log storage failed"
    )
    assert "EndpointConnectionError" in body["error"]["message"] or "Connect" in body["error"]["message"]
    assert_error(get_logs(client, run_id, step="open", stream="stderr"), 503, "ServiceUnavailableError")
    # The event log lives in Dagster's database, not in the object storage: still served.
    events = get_logs(client, run_id, stream="events")
    assert events.status_code == 200 and "STEP_FAILURE" in events.text
    # Nothing half-downloaded was left in the reader's cache to pass later for a whole log.
    assert not [p for p in (world.tmp / "broken_cache").rglob("*") if p.is_file() and p.stat().st_size]


def test_small_reads_reassemble_the_file_and_a_storage_lost_mid_stream_aborts_it(world: World) -> None:
    run_id = world.runs["s3_mp"]
    download = prepare_download(DagsterReader(world.s3_reader), run_id, step="native", stream="stderr")
    download.chunk_bytes = 1000  # many reads at growing offsets instead of one
    body = b"".join(download.chunks())
    file_key = step_captures(world.s3_reader, run_id)["load_native"]
    assert sections(body) == {"step load_native | stderr": s3_object(run_id, file_key, "err")}
    # Checked, then the storage goes away before the bytes are read: the stream says so and fails.
    download = prepare_download(DagsterReader(world.s3_reader), run_id, step="open", stream="stdout")
    download.source = DagsterReader(world.s3_broken)
    received = []
    with pytest.raises(DagsterUnavailable):
        for chunk in download.chunks():
            received.append(chunk)
    assert (
        b"".join(received)
        .rstrip()
        .splitlines()[-1]
        .startswith(b"!!!!! download interrupted: the compute log")
    )


# --- pure parts on real records ----------------------------------------------------------------------


def test_event_lines_of_real_records(world: World) -> None:
    entries = world.local.all_logs(world.runs["mp"])
    lines = [format_event(entry) for entry in entries]
    assert all(line.endswith("\n") for line in lines)
    failure = next(
        line
        for line, entry in zip(lines, entries, strict=True)
        if entry.dagster_event and entry.dagster_event.event_type_value == "STEP_FAILURE"
    )
    head, *rest = failure.splitlines()
    assert "load_native" in head and "STEP_FAILURE" in head
    assert rest and all(not line or line.startswith("    ") for line in rest)
    assert any("Stack Trace:" in line for line in rest)


# --- links -----------------------------------------------------------------------------------------


def test_kibana_template_renders_iso_times_with_margin_and_encoded_values() -> None:
    url = external_link(
        KIBANA_TEMPLATE,
        run_id="c9346ded-51eb-45de-a874-7cc1f90b5c6c",
        domain="native",
        step_key="load_native",
        start="2026-11-24T02:50:05.100000+00:00",
        end=datetime(2026, 11, 24, 2, 51, 0, tzinfo=UTC),
    )
    assert url is not None
    fragment = unquote(urlsplit(url).fragment)
    assert "_g=(time:(from:'2026-11-24T02:45:05.100Z',to:'2026-11-24T02:56:00.000Z'))" in fragment
    assert (
        'dagster.run_id:"c9346ded-51eb-45de-a874-7cc1f90b5c6c" and dagster.step_key:load_native*' in fragment
    )
    assert "%3A" in url  # the time's colons are encoded, the template's own characters are not
    running = external_link(KIBANA_TEMPLATE, run_id="r1", start="2026-11-24T02:50:05Z", end=None)
    assert running is not None and "to:'now'" in running
    assert "from:'2026-11-24T02%3A45%3A05.000Z'" in running


def test_grafana_loki_template_renders_epoch_milliseconds() -> None:
    url = external_link(
        GRAFANA_TEMPLATE,
        run_id="abc-123",
        start=datetime(2026, 11, 24, 2, 50, 5, tzinfo=UTC),
        end=datetime(2026, 11, 24, 3, 0, 0, tzinfo=UTC),
        margin_seconds=60,
    )
    assert url is not None and url.startswith("https://grafana.example.com/explore?")
    panes = json.loads(parse_qs(urlsplit(url).query)["panes"][0])
    pane = panes["finops"]
    assert pane["datasource"] == "loki"
    assert pane["queries"] == [
        {
            "refId": "A",
            "datasource": {"type": "loki", "uid": "loki"},
            "expr": '{service_name="dagster"} |= "abc-123"',
        }
    ]
    start_ms = int(datetime(2026, 11, 24, 2, 49, 5, tzinfo=UTC).timestamp() * 1000)
    end_ms = int(datetime(2026, 11, 24, 3, 1, 0, tzinfo=UTC).timestamp() * 1000)
    assert pane["range"] == {"from": str(start_ms), "to": str(end_ms)}


def test_values_are_encoded_and_bad_templates_give_no_link() -> None:
    url = external_link(
        "https://logs.example.com/q?run={runId}&d={domain}&s={start:s}",
        run_id="a b&c=/../",
        domain="é",
        start=0,
    )
    assert url == "https://logs.example.com/q?run=a%20b%26c%3D%2F..%2F&d=%C3%A9&s=-300"
    assert external_link("", run_id="r") is None
    assert external_link("javascript:alert({runId})", run_id="r") is None
    assert external_link("https://x.example.com/{runid}", run_id="r") is None
    assert external_link("https://x.example.com/{runId:ms}", run_id="r") is None
    assert template_problems("https://x.example.com/{start:epoch}")
    assert len(DOC_TEMPLATES) == 3
    for template in DOC_TEMPLATES:
        assert template_problems(template) == [], template
        url = external_link(template, run_id="r-1", start=0, end=60)
        assert url is not None and "r-1" in url and "{" not in url.replace("%7B", "")
