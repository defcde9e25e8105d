"""bench/ingest: load the real S&P 500 CSVs through the `csv` provider into PostgreSQL.

Prints rows per second, wall time and peak memory, and as the ceiling the speed of a plain `psql \\copy` of
the same rows into the same table. Target: at least half the ceiling, peak memory under 2 GB.

    .venv/bin/python -m bench.ingest [--server-url postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from datetime import date
from pathlib import Path

import psycopg

from bench._common import constituents_csv, peak_rss_mb, real_data_dir, scratch_database
from stockyard import warehouse
from stockyard.marketdata.csv_files import CsvProvider

FIRST, LAST = date(1990, 1, 1), date(2030, 12, 31)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--server-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--data-dir", type=Path, default=None, help="folder of CSVs (default: the real data)")
    args = parser.parse_args()

    data_dir = args.data_dir or real_data_dir()
    metadata = None if args.data_dir else constituents_csv()
    url = scratch_database(args.server_url, "stockyard_bench_ingest")
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        provider = CsvProvider(data_dir, metadata)
        symbols = provider.symbols()
        summary = warehouse.ingest(conn, provider, symbols, start=FIRST, end=LAST, partition_key="bench")
        ingest_seconds = time.perf_counter() - started
        peak_mb = peak_rss_mb()

        ceiling_seconds = psql_copy_seconds(conn, url)

    rows = summary.bars
    ours, ceiling = rows / ingest_seconds, rows / ceiling_seconds
    print(
        f"files: {len(symbols)}  symbols loaded: {len(summary.symbols)}  failed: {summary.failed_symbols}  "
        f"quarantined rows: {summary.quarantined}"
    )
    print(f"rows loaded:            {rows:>12,}")
    print(
        f"stockyard ingest:       {ingest_seconds:>9.2f} s  {ours:>12,.0f} rows/s  (read, validate and COPY)"
    )
    print(f"psql \\copy (ceiling):   {ceiling_seconds:>9.2f} s  {ceiling:>12,.0f} rows/s")
    print(f"ratio to ceiling:       {ours / ceiling:>9.2f}   (target >= 0.50)")
    print(f"peak memory:            {peak_mb:>9.0f} MB (target < 2048 MB)")


def psql_copy_seconds(conn: psycopg.Connection, url: str) -> float:
    """Time `psql \\copy` of exactly the loaded rows into the same (emptied) table, from a CSV file."""
    columns = ", ".join(warehouse.BAR_TABLE_COLUMNS)
    with tempfile.TemporaryDirectory() as scratch:
        csv_path = Path(scratch) / "daily_prices.csv"
        subprocess.run(
            ["psql", url, "-q", "-c", f"\\copy raw.daily_prices ({columns}) to '{csv_path}' csv"], check=True
        )
        conn.execute("truncate raw.daily_prices")
        conn.commit()
        started = time.perf_counter()
        subprocess.run(
            ["psql", url, "-q", "-c", f"\\copy raw.daily_prices ({columns}) from '{csv_path}' csv"],
            check=True,
        )
        return time.perf_counter() - started


if __name__ == "__main__":
    main()
