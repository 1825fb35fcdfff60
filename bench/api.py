"""Admin API benchmark: the run list and detail against Dagster's GraphQL, at 1k, 10k and 100k runs.

On one embedded PostgreSQL (pgserver) started here:

1. real `finops_batch` runs are executed once, one per kind of run (every
   domain by the schedule, one or two domains by hand, a reprocess, a failed
   domain, a failed plan, a canceled run);
2. for each size, a fresh Postgres-backed Dagster instance gets that many
   clones of them, with their whole event streams, bulk-loaded into Dagster's
   tables (see `api_history.py`) and read back through `DagsterInstance`, then
   the admin read model is built by the project's own `reindex`;
3. for every size at once, the admin API (as `finops serve` runs it: uvicorn on
   its bounded h11 protocol, auth mode `dev`) and dagster-webserver (same
   instance, the FinOps code location) run as subprocesses on 127.0.0.1;
4. in rounds, every endpoint of every size is timed once per round, in random
   order: `GET /finops/admin/runs` (first page, 50 runs), the same filtered by
   domain + period + trigger, `GET /finops/admin/runs/{id}` (ids across the
   whole history), `GET /finops/admin/healthz`, and Dagster GraphQL `runsOrError` with `stepStats` for the
   same 50-run page, unfiltered and filtered with `RunsFilter.tags` (trigger,
   periods, domains). The run ids of both sides' pages are compared first.

Targets (at the largest size, scaling against the smallest): list p95 <= 25 ms,
list at least 5x faster than the GraphQL query (p50 and p95), list p95 at most
1.5x its value at the smallest size. Prints a table and the ratios; exits 1 with
`FAILED:` lines when a target is missed.

    .venv/bin/python bench/api.py [--sizes 1000,10000,100000] [--requests 200] [--data-dir bench/.data]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import api_history
from api_servers import (
    HttpClient,
    Server,
    admin_api,
    create_database,
    dagster_webserver,
    free_port,
    start_postgres,
    write_dagster_yaml,
)
from common import workdir

from finops_pipeline.contract import DOMAINS, JOB_NAME, TRIGGER_CRON
from finops_pipeline.periods import add_months, format_period

TARGET_P95_MS: Final = 25.0
TARGET_VS_GRAPHQL: Final = 5.0
TARGET_SCALING: Final = 1.5
PAGE: Final = 50
API: Final = "/finops/admin"

LIST = "GET /runs"
LIST_FILTERED = "GET /runs?domain&period&trigger"
DETAIL = "GET /runs/{id}"
HEALTHZ = "GET /healthz"
GQL = "GraphQL runsOrError+stepStats"
GQL_FILTERED = "GraphQL runsOrError+stepStats, tags"
ENDPOINTS: Final = (LIST, LIST_FILTERED, DETAIL, HEALTHZ, GQL, GQL_FILTERED)
# Each API list beside the GraphQL query that answers the same question.
PAIRS: Final = ((LIST, GQL), (LIST_FILTERED, GQL_FILTERED))


def _log(message: str) -> None:
    print(message, flush=True)


@dataclass
class SizeResult:
    runs: int
    events: int
    load_seconds: float
    reindex_seconds: float
    filtered_total: int
    graphql_filtered_results: int
    same_page: bool
    same_filtered_page: bool
    timings: dict[str, list[float]] = field(default_factory=dict)
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def p(self, endpoint: str, q: float) -> float:
        """Percentile `q` (0-100) in ms, nearest rank."""
        values = sorted(self.timings[endpoint])
        rank = max(1, math.ceil(q / 100 * len(values)))
        return values[rank - 1] * 1000

    def mean(self, endpoint: str) -> float:
        return statistics.fmean(self.timings[endpoint]) * 1000


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default="1000,10000,100000",
        help="comma-separated run counts, each on a fresh Dagster instance (default 1000,10000,100000)",
    )
    parser.add_argument(
        "--requests", type=int, default=200, help="timed rounds: requests per endpoint and size (default 200)"
    )
    parser.add_argument("--warmup", type=int, default=10, help="untimed rounds before timing (default 10)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where PostgreSQL, the landing files and logs live, kept after the run "
        "(default: a temporary directory, removed after)",
    )
    parser.add_argument("--seed", type=int, default=20261124, help="seed of the history and request order")
    args = parser.parse_args(argv)
    try:
        args.sizes = sorted({int(part) for part in args.sizes.split(",") if part.strip()})
    except ValueError:
        parser.error(f"--sizes must be comma-separated integers, got {args.sizes!r}")
    if not args.sizes or args.sizes[0] < PAGE:
        parser.error(f"--sizes: every size must be at least {PAGE} (one full page), got {args.sizes}")
    if args.requests < 20:
        parser.error(f"--requests must be at least 20 for a p95, got {args.requests}")
    if args.warmup < 0:
        parser.error(f"--warmup must be 0 or more, got {args.warmup}")
    return args


def _ids(payload: bytes, graphql: bool) -> list[str]:
    data = json.loads(payload)
    if graphql:
        runs = data["data"]["runsOrError"]
        if runs.get("__typename") != "Runs":
            raise RuntimeError(f"GraphQL runsOrError answered {runs}")
        return [r["runId"] for r in runs["results"]]
    return [item["runId"] for item in data["items"]]


@dataclass
class Prepared:
    """One size, loaded into Dagster and projected into its read model."""

    size: int
    home: Path
    admin_url: str
    history: api_history.History
    reindex_seconds: float
    databases: tuple[str, str]


def _prepare(
    size: int,
    args: argparse.Namespace,
    work: Path,
    base_url: str,
    template_url: str,
    scenarios: list[api_history.Scenario],
) -> Prepared:
    from dagster import DagsterInstance

    from finops_admin_plugin.readmodel import ReadModel, reindex
    from finops_admin_plugin.settings import AdminSettings

    _log(f"\n== {size:,} runs")
    dagster_db, admin_db = f"bench_api_dagster_{size}", f"bench_api_admin_{size}"
    storage_url = create_database(base_url, dagster_db)
    admin_url = create_database(base_url, admin_db)
    home = work / f"dagster_{size}"
    write_dagster_yaml(home, storage_url)
    DagsterInstance.from_config(str(home)).dispose()  # creates Dagster's tables, as any instance would
    _log(f"loading {size:,} cloned runs into Dagster's tables")
    history = api_history.load_history(storage_url, template_url, scenarios, size, seed=args.seed, log=_log)
    _log(f"  {history.events:,} events in {history.seconds:.0f} s; mix: {history.by_scenario}")
    api_history.verify_history(home, history, scenarios)
    _log("  read back through DagsterInstance: counts, run records, event logs, step stats ok")
    started = time.perf_counter()
    projected = reindex(AdminSettings(FINOPS_DATABASE_URL=admin_url, DAGSTER_HOME=str(home)))
    reindex_seconds = time.perf_counter() - started
    store = ReadModel(admin_url, max_connections=1)
    try:
        stored = store.count()
    finally:
        store.close()
    if projected != size or stored != size:
        raise RuntimeError(f"reindex projected {projected} runs and stored {stored}; {size} were loaded")
    _log(f"  finops reindex: {projected:,} runs in {reindex_seconds:.0f} s")
    return Prepared(size, home, admin_url, history, reindex_seconds, (dagster_db, admin_db))


@dataclass
class Target:
    """The servers of one size and the requests sent to them."""

    prepared: Prepared
    api: HttpClient
    gql: HttpClient
    list_path: str
    filtered_path: str
    gql_all: dict[str, Any]
    gql_filtered: dict[str, Any]
    result: SizeResult

    def request(self, endpoint: str, index: int) -> float:
        if endpoint == LIST:
            return self.api.timed_get(self.list_path)[0]
        if endpoint == LIST_FILTERED:
            return self.api.timed_get(self.filtered_path)[0]
        if endpoint == DETAIL:
            ids = self.prepared.history.run_ids
            return self.api.timed_get(f"{API}/runs/{ids[index % len(ids)]}")[0]
        if endpoint == HEALTHZ:
            return self.api.timed_get(f"{API}/healthz")[0]
        if endpoint == GQL:
            return self.gql.timed_graphql(self.gql_all)[0]
        return self.gql.timed_graphql(self.gql_filtered)[0]


def _target(prepared: Prepared, api_port: int, dagster_port: int) -> Target:
    """Requests of one size, after checking that both sides answer the same page."""
    newest_month = prepared.history.newest_start.date().replace(day=1)
    p0, p1 = format_period(newest_month), format_period(add_months(newest_month, -1))
    list_path = f"{API}/runs?limit={PAGE}"
    filtered_path = f"{API}/runs?limit={PAGE}&domain=open&period={p0}&trigger={TRIGGER_CRON}"
    # GraphQL filters tags by exact value: the CRON runs of the newest month carry exactly these.
    gql_all: dict[str, Any] = {"limit": PAGE, "filter": {"pipelineName": JOB_NAME}}
    gql_filtered: dict[str, Any] = {
        "limit": PAGE,
        "filter": {
            "pipelineName": JOB_NAME,
            "tags": [
                {"key": "finops/trigger", "value": TRIGGER_CRON},
                {"key": "finops/periods", "value": f"{p0},{p1}"},
                {"key": "finops/domains", "value": ",".join(DOMAINS)},
            ],
        },
    }
    api, gql = HttpClient(api_port), HttpClient(dagster_port)
    api_page = _ids(api.timed_get(list_path)[1], graphql=False)
    gql_page = _ids(gql.timed_graphql(gql_all)[1], graphql=True)
    filtered_body = json.loads(api.timed_get(filtered_path)[1])
    api_filtered = [item["runId"] for item in filtered_body["items"]]
    gql_filtered_page = _ids(gql.timed_graphql(gql_filtered)[1], graphql=True)
    if len(api_page) != PAGE or not api_filtered:
        raise RuntimeError(
            f"API pages of {len(api_page)} and {len(api_filtered)} runs; expected {PAGE} and >0"
        )
    size = prepared.size
    _log(
        f"  {size:,} runs, first page: API and GraphQL return "
        f"{'the same' if api_page == gql_page else 'DIFFERENT'} {PAGE} runs; filtered ({p0}, open, CRON): "
        f"API {len(api_filtered)} of {filtered_body['totalItems']:,}, GraphQL {len(gql_filtered_page)}, "
        f"{'same' if api_filtered == gql_filtered_page else 'DIFFERENT'} runs"
    )
    result = SizeResult(
        runs=size,
        events=prepared.history.events,
        load_seconds=prepared.history.seconds,
        reindex_seconds=prepared.reindex_seconds,
        filtered_total=int(filtered_body["totalItems"]),
        graphql_filtered_results=len(gql_filtered_page),
        same_page=api_page == gql_page,
        same_filtered_page=api_filtered == gql_filtered_page,
        timings={name: [] for name in ENDPOINTS},
    )
    return Target(prepared, api, gql, list_path, filtered_path, gql_all, gql_filtered, result)


def _serve_and_time(
    prepared: list[Prepared], args: argparse.Namespace, work: Path, warehouse_url: str, landing: Path
) -> list[SizeResult]:
    """Start both servers of every size, then time every endpoint of every size, interleaved.

    Interleaving sizes and endpoints in random order within each round makes the
    ratios immune to the machine's load changing during the run: every figure
    is sampled over the same minutes.
    """
    servers: list[Server] = []
    targets: list[Target] = []
    try:
        for item in prepared:
            api_port, dagster_port = free_port(), free_port()
            api = admin_api(
                api_port,
                {
                    "FINOPS_DATABASE_URL": item.admin_url,
                    "DAGSTER_HOME": str(item.home),
                    "FINOPS_AUTH_MODE": "dev",
                    "FINOPS_API_HOST": "127.0.0.1",
                    "FINOPS_API_PORT": str(api_port),
                    "FINOPS_DAGSTER_UI_URL": f"http://127.0.0.1:{dagster_port}",
                },
                work / f"api_{item.size}.log",
            )
            webserver = dagster_webserver(
                dagster_port,
                {
                    "DAGSTER_HOME": str(item.home),
                    "FINOPS_DATABASE_URL": warehouse_url,
                    "FINOPS_LANDING_URI": str(landing),
                },
                work / f"dagster_webserver_{item.size}.log",
            )
            for server in (api, webserver):
                servers.append(server)
                server.start()
        _log("\nadmin API and dagster-webserver up for every size")
        for item, (api, webserver) in zip(
            prepared, zip(servers[::2], servers[1::2], strict=True), strict=True
        ):
            targets.append(_target(item, api.port, webserver.port))
        rng = random.Random(args.seed)
        work_items = [(t, name) for t in targets for name in ENDPOINTS]
        for i in range(args.warmup):
            for target, name in work_items:
                target.request(name, i)
        load_before = os.getloadavg()
        _log(
            f"timing {args.requests} rounds of {len(work_items)} requests (every endpoint of every size, "
            f"random order), load average {_load(load_before)}"
        )
        started = time.perf_counter()
        for i in range(args.requests):
            rng.shuffle(work_items)
            for target, name in work_items:
                target.result.timings[name].append(target.request(name, i))
            if (i + 1) % 50 == 0:
                elapsed = time.perf_counter() - started
                _log(f"  {i + 1} rounds in {elapsed:.0f} s, load average {_load(os.getloadavg())}")
        load_after = os.getloadavg()
    finally:
        for target in targets:
            target.api.close()
            target.gql.close()
        for server in servers:
            server.stop()
    for target in targets:
        target.result.load_before, target.result.load_after = load_before, load_after
    return [t.result for t in targets]


def _load(values: tuple[float, float, float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


def _report(results: list[SizeResult]) -> int:
    print("\nAdmin API and Dagster GraphQL, same instance, same run (ms; nearest-rank percentiles)")
    print(f"{'runs':>9} | {'endpoint':<38} | {'p50':>7} | {'p95':>7} | {'mean':>7} | {'max':>7} | n")
    print("-" * 92)
    for r in results:
        for name in ENDPOINTS:
            print(
                f"{r.runs:>9,} | {name:<38} | {r.p(name, 50):7.2f} | {r.p(name, 95):7.2f} | "
                f"{r.mean(name):7.2f} | {max(r.timings[name]) * 1000:7.2f} | {len(r.timings[name])}"
            )
        print(
            f"{'':>9} | {r.events:,} events loaded in {r.load_seconds:.0f} s, "
            f"reindex {r.reindex_seconds:.0f} s; filtered: {r.filtered_total:,} runs (API), "
            f"GraphQL page {r.graphql_filtered_results}"
        )
    print(
        f"load average (1, 5, 15 min) {_load(results[0].load_before)} before the timed rounds, "
        f"{_load(results[0].load_after)} after"
    )
    failures: list[str] = []
    print("\nGraphQL / API (how many times faster the API list answers the same page)")
    for r in results:
        for api_name, gql_name in PAIRS:
            p50 = r.p(gql_name, 50) / r.p(api_name, 50)
            p95 = r.p(gql_name, 95) / r.p(api_name, 95)
            print(f"  {r.runs:>9,} runs  {api_name:<34} p50 {p50:6.1f}x   p95 {p95:6.1f}x")
    largest, smallest = results[-1], results[0]
    print(f"\nScaling: API list at {largest.runs:,} runs / at {smallest.runs:,} runs")
    for api_name, _ in PAIRS:
        print(
            f"  {api_name:<34} p50 {largest.p(api_name, 50) / smallest.p(api_name, 50):5.2f}x   "
            f"p95 {largest.p(api_name, 95) / smallest.p(api_name, 95):5.2f}x"
        )
    if largest.runs != 100_000 or smallest.runs != 1_000:
        print(
            f"\nnote: the targets are defined at 100,000 runs (scaling against 1,000); checked here at "
            f"{largest.runs:,} (against {smallest.runs:,})"
        )
    for api_name, gql_name in PAIRS:
        p95 = largest.p(api_name, 95)
        if p95 > TARGET_P95_MS:
            failures.append(f"{api_name} p95 {p95:.2f} ms at {largest.runs:,} runs > {TARGET_P95_MS:.0f} ms")
        for q in (50, 95):
            ratio = largest.p(gql_name, q) / largest.p(api_name, q)
            if ratio < TARGET_VS_GRAPHQL:
                failures.append(
                    f"{api_name} p{q} only {ratio:.1f}x faster than {gql_name} at {largest.runs:,} runs "
                    f"(target {TARGET_VS_GRAPHQL:.0f}x)"
                )
        if len(results) > 1:
            scaling = largest.p(api_name, 95) / smallest.p(api_name, 95)
            if scaling > TARGET_SCALING:
                failures.append(
                    f"{api_name} p95 {scaling:.2f}x slower at {largest.runs:,} runs than at "
                    f"{smallest.runs:,} (target <= {TARGET_SCALING}x)"
                )
    for r in results:
        if not r.same_page:
            failures.append(
                f"the API and GraphQL first pages differ at {r.runs:,} runs: not the same 50 runs"
            )
    print()
    for failure in failures:
        print(f"FAILED: {failure}")
    if not failures:
        print(
            f"all targets met: list p95 <= {TARGET_P95_MS:.0f} ms, >= {TARGET_VS_GRAPHQL:.0f}x faster than "
            f"GraphQL, <= {TARGET_SCALING}x from {smallest.runs:,} to {largest.runs:,} runs"
        )
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    from finops_admin_plugin import __version__

    _log(
        f"admin API benchmark {__version__}: sizes {args.sizes}, {args.requests} requests per endpoint; "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average {_load(os.getloadavg())}"
    )
    with workdir(args.data_dir, "finops-bench-api-") as work:
        server, base_url = start_postgres(work)
        try:
            _log("recording real finops_batch runs (one per scenario)")
            template_url = create_database(base_url, "bench_api_recorded")
            warehouse_url = create_database(base_url, "bench_api_warehouse")
            template_home = work / "dagster_recorded"
            write_dagster_yaml(template_home, template_url)
            landing = work / "landing"
            started = time.perf_counter()
            scenarios = api_history.record_scenarios(
                template_home, template_url, warehouse_url, landing, work / "recorded_runs.log"
            )
            _log(
                f"  {len(scenarios)} runs in {time.perf_counter() - started:.0f} s: "
                + ", ".join(f"{s.spec.name} {s.status} ({s.event_count} events)" for s in scenarios)
            )
            prepared = [_prepare(size, args, work, base_url, template_url, scenarios) for size in args.sizes]
            results = _serve_and_time(prepared, args, work, warehouse_url, landing)
        finally:
            server.cleanup()
    _log(f"finished {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    return _report(results)


if __name__ == "__main__":
    sys.exit(main())
