"""bench/api: the N+1 pattern against the API's bulk query, and a load test of the cached API.

Builds its own warehouse first: the sample market of 500 symbols over 2023 through `dbt build`, and a day of
recommendations for all 500 constructed from the features (the API only reads them).

(a) Prices of N symbols over a quarter, for N = 10, 50, 100 and 500: one statement per symbol (the old code
    map's pattern) against the API's one statement for all (serving.repositories.prices), both through the
    API's async pool. Prints the statements and the median milliseconds of each, and the speedup, on
    loopback and through bench.delay_proxy, which holds each packet back on its way to and from PostgreSQL
    (its measured round trip is printed): loopback's ~0.1 ms round trip hides most of what N+1 costs.
(b) `stockyard serve --workers 2`, then wrk (`apt-get install wrk`) with 64 connections against the cached
    recommendations and against /api/v1/health/live of the same app: requests/s, p50 and p99, and the ratio.
    Targets: the cached endpoint reaches at least 75% of the trivial one's throughput with p99 under 20 ms.
    The load generator shares the machine's 2 cores with the server.

    .venv/bin/python -m bench.api [--server-url postgresql://postgres@127.0.0.1:5432/postgres]
                                  [--redis-url redis://127.0.0.1:6379/0]
"""

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import date, timedelta

import httpx
import psycopg
from dbt.cli.main import dbtRunner
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bench._common import scratch_database
from serving.database import create_engine
from serving.repositories.prices import price_series
from serving.schemas import Adjustment, Interval
from stockyard import warehouse
from stockyard.marketdata.sample import SampleProvider
from stockyard.services import dbt_pointed_at
from stockyard.settings import PROJECT_ROOT

START, END = date(2023, 1, 3), date(2023, 12, 29)
SYMBOLS = 500
SIZES = (10, 50, 100, 500)
REPEATS = 5
# Each way, so about 1 ms per round trip (asyncio's timers round to the millisecond).
PROXY_DELAY_MS = 0.5
LOAD_SECONDS = 10
CONNECTIONS = 64

RECOMMENDATIONS = """
insert into products.recommendations (date, symbol, score, rank, percentile, expected_excess_return,
    confidence, action, top_contributions, model_name, model_version, data_date, data_source)
select date, symbol, score, rank, 1 - (rank - 1)::double precision / total, score / 100, 0.5,
    case when rank <= total / 10 then 'buy' when rank > total - total / 10 then 'sell' else 'hold' end,
    jsonb_build_array(
        jsonb_build_object('feature', 'return_21d_rank', 'value', score, 'contribution', score / 100)
    ),
    'bench-constructed', '1', date, 'synthetic'
from (
    select date, symbol, coalesce(return_21d_rank, 0.5) as score,
        row_number() over (order by coalesce(return_21d_rank, 0.5) desc, symbol) as rank,
        count(*) over () as total
    from marts.fct_stock_features
    where date = (select max(date) from marts.fct_stock_features)
) as ranked
"""


def build_warehouse(server_url: str) -> str:
    url = scratch_database(server_url, "stockyard_bench_api")
    provider = SampleProvider(seed=7, n_symbols=SYMBOLS, start=START, end=END)
    symbols = provider.symbols()
    with psycopg.connect(url) as conn:
        warehouse.load_stocks(conn, provider.metadata(symbols), provider="sample", synthetic=True)
        warehouse.ingest(conn, provider, symbols, start=START, end=END, partition_key="bench")
    target = PROJECT_ROOT / ".stockyard" / "bench-api-dbt"
    project = PROJECT_ROOT / "dbt_project"
    with dbt_pointed_at(url):
        result = dbtRunner().invoke(
            [
                "build",
                "--exclude-resource-type",
                "unit_test",
                "--quiet",
                "--project-dir",
                str(project),
                "--profiles-dir",
                str(project),
                "--target-path",
                str(target),
                "--log-path",
                str(target / "logs"),
            ]
        )
    if not result.success:
        raise SystemExit(f"dbt build failed: {result.exception}")
    with psycopg.connect(url) as conn:
        conn.execute(RECOMMENDATIONS)
    return url


async def median_ms(run: Callable[[], Awaitable[object]]) -> float:
    await run()
    timings = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        await run()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


async def quarter_of_prices(conn: AsyncConnection, symbols: list[str]) -> None:
    await price_series(
        conn,
        symbols=symbols,
        start=END - timedelta(days=91),
        end=END,
        adjustment=Adjustment.adjusted,
        interval=Interval.daily,
    )


