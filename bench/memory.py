"""Memory benchmark: peak RSS of reading one big landing file, Parquet and gzip CSV.

Two files of the full FOCUS width (every FOCUS 1.2 column plus two `x_` columns, as
`bench/ingest.py` writes them) are written here:

* a Parquet file with **one row group** of `--row-group-mib` MiB uncompressed (snappy, no
  dictionary, so the row group's stated size is the size of its values);
* a gzip CSV of `--csv-mib` MiB of CSV text.

Each reading runs in a fresh process under GNU time (`/usr/bin/time -f %M`), its peak RSS:

* **loader**: `validate_file`, what a load reads and validates before COPY (every batch);
* **whole-chunk reader** (Parquet, for comparison): the reader before bounded reads,
  `ParquetFile(handle).iter_batches(131072)` with Arrow's defaults (whole column chunks);
* **anchors**: `pyarrow.parquet.read_table` of the same Parquet file (the table in memory),
  and `gzip -dc` / `cat` of the CSV to /dev/null (the floor of streaming it).

    .venv/bin/python bench/memory.py [--row-group-mib 2048] [--csv-mib 2048] [--data-dir DIR]

Writing the files takes a few minutes for 2 GiB; `--data-dir` keeps them for a second run.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from common import workdir

DOMAIN = "public"
PERIOD = "2026-01"
CHUNK_ROWS = 50_000
DISTINCT_CHUNKS = 8  # chunks cycled through: varied values, bounded memory while writing
MIB = 1 << 20


def _chunks() -> list[pa.Table]:
    from ingest import widen

    from finops_pipeline.demo_data import generate_focus_table

    return [widen(generate_focus_table(DOMAIN, PERIOD, CHUNK_ROWS, seed=i)) for i in range(DISTINCT_CHUNKS)]


def write_parquet(path: Path, target_bytes: int, chunks: list[pa.Table]) -> dict[str, Any]:
    """One row group of about `target_bytes` uncompressed: the chunks repeated (shared buffers,
    so the table costs only its distinct chunks) and written as one row group."""
    per_chunk = sum(c.nbytes for c in chunks) / len(chunks)
    count = max(1, round(target_bytes / per_chunk))
    table = pa.concat_tables([chunks[i % len(chunks)] for i in range(count)])
    pq.write_table(table, path, row_group_size=table.num_rows, compression="snappy", use_dictionary=False)
    meta = pq.ParquetFile(path).metadata
    return {
        "rows": meta.num_rows,
        "row_groups": meta.num_row_groups,
        "row_group_bytes": meta.row_group(0).total_byte_size,
        "file_bytes": path.stat().st_size,
    }


def write_csv_gz(path: Path, target_bytes: int, chunks: list[pa.Table]) -> dict[str, Any]:
    bodies = []
    for index, chunk in enumerate(chunks):
        sink = pa.BufferOutputStream()
        pacsv.write_csv(chunk, sink, write_options=pacsv.WriteOptions(include_header=index == 0))
        bodies.append(sink.getvalue().to_pybytes())
    header_end = bodies[0].index(b"\n") + 1
    header, bodies[0] = bodies[0][:header_end], bodies[0][header_end:]
    written = rows = 0
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write(header)
        index = 0
        while written < target_bytes:
            body = bodies[index % len(bodies)]
            out.write(body)
            written += len(body)
            rows += CHUNK_ROWS
            index += 1
    return {"rows": rows, "csv_bytes": written + len(header), "file_bytes": path.stat().st_size}


# --- one reading, in its own process ---------------------------------------------------------


def _read(mode: str, path: str) -> dict[str, Any]:
    started = time.perf_counter()
    rows = 0
    if mode == "loader":
        from finops_pipeline.landing.focus import validate_file

        with open(path, "rb") as handle:
            for batch in validate_file(handle, Path(path).name, DOMAIN, PERIOD, "bench"):
                rows += batch.rows_read
    elif mode == "whole-chunks":
        with open(path, "rb") as handle:
            for batch in pq.ParquetFile(handle).iter_batches(batch_size=131_072):
                rows += batch.num_rows
    elif mode == "read_table":
        rows = pq.read_table(path).num_rows
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    return {"rows": rows, "seconds": time.perf_counter() - started}


def measure(argv: list[str], scratch: Path) -> dict[str, Any]:
    """Run `argv` to its end; its peak RSS (MiB), its time and what it printed (JSON, if any).

    The peak is GNU time's (`%M`, from `wait4`), the process run by `/usr/bin/time` rather
    than directly: Linux carries a forked child's peak RSS across `exec`, so a child of this
    (larger) process would report this process's RSS as its own floor."""
    report = scratch / "time.out"
    started = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "%M", "-o", str(report), *argv], stdout=subprocess.PIPE, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{argv} failed with exit code {done.returncode}")
    result: dict[str, Any] = {
        "peak_rss_mib": int(report.read_text().split()[-1]) / 1024,
        "seconds": time.perf_counter() - started,
    }
    if done.stdout.strip():
        result.update(json.loads(done.stdout))
    return result


def _python(mode: str, path: Path) -> list[str]:
    return [sys.executable, __file__, "--read", mode, str(path)]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--row-group-mib", type=int, default=2048)
    parser.add_argument("--csv-mib", type=int, default=2048)
    parser.add_argument("--data-dir", type=Path, default=None, help="keep the files here (reused if present)")
    parser.add_argument("--read", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.read:
        print(json.dumps(_read(*args.read)))
        return 0

    report: dict[str, Any] = {}
    with workdir(args.data_dir, "finops-bench-memory-") as root:
        parquet = root / f"one-row-group-{args.row_group_mib}MiB.parquet"
        csv_gz = root / f"focus-{args.csv_mib}MiB.csv.gz"
        chunks: list[pa.Table] = []
        if not parquet.exists() or not csv_gz.exists():
            chunks = _chunks()
        if not parquet.exists():
            print(f"writing {parquet.name} ...", flush=True)
            report["parquet_file"] = write_parquet(parquet, args.row_group_mib * MIB, chunks)
        else:
            meta = pq.ParquetFile(parquet).metadata
            report["parquet_file"] = {
                "rows": meta.num_rows,
                "row_group_bytes": meta.row_group(0).total_byte_size,
                "file_bytes": parquet.stat().st_size,
            }
        if not csv_gz.exists():
            print(f"writing {csv_gz.name} ...", flush=True)
            report["csv_file"] = write_csv_gz(csv_gz, args.csv_mib * MIB, chunks)
        else:
            report["csv_file"] = {"file_bytes": csv_gz.stat().st_size}
        del chunks
        print(json.dumps(report), flush=True)

        readings = {
            "parquet loader (validate_file)": _python("loader", parquet),
            "parquet whole-chunk reader (before)": _python("whole-chunks", parquet),
            "parquet pyarrow.parquet.read_table (anchor)": _python("read_table", parquet),
            "csv.gz loader (validate_file)": _python("loader", csv_gz),
            "csv.gz gzip -dc > /dev/null (anchor)": ["sh", "-c", f"gzip -dc '{csv_gz}' > /dev/null"],
            "csv.gz cat > /dev/null (anchor)": ["sh", "-c", f"cat '{csv_gz}' > /dev/null"],
        }
        print("| reading | peak RSS (MiB) | seconds | rows |")
        print("|---|---:|---:|---:|")
        for name, argv in readings.items():
            result = measure(argv, root)
            report[name] = result
            peak, seconds, rows = result["peak_rss_mib"], result["seconds"], result.get("rows", "")
            print(f"| {name} | {peak:,.0f} | {seconds:.1f} | {rows} |", flush=True)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
