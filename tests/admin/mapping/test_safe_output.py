"""What a caller sees is safe: CSV cells that spreadsheets would run, server paths in messages."""

from __future__ import annotations

import csv
import io

import pytest

from finops_admin_plugin.api.runs import _csv_cell
from finops_admin_plugin.mapping.paths import display_paths
from finops_admin_plugin.mapping.runs import one_line


@pytest.mark.parametrize("lead", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_cells_a_spreadsheet_would_run_are_neutralised(lead: str) -> None:
    value = f'{lead}HYPERLINK("http://x","y")'
    cell = _csv_cell(value)
    assert cell == "'" + value
    buffer = io.StringIO()
    csv.writer(buffer).writerow([cell])
    (read,) = csv.reader(io.StringIO(buffer.getvalue()))
    assert read[0][0] == "'"


@pytest.mark.parametrize("value", ["open", "2026-10", "user:default/jdoe", "", 12.5, -3, None])
def test_other_cells_are_unchanged(value: object) -> None:
    assert _csv_cell(value) == value


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        (
            "no landing file for domain 'open', period 2026-10: expected /srv/finops/landing/open/2026-10/",
            "no landing file for domain 'open', period 2026-10: expected open/2026-10/",
        ),
        (
            "cannot read landing file /tmp/pytest-1/landing/native/2026-09/export-000.csv: bad UTF-8",
            "cannot read landing file native/2026-09/export-000.csv: bad UTF-8",
        ),
        (
            "expected s3://finops-landing/prod/public/2026-10/ (no object)",
            "expected public/2026-10/ (no object)",
        ),
        (
            "FileNotFoundError: [Errno 2] No such file: '/opt/app/.venv/lib/python3.11/site-packages/x/y.py'",
            "FileNotFoundError: [Errno 2] No such file: 'y.py'",
        ),
        ("reference: /data/landing/reference/applications.csv", "reference: reference/applications.csv"),
        ("open 2026-10: 3 rows rejected", "open 2026-10: 3 rows rejected"),
        ("see https://dagster.example.com/runs/abc", "see https://dagster.example.com/runs/abc"),
        ("ratio 3/4 over 1/2", "ratio 3/4 over 1/2"),
    ],
)
def test_messages_show_paths_from_the_landing_root(message: str, shown: str) -> None:
    assert display_paths(message) == shown
    assert one_line(f"dagster._core.definitions.events.Failure: {message}") == shown