async def n_plus_one(engine: AsyncEngine, symbols: list[str], label: str) -> None:
    statements = 0

    def count(*_: object) -> None:
        nonlocal statements
        statements += 1

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    async with engine.connect() as conn:
        started = time.perf_counter()
        for _ in range(200):
            await conn.execute(text("select 1"))
        round_trip = (time.perf_counter() - started) / 200 * 1000
        print(f"\n(a) N+1 against bulk, {label}: one round trip takes {round_trip:.2f} ms")
        header = ("symbols", "per-symbol statements", "ms", "bulk statements", "ms", "speedup")
        print("{:>8} {:>22} {:>9} {:>16} {:>8} {:>8}".format(*header))
        for size in SIZES:
            chosen = symbols[:size]

            async def per_symbol(chosen: list[str] = chosen) -> None:
                for symbol in chosen:
                    await quarter_of_prices(conn, [symbol])

            async def bulk(chosen: list[str] = chosen) -> None:
                await quarter_of_prices(conn, chosen)

            statements = 0
            await per_symbol()
            per_symbol_statements = statements
            statements = 0
            await bulk()
            bulk_statements = statements
            per_symbol_ms, bulk_ms = await median_ms(per_symbol), await median_ms(bulk)
            print(
                f"{len(chosen):>8} {per_symbol_statements:>22} {per_symbol_ms:>9.1f} {bulk_statements:>16} "
                f"{bulk_ms:>8.1f} {per_symbol_ms / bulk_ms:>7.1f}x"
            )
    event.remove(engine.sync_engine, "before_cursor_execute", count)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def through_proxy(database_url: str, port: int) -> str:
    head, _, database = database_url.rpartition("/")
    credentials = head.split("://", 1)[1].split("@", 1)[0]
    return f"postgresql://{credentials}@127.0.0.1:{port}/{database}"


async def part_a(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        symbols = [
            row[0] for row in conn.execute("select symbol from marts.fct_latest_prices order by symbol")
        ]
    engine = create_engine(database_url, pool_size=2, max_overflow=0, statement_timeout_ms=600_000)
    await n_plus_one(engine, symbols, "loopback")
    await engine.dispose()
    info = psycopg.conninfo.conninfo_to_dict(database_url)
    port = free_port()
    proxy = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.delay_proxy",
            str(port),
            str(info.get("host") or "127.0.0.1"),
            str(info.get("port") or 5432),
            str(PROXY_DELAY_MS),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proxy.stdout is not None and proxy.stdout.readline().strip() == "ready"
        engine = create_engine(
            through_proxy(database_url, port), pool_size=2, max_overflow=0, statement_timeout_ms=600_000
        )
        await n_plus_one(engine, symbols, f"through a {PROXY_DELAY_MS} ms-each-way delay proxy")
        await engine.dispose()
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)


def wrk(url: str) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) of wrk at CONNECTIONS connections."""
    output = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{LOAD_SECONDS}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]

    def percentile(name: str) -> float:
        value, unit = re.search(rf"^\s+{name}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return rate, percentile("50"), percentile("99")


def part_b(database_url: str, redis_url: str) -> None:
    if shutil.which("wrk") is None:
        print("\n(b) skipped: the load test needs wrk (apt-get install wrk)")
        return
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "STOCKYARD_API_CACHE_PREFIX": "stockyard-bench-api",
        "STOCKYARD_API_LOG_LEVEL": "warning",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "stockyard.cli", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the API did not become ready")
            time.sleep(0.2)
        cached = f"{base}/recommendations?limit=50"
        size = len(httpx.get(cached).content)
        for _ in range(20):  # both workers' memory tiers filled
            httpx.get(cached)
        results = {
            "trivial  /health/live": wrk(f"{base}/health/live"),
            "cached   /recommendations": wrk(cached),
        }
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    print(
        f"\n(b) load: 2 workers, wrk with {CONNECTIONS} connections for {LOAD_SECONDS} s each "
        f"(recommendations payload {size / 1024:.1f} KB)"
    )
    print(f"{'endpoint':<28} {'requests/s':>11} {'p50 ms':>8} {'p99 ms':>8}")
    for name, (rate, p50, p99) in results.items():
        print(f"{name:<28} {rate:>11.0f} {p50:>8.2f} {p99:>8.2f}")
    trivial, cached_result = results["trivial  /health/live"], results["cached   /recommendations"]
    print(
        f"cached / trivial throughput: {cached_result[0] / trivial[0]:.0%} (target >= 75%); "
        f"cached p99 {cached_result[2]:.1f} ms (target < 20 ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--server-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    started = time.perf_counter()
    database_url = build_warehouse(args.server_url)
    built = time.perf_counter() - started
    print(f"warehouse: {SYMBOLS} sample symbols over {START}..{END}, built in {built:.0f} s")
    asyncio.run(part_a(database_url))
    part_b(database_url, args.redis_url)


if __name__ == "__main__":
    main()
