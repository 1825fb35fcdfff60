"""The two UIs format alike: the built-in UI's `format.js` and the Backstage plugin's
`format.ts` export the same functions, and one table of inputs gives the same strings through
both (run by Node.js; the TypeScript module bundled by the plugin's esbuild).

Node.js and the plugin's `node_modules` (`npm ci` in backstage-plugin/) are needed: the test
skips without them locally and fails in CI.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.support import require

ROOT = Path(__file__).resolve().parents[3]
BUILTIN = ROOT / "finops_admin_plugin" / "ui" / "static" / "format.js"
PLUGIN_DIR = ROOT / "backstage-plugin"
PLUGIN = PLUGIN_DIR / "src" / "components" / "common" / "format.ts"
ESBUILD = PLUGIN_DIR / "node_modules" / "esbuild"


def _money(*items: tuple[str, str]) -> list[dict[str, str]]:
    return [{"currency": currency, "amount": amount} for currency, amount in items]


# Money as the API sends it: more digits than a float holds, tiny and negative amounts (credits),
# rounding at the minor unit (a carry through every digit, JPY without decimals, BHD with three),
# several currencies in the API's order, a code Intl refuses, an amount that is not a decimal.
MONEY: list[Any] = [
    _money(("USD", "12345678901234567890.123456789")),
    _money(("USD", "0.00000006538030")),
    _money(("USD", "-12.50")),
    _money(("EUR", "-0.004")),
    _money(("USD", "999999999999999999.995")),
    _money(("USD", "1361.73337406487786"), ("EUR", "100.00"), ("JPY", "999.5")),
    _money(("BHD", "1.23450"), ("USD", "7")),
    _money(("€", "1234.5")),
    _money(("USD", "12,5")),
    [],
    None,
]

# A cost anomaly is one currency's: value and baseline are one-item money lists.
COST_ANOMALY = {
    "metric": "billedCost",
    "scope": "public",
    "value": _money(("USD", "1234.555")),
    "baseline": _money(("USD", "800")),
    "score": 0.75,
}

# An anomaly that says why: the runs it was compared with and the threshold.
WHY_ANOMALY = {
    "metric": "relevesInserted",
    "scope": "run",
    "value": 30000,
    "baseline": 10000,
    "score": 8.04,
    "method": "robust_log_z",
    "threshold": 3.5,
    "comparedRuns": 20,
    "comparedRunIds": ["0123456789abcdef", "fedcba9876543210"],
    "comparedFrom": "2026-01-02T03:04:05Z",
    "comparedTo": "2026-03-01T00:00:00+00:00",
}

# (function, arguments). Times cross a day, a year and a fraction of a second; numbers cross
# the thousands separator, rounding and zero; durations each unit's boundary.
CASES: list[tuple[str, list[Any]]] = [
    *[
        (fn, [value])
        for fn in ("formatTime", "formatShortTime")
        for value in (
            "2026-10-03T04:05:06Z",
            "2026-10-03T04:05:06.789+00:00",
            "2026-12-31T23:59:59.999-01:00",
            "2026-01-01T00:00:00+02:00",
            "not a time",
            "",
            None,
        )
    ],
    *[
        ("formatDuration", [value])
        for value in (
            0,
            0.04,
            0.05,
            1.25,
            59.94,
            59.96,
            60,
            61.5,
            119.5,
            3599,
            3600,
            3725,
            86400 * 2 + 7,
            None,
        )
    ],
    *[("formatNumber", [value]) for value in (0, 7, 999, 1000, 1234567, -1234, 12.5, 1234.5678, None)],
    *[
        (fn, [amounts, locale])
        for fn in ("formatMoney",)
        for amounts in MONEY
        for locale in ("en-US", "fr-FR")
    ],
    *[("exactMoney", [amounts]) for amounts in MONEY],
    *[
        ("formatAge", [value])
        for value in (0, 10, 89, 90, 3599, 3600, 5400, 2 * 86400 - 1, 2 * 86400, 10 * 86400 + 43200, None)
    ],
    *[
        ("formatBytes", [value])
        for value in (0, 1023, 1024, 1536, 1024**2 - 1, 5 * 1024**3, 3 * 1024**5, None)
    ],
    *[("shortId", [value]) for value in ("3f2a9c1e-7b4d-4e0f-9a8b-1c2d3e4f5a6b", "abc", "")],
    *[
        ("firstLine", args)
        for args in (
            ["cannot read landing file native/2026-09/export-000.parquet: bad footer"],
            ["first line\nsecond line"],
            ["  padded  \nrest"],
            ["x" * 200],
            ["x" * 140],
            ["abcdef", 4],
            [""],
            [None],
        )
    ],
    *[
        ("anomalyText", [anomaly, "en-US"])
        for anomaly in (
            {"metric": "durationSeconds", "scope": "run", "value": 600, "baseline": 60, "score": 12.34},
            {"metric": "relevesInserted", "scope": "native", "value": 12, "baseline": 123456, "score": -4.05},
            COST_ANOMALY,
            {"metric": "somethingNew", "scope": "open", "value": 3, "baseline": 2, "score": 0.5},
        )
    ],
    ("anomalyText", [COST_ANOMALY, "fr-FR"]),
    ("anomalyText", [WHY_ANOMALY, "en-US"]),
    (
        "anomalyText",
        [{**WHY_ANOMALY, "comparedRunIds": [], "comparedFrom": None, "threshold": None}, "en-US"],
    ),
]

RUNNER = """
import { readFileSync } from 'node:fs';
const [esbuildDir, pluginTs, builtinMjs, casesJson] = process.argv.slice(2);
const { createRequire } = await import('node:module');
const esbuild = createRequire(esbuildDir + '/')(esbuildDir);
const bundle = esbuild.buildSync({
  entryPoints: [pluginTs], bundle: true, format: 'esm', platform: 'neutral', write: false,
});
const source = Buffer.from(bundle.outputFiles[0].text).toString('base64');
const plugin = await import('data:text/javascript;base64,' + source);
const builtin = await import(builtinMjs);
const exportsOf = (m) => Object.keys(m).filter((k) => typeof m[k] === 'function').sort();
const call = (m, fn, args) => {
  try { return m[fn](...args); } catch (e) { return `threw ${e.name}: ${e.message}`; }
};
const cases = JSON.parse(readFileSync(casesJson, 'utf8'));
console.log(JSON.stringify({
  exports: { builtin: exportsOf(builtin), plugin: exportsOf(plugin) },
  results: cases.map(([fn, args]) => [call(builtin, fn, args), call(plugin, fn, args)]),
}));
"""


def _run_both(tmp_path: Path) -> dict[str, Any]:
    node = shutil.which("node")
    require(node is not None, "Node.js is needed to run the UIs' format modules")
    require(ESBUILD.is_dir(), f"esbuild missing from {ESBUILD.parent}: run `npm ci` in backstage-plugin/")
    assert node is not None
    # As an .mjs copy, Node reads the built-in module as ES whatever its package settings.
    builtin = tmp_path / "format-builtin.mjs"
    builtin.write_text(BUILTIN.read_text(encoding="utf-8"), encoding="utf-8")
    runner = tmp_path / "run.mjs"
    runner.write_text(RUNNER, encoding="utf-8")
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps(CASES), encoding="utf-8")
    done = subprocess.run(
        [node, str(runner), str(ESBUILD), str(PLUGIN), builtin.as_uri(), str(cases)],
        capture_output=True,
        text=True,
        timeout=120,
        # A locale of the machine must not matter: both modules format in en-US themselves.
        env={"PATH": str(Path(node).parent), "LANG": "fr_FR.UTF-8", "TZ": "Pacific/Auckland"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_both_uis_format_every_case_alike(tmp_path: Path) -> None:
    result = _run_both(tmp_path)
    builtin, plugin = result["exports"]["builtin"], result["exports"]["plugin"]
    assert builtin == plugin, "format.js and format.ts must export the same functions"
    assert sorted({fn for fn, _ in CASES}) == builtin, "the table must cover every exported function"
    different = [
        f"{fn}({', '.join(json.dumps(a) for a in args)}): built-in {b!r}, plugin {p!r}"
        for (fn, args), (b, p) in zip(CASES, result["results"], strict=True)
        if b != p
    ]
    assert not different, "the UIs format differently:\n" + "\n".join(different)
    # Spot checks that the table runs what it says (not two equally broken modules).
    shown = {(fn, json.dumps(args)): b for (fn, args), (b, _) in zip(CASES, result["results"], strict=True)}
    assert shown[("formatTime", '["2026-12-31T23:59:59.999-01:00"]')] == "2027-01-01 00:59:59 UTC"
    money = json.dumps([MONEY[0], "en-US"])
    assert shown[("formatMoney", money)] == "USD\u00a012,345,678,901,234,567,890.12"
    money = json.dumps([MONEY[5], "fr-FR"])
    assert shown[("formatMoney", money)] == "1\u202f361,73\u00a0USD · 100,00\u00a0EUR · 1\u202f000\u00a0JPY"
    assert shown[("exactMoney", json.dumps([MONEY[1]]))] == "USD 0.00000006538030"
    cost = json.dumps([COST_ANOMALY, "en-US"])
    expected = "public billed cost: USD\u00a01,234.56, baseline USD\u00a0800.00 (score 0.8)"
    assert shown[("anomalyText", cost)] == expected
    why = json.dumps([WHY_ANOMALY, "en-US"])
    assert shown[("anomalyText", why)] == (
        "run relevés inserted: 30,000, baseline 10,000 (score 8.0); median of 20 comparable runs from "
        "2026-01-02 to 2026-03-01 (latest 01234567, fedcba98), flagged beyond ±3.5"
    )
    assert shown[("formatDuration", "[3725]")] == "1 h 2 min"
    assert shown[("formatAge", "[5400]")] == "2 h ago"
    assert shown[("formatBytes", "[1536]")] == "1.5 KiB"
    assert shown[("formatBytes", f"[{3 * 1024**5}]")] == "3072.0 TiB"
