"""The `finops` command line: dev, serve, batch, reindex, demo-data."""

from __future__ import annotations

import argparse
import getpass
import importlib.util
import os
import sys
from collections.abc import Sequence
from typing import Any

from finops_pipeline.contract import DOMAINS, batch_run_config

__all__ = ["main"]


class CliError(Exception):
    """A problem the user can fix; printed without a traceback."""


def _require_env(*names: str) -> None:
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        raise CliError(
            f"missing environment variable(s): {', '.join(missing)}. Set them (see README.md "
            "'Configuration'), or run `source .finops/env.sh` after `finops dev` has started once."
        )


def _s3_client_factory() -> Any:
    from dagster_aws.s3 import S3Resource

    return S3Resource().get_client


def cmd_dev(args: argparse.Namespace) -> int:
    # pgserver is an extra: a production install (the image) has no embedded PostgreSQL.
    if importlib.util.find_spec("pgserver") is None:
        raise CliError(
            "the embedded stack needs pgserver, which is not installed: "
            "pip install 'finops-batch-admin[dev]' (from a checkout: make dev)"
        )
    from finops_cli.devstack import DevStack

    return DevStack(
        home=args.home, api_port=args.api_port, dagster_port=args.dagster_port, seed=not args.no_seed
    ).run()


def cmd_serve(args: argparse.Namespace) -> int:
    from finops_admin_plugin.app import create_app
    from finops_admin_plugin.http.server import serve
    from finops_admin_plugin.settings import get_settings

    settings = get_settings()
    if args.host:
        settings = settings.model_copy(update={"api_host": args.host})
    if args.port:
        settings = settings.model_copy(update={"api_port": args.port})
    from finops_admin_plugin.auth import AuthConfigError, DevModeBindError

    try:
        app = create_app(settings)
    except (AuthConfigError, DevModeBindError) as exc:
        raise CliError(str(exc)) from None
    serve(app, settings.api_host, settings.api_port)
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    _require_env("DAGSTER_HOME", "FINOPS_DATABASE_URL", "FINOPS_LANDING_URI")
    from finops_pipeline.contract import TRIGGER_MANUAL, batch_tags, normalize_domains
    from finops_pipeline.periods import PeriodError, normalize_periods

    try:
        periods = normalize_periods(args.period)
        domains = normalize_domains(args.domain or list(DOMAINS))
    except (PeriodError, ValueError) as exc:
        raise CliError(str(exc)) from None
    requested_by = args.requested_by or f"user:default/{getpass.getuser()}"
    tags = batch_tags(trigger=TRIGGER_MANUAL, periods=periods, domains=domains, requested_by=requested_by)
    run_config = batch_run_config(periods, domains, in_process=args.in_process)
    print(f"finops batch: periods {', '.join(periods)}; domains {', '.join(domains)}", flush=True)
    from finops_cli.batch import execute_here, follow_run, submit_run

    ui = os.environ.get("FINOPS_DAGSTER_UI_URL", "").rstrip("/")
    if args.local:
        run_id, success = execute_here(run_config, tags)
        print(f"run {run_id}: {'SUCCESS' if success else 'FAILED'}")
        if ui:
            print(f"  {ui}/runs/{run_id}")
        return 0 if success else 1
    try:
        run_id = submit_run(run_config, tags)
    except RuntimeError as exc:
        raise CliError(str(exc)) from None
    print(f"submitted run {run_id}; the Dagster daemon launches it" + (f": {ui}/runs/{run_id}" if ui else ""))
    try:
        status = follow_run(run_id)
    except KeyboardInterrupt:
        print(f"\nstopped following run {run_id}; it goes on (cancel it from the Dagster UI)")
        return 130
    return 0 if status == "SUCCESS" else 1


def cmd_reindex(args: argparse.Namespace) -> int:
    _require_env("DAGSTER_HOME", "FINOPS_DATABASE_URL")
    from finops_admin_plugin.readmodel import reindex
    from finops_admin_plugin.settings import get_settings

    count = reindex(get_settings())
    print(f"read model rebuilt from Dagster storage: {count} run(s)")
    return 0


def cmd_demo_data(args: argparse.Namespace) -> int:
    from finops_pipeline.demo_data import write_demo_landing

    broken = None
    if args.broken:
        domain, _, period = args.broken.partition("/")
        if domain not in DOMAINS or not period:
            raise CliError(f"--broken must be DOMAIN/YYYY-MM (e.g. native/2026-09), got {args.broken!r}")
        broken = (domain, period)
    try:
        summary = write_demo_landing(
            args.dest,
            months=args.months,
            scale=args.scale,
            broken=broken,
            s3_client_factory=_s3_client_factory() if args.dest.startswith("s3://") else None,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    total = sum(summary["rows"].values())
    print(
        f"wrote {len(summary['files'])} file(s), {total} cost records for "
        f"{', '.join(summary['periods'])} under {args.dest}"
    )
    return 0


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {number}")
    return number


def _port(value: str) -> int:
    number = _positive_int(value)
    if number > 65535:
        raise argparse.ArgumentTypeError(f"a port is at most 65535, got {number}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="finops", description="FinOps Batch Admin")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = sub.add_parser("dev", help="run the whole stack on the embedded default")
    dev.add_argument("--home", default=".finops", help="state folder (default .finops)")
    dev.add_argument("--api-port", type=_port, default=7007, help="admin API port (default 7007)")
    dev.add_argument("--dagster-port", type=_port, default=3000, help="Dagster UI port (default 3000)")
    dev.add_argument("--no-seed", action="store_true", help="no demo landing data, no seeded runs")
    dev.set_defaults(func=cmd_dev)

    serve = sub.add_parser("serve", help="the admin API alone, configured from the environment")
    serve.add_argument("--host", help="listen address (default FINOPS_API_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=_port, help="listen port (default FINOPS_API_PORT or 7007)")
    serve.set_defaults(func=cmd_serve)

    batch = sub.add_parser("batch", help="a manual batch run")
    batch.add_argument("--period", action="extend", nargs="+", required=True, metavar="YYYY-MM")
    batch.add_argument("--domain", action="extend", nargs="+", choices=DOMAINS, metavar="DOMAIN",
                       help=f"any of {', '.join(DOMAINS)} (default: all)")  # fmt: skip
    batch.add_argument("--requested-by", help="Backstage entity ref (default user:default/<you>)")
    batch.add_argument("--in-process", action="store_true", help="run every step in the run worker's process")
    batch.add_argument("--local", action="store_true",
                       help="execute the run in this process, not through the daemon")  # fmt: skip
    batch.set_defaults(func=cmd_batch)

    reindex = sub.add_parser("reindex", help="rebuild the admin read model from Dagster storage")
    reindex.set_defaults(func=cmd_reindex)

    demo = sub.add_parser("demo-data", help="write demo FOCUS landing files")
    demo.add_argument("--months", type=_positive_int, default=6)
    demo.add_argument("--dest", required=True, help="folder or s3://bucket/prefix")
    demo.add_argument("--scale", type=float, default=1.0, help="volume multiplier (default 1.0)")
    demo.add_argument("--broken", help="DOMAIN/YYYY-MM to make unreadable (a failing load)")
    demo.set_defaults(func=cmd_demo_data)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except CliError as exc:
        print(f"finops {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
