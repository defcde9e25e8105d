"""bench/mainjob: the main job through `stockyard`, cold, warm and a one-day refresh, on a sample market.

For each it prints the command's wall time, each step's wall time from the Dagster run's step stats, the
launch overhead (from the command's start to the run's first step, and from its last step to the command's
exit) and the total. Then the ingestion backfill through `stockyard materialize --select group:ingestion`
against `warehouse.ingest` of the same provider and rows without Dagster (what bench/ingest measures), and
their ratio. Targets (issue 15): cold under 15 minutes on 2 cores, warm under 1 minute, a one-day refresh
under 2 minutes, the ratio at most 2.

    .venv/bin/python -m bench.mainjob [--symbols 110] [--start 2019-01-02] [--state DIR [--skip-cold]]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import psycopg
from psycopg import sql

from bench._common import scratch_database
from stockyard import warehouse
from stockyard.calendar import latest_closed_session
from stockyard.endpoints import sibling_database_url
from stockyard.marketdata.base import MarketDataProvider
from stockyard.marketdata.csv_files import CsvProvider
from stockyard.marketdata.sample import sample_provider_from_settings
from stockyard.marketdata.settings import MarketDataSettings
from stockyard.settings import PROJECT_ROOT

NAME = "stockyard_bench_mainjob"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--server-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--symbols", type=int, default=110, help="symbols of the sample market")
    parser.add_argument("--start", type=date.fromisoformat, default=date(2019, 1, 2))
    parser.add_argument(
        "--end", type=date.fromisoformat, default=None, help="last day (default: the last closed session)"
    )
    parser.add_argument("--data", type=Path, default=None, help="folder of per-symbol CSV files")
    parser.add_argument("--metadata", type=Path, default=None, help="their metadata CSV")
    parser.add_argument("--state", type=Path, default=None, help="the services' state folder to keep")
    parser.add_argument("--skip-cold", action="store_true", help="reuse what a run with --state built")
    args = parser.parse_args()
    if args.skip_cold and args.state is None:
        parser.error("--skip-cold needs the --state of the run that built the warehouse")
    args.end = args.end or latest_closed_session(datetime.now(UTC))
    if args.data is not None:
        args.data = args.data.resolve()
        beside = args.data.parent / "constituents.csv"
        if args.metadata is None and beside.exists():
            args.metadata = beside
        with tempfile.TemporaryDirectory(prefix="stockyard-bench-mainjob-") as folder:
            through_stockyard, plain = _ingestion(args, Path(folder))
        _print_ingestion_summary(through_stockyard, plain)
        return

    with tempfile.TemporaryDirectory(prefix="stockyard-bench-mainjob-") as temporary:
        state = args.state.resolve() if args.state else Path(temporary)
        if args.skip_cold:
            env = _environment(args, f"{args.server_url.rsplit('/', 1)[0]}/{NAME}", state)
            cold = float("nan")
        else:
            env = _environment(args, _fresh_warehouse(args.server_url, NAME), state)
            cold = _timed("cold: stockyard run --no-ui on an empty warehouse", ["run", "--no-ui"], env)
        warm = _timed("warm: stockyard run --no-ui again, nothing new", ["run", "--no-ui"], env)
        last_day = _last_built_day(env)
        refresh = _timed(
            f"one-day refresh: daily_refresh of {last_day}",
            [
                "-m",
                "orchestration.launch",
                "--job",
                "daily_refresh",
                f"--start={last_day}",
                f"--end={last_day}",
            ],
            env,
            module=True,
        )
        through_stockyard, plain = _ingestion(args, state / "i")

    print("\nsummary")
    print(f"  cold main job:        {cold:8.1f} s   (target < 900 s)")
    print(f"  warm stockyard run:   {warm:8.1f} s   (target < 60 s)")
    print(f"  one-day refresh:      {refresh:8.1f} s   (target < 120 s)")
    _print_ingestion_summary(through_stockyard, plain)


def _ingestion(args: argparse.Namespace, state: Path) -> tuple[float, float]:
    """The backfill of --start..--end through `stockyard materialize`, then warehouse.ingest of the same
    provider and days without Dagster, each into a fresh warehouse: their wall times."""
    env = _environment(args, _fresh_warehouse(args.server_url, NAME + "_ingest"), state)
    window = [f"--start={args.start}", f"--end={args.end}"]
    through_stockyard = _timed(
        f"ingestion backfill {args.start}..{args.end}: stockyard materialize --select group:ingestion",
        ["materialize", "--select", "group:ingestion", *window],
        env,
    )
    return through_stockyard, _plain_ingest(args, args.server_url)


def _print_ingestion_summary(through_stockyard: float, plain: float) -> None:
    print(
        f"  ingestion backfill:   {through_stockyard:8.1f} s through stockyard, "
        f"{plain:.1f} s warehouse.ingest"
    )
    print(f"  ratio:                {through_stockyard / plain:8.2f}     (target <= 2)")


def _fresh_warehouse(server_url: str, name: str) -> str:
    with psycopg.connect(server_url, autocommit=True) as conn:
        for suffix in ("_dagster", "_mlflow"):
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name + suffix))
            )
    return scratch_database(server_url, name)


def _environment(args: argparse.Namespace, database_url: str, state: Path) -> dict[str, str]:
    provider = (
        {}
        if args.data is None
        else {
            "STOCKYARD_MARKET_DATA_PROVIDER": "csv",
            "STOCKYARD_MARKET_DATA_CSV_DIR": str(args.data),
            "STOCKYARD_MARKET_DATA_METADATA_CSV": str(args.metadata.resolve()) if args.metadata else "",
        }
    )
    return {
        **os.environ,
        **provider,
        "STOCKYARD_SERVICES_DATABASE_URL": database_url,
        "STOCKYARD_SERVICES_REDIS_URL": args.redis_url,
        "STOCKYARD_SERVICES_STATE_DIR": str(state),
        "STOCKYARD_MARKET_DATA_START": args.start.isoformat(),
        "STOCKYARD_MARKET_DATA_SAMPLE_SYMBOLS": str(args.symbols),
        "DAGSTER_HOME": str(PROJECT_ROOT / "dagster_home"),
        "DAGSTER_DATABASE_URL": sibling_database_url(database_url, "_dagster"),
    }


def _timed(title: str, arguments: list[str], env: dict[str, str], *, module: bool = False) -> float:
    """Run `stockyard <arguments>` (or `python <arguments>`), print its steps and overhead; its wall time."""
    command = [sys.executable, *arguments] if module else [sys.executable, "-m", "cli.main", *arguments]
    print(f"\n{title}", flush=True)
    started = time.time()
    result = subprocess.run(command, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    ended = time.time()
    if result.returncode != 0:
        print(result.stdout[-3000:] + result.stderr[-3000:])
        raise SystemExit(f"{' '.join(arguments)} exited with {result.returncode}")
    _print_run(env, started, ended)
    return ended - started


def _print_run(env: dict[str, str], started: float, ended: float) -> None:
    os.environ.update({key: env[key] for key in ("DAGSTER_HOME", "DAGSTER_DATABASE_URL")})
    with dg.DagsterInstance.get() as instance:
        records = [r for r in instance.get_run_records(limit=5) if r.create_timestamp.timestamp() >= started]
        if not records:
            print(f"  no run (nothing to do); total {ended - started:.1f} s")
            return
        run = records[0].dagster_run
        stats = sorted(
            (s for s in instance.get_run_step_stats(run.run_id) if s.start_time and s.end_time),
            key=lambda s: s.start_time or 0,
        )
    print(f"  run {run.run_id} of {run.job_name}")
    for step in stats:
        assert step.start_time is not None and step.end_time is not None
        print(
            f"  {step.step_key:<40} {step.end_time - step.start_time:8.1f} s"
            f"   (from {step.start_time - started:7.1f} s)"
        )
    first, last = stats[0].start_time or started, max(s.end_time or ended for s in stats)
    print(
        f"  launch overhead: {first - started:.1f} s before the first step, "
        f"{ended - last:.1f} s after the last"
    )
    print(f"  total: {ended - started:.1f} s")


def _last_built_day(env: dict[str, str]) -> str:
    with psycopg.connect(env["STOCKYARD_SERVICES_DATABASE_URL"]) as conn:
        row = conn.execute("select max(date) from raw.daily_prices").fetchone()
    assert row is not None and row[0] is not None
    return str(row[0].isoformat())


def _plain_ingest(args: argparse.Namespace, server_url: str) -> float:
    """warehouse.ingest of the same provider and days, in this process, into a fresh warehouse."""
    url = _fresh_warehouse(server_url, NAME + "_plain")
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        provider: MarketDataProvider = (
            sample_provider_from_settings(MarketDataSettings(start=args.start, sample_symbols=args.symbols))
            if args.data is None
            else CsvProvider(args.data, args.metadata)
        )
        symbols = provider.symbols()
        warehouse.load_stocks(
            conn, provider.metadata(symbols), provider=provider.name, synthetic=provider.synthetic
        )
        summary = warehouse.ingest(
            conn, provider, symbols, start=args.start, end=args.end, partition_key="bench"
        )
        seconds = time.perf_counter() - started
    print(
        f"\nwarehouse.ingest without Dagster: {summary.bars:,} bars {args.start}..{args.end} "
        f"in {seconds:.1f} s"
    )
    return seconds


if __name__ == "__main__":
    main()
