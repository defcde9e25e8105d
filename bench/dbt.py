"""bench/dbt: full dbt build against a one-day incremental build, on the real S&P 500 data.

Loads the real files into a scratch database without their last day, times `dbt run --full-refresh`, then
vacuums as autovacuum would before the next day, loads the last day and times the incremental run for that
day alone, as the daily job would. Prints both, their ratio and the peak memory of the PostgreSQL backends
while dbt ran; then the same with each run's data tests, which in a run over a window read only the window's
dates. Targets: the one-day run costs under 5% of the full build, and the full build finishes in under
5 minutes on 2 cores.

    .venv/bin/python -m bench.dbt [--server-url postgresql://postgres@127.0.0.1:5432/postgres]
"""

import argparse
import json
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import psutil
import psycopg

from bench._common import constituents_csv, real_data_dir, scratch_database
from stockyard import warehouse
from stockyard.endpoints import dbt_profile_environment
from stockyard.marketdata.csv_files import CsvProvider
from stockyard.settings import PROJECT_ROOT

# The dbt command line the Dagster assets run (orchestration.transformation.assets).
DBT = str(Path(sys.executable).parent / "stockyard-dbt")
FIRST = date(1990, 1, 1)
# The data tests, as the Dagster assets run them (unit tests run in CI).
DATA_TESTS = ["test", "--exclude-resource-type", "unit_test"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--server-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()

    url = scratch_database(args.server_url, "stockyard_bench_dbt")
    provider = CsvProvider(real_data_dir(), constituents_csv())
    symbols = provider.symbols()
    with psycopg.connect(url) as conn:
        warehouse.load_stocks(conn, provider.metadata(symbols), provider=provider.name, synthetic=False)
        last_day = warehouse.ingest(
            conn, provider, symbols, start=FIRST, end=date(2030, 1, 1), partition_key="bench"
        ).last_date
        assert last_day is not None
        for table, column in (("raw.daily_prices", "date"), ("raw.corporate_actions", "ex_date")):
            conn.execute(f"delete from {table} where {column} = %s", (last_day,))
        conn.commit()

    full_seconds, full_peak = timed_dbt(url, ["run", "--full-refresh"])
    full_tests_seconds, _ = timed_dbt(url, DATA_TESTS)
    # By the next day autovacuum has been through the freshly built tables; here it would still be at work
    # during the one-day run, so do its work first, untimed.
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("vacuum (analyze)")
    with psycopg.connect(url) as conn:
        warehouse.ingest(conn, provider, symbols, start=last_day, end=last_day, partition_key=str(last_day))
    window = ["--vars", json.dumps({"start_date": str(last_day), "end_date": str(last_day)})]
    daily_seconds, daily_peak = timed_dbt(url, ["run", *window])
    daily_tests_seconds, _ = timed_dbt(url, [*DATA_TESTS, *window])

    print(
        f"full build (dbt run --full-refresh, up to {last_day - timedelta(days=1)}): {full_seconds:>8.1f} s "
        f"(target < 300 s)"
    )
    print(f"one-day incremental (dbt run for {last_day}):             {daily_seconds:>8.1f} s")
    print(
        f"ratio:                                                   {daily_seconds / full_seconds:>8.1%} "
        f"(target < 5%)"
    )
    print(f"peak PostgreSQL backend memory: full {full_peak:.0f} MB, one-day {daily_peak:.0f} MB")
    full_built, daily_built = full_seconds + full_tests_seconds, daily_seconds + daily_tests_seconds
    print(
        f"with the data tests Dagster runs after them (dbt test, the one-day run's on its window): "
        f"full {full_built:.1f} s, one-day {daily_built:.1f} s, ratio {daily_built / full_built:.1%}"
    )


def timed_dbt(url: str, command: list[str]) -> tuple[float, float]:
    """Run dbt on `url`; return its wall time and the peak resident memory of any PostgreSQL backend."""
    peak = PostgresPeakMemory()
    peak.start()
    started = time.perf_counter()
    subprocess.run(
        [
            DBT,
            *command,
            "--project-dir",
            str(PROJECT_ROOT / "dbt_project"),
            "--profiles-dir",
            str(PROJECT_ROOT / "dbt_project"),
            "--quiet",
        ],
        env={**psutil.Process().environ(), **dbt_profile_environment(url)},
        check=True,
    )
    seconds = time.perf_counter() - started
    peak.stop()
    return seconds, peak.megabytes


class PostgresPeakMemory(threading.Thread):
    """Samples the resident memory of the server's backend processes (needs the server on this machine)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.megabytes = 0.0
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(0.2):
            for process in psutil.process_iter(["name", "memory_info"]):
                if process.info["name"] == "postgres" and process.info["memory_info"] is not None:
                    self.megabytes = max(self.megabytes, process.info["memory_info"].rss / 2**20)

    def stop(self) -> None:
        self._stopped.set()
        self.join()


if __name__ == "__main__":
    main()
