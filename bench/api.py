"""bench/api: the N+1 pattern against the API's bulk query, and a load test of the cached API.

Builds its own warehouse first: the sample market of 500 symbols over 2023 through `dbt build`, and a day of
recommendations for all 500 constructed from the features (the API only reads them).

(a) Prices of N symbols over a quarter, for N = 10, 50, 100 and 500: one statement per symbol (the old code
    map's pattern) against the API's one statement for all (serving.repositories.prices), both through the
    API's async pool. Prints the statements and the median milliseconds of each, and the speedup, on
    loopback and through bench.delay_proxy, which holds each packet back on its way to and from PostgreSQL
    (its measured round trip is printed): loopback's ~0.1 ms round trip hides most of what N+1 costs.
(b) `stockyard serve --workers 1` and, beside it, the bare FastAPI endpoint of bench.bare_api under the same
    uvicorn (1 worker); then wrk (`apt-get install wrk`) with 64 connections against the bare endpoint,
    /api/v1/health/live and the cached recommendations, each plain and with `Accept-Encoding: gzip`:
    requests/s, p50 and p99, and each one's throughput against the bare endpoint's with the same headers.
    Targets: cached answers reach at least 75% of the bare endpoint's throughput with p99 under 20 ms.
    The load generator shares the machine's cores with the server: compare ratios within one run.

    .venv/bin/python -m bench.api [--server-url postgresql://postgres@127.0.0.1:5432/postgres]
                                  [--redis-url redis://127.0.0.1:6379/0] [--load-only]
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
from stockyard.api_cache import purge_api_cache
from stockyard.endpoints import dbt_pointed_at
from stockyard.marketdata.sample import SampleProvider
from stockyard.settings import PROJECT_ROOT

START, END = date(2023, 1, 3), date(2023, 12, 29)
SYMBOLS = 500
SIZES = (10, 50, 100, 500)
REPEATS = 5
# Each way, so about 1 ms per round trip (asyncio's timers round to the millisecond).
PROXY_DELAY_MS = 0.5
# Each endpoint is measured in ROUNDS runs of LOAD_SECONDS, interleaved with the others, and the median run
# reported: on a shared machine a burst of other work then spoils one run of each, not all of one endpoint's.
LOAD_SECONDS = 5
ROUNDS = 3
CONNECTIONS = 64
CACHE_PREFIX = "stockyard-bench-api"

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
# The champion the recommendations name: without a promoted model the API answers them 503.
CHAMPION = """
insert into products.model_versions (model_name, family, version, alias, run_id, run_url, evaluation_start,
    evaluation_end, metrics, promotion_reason, dataset_fingerprint, data_source)
values ('bench-constructed', 'xgboost', '1', 'champion', 'bench', 'http://mlflow.invalid/bench', %(start)s,
    %(end)s, '{"rank_ic": 0.0}', 'constructed by bench.api', 'bench', 'synthetic')
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
        conn.execute(CHAMPION, {"start": START, "end": END})
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


def bench_engine(database_url: str) -> AsyncEngine:
    """Two connections, and time enough for any statement of the comparison."""
    return create_engine(
        database_url,
        pool_size=2,
        max_overflow=0,
        statement_timeout_ms=600_000,
        connect_timeout_seconds=10,
        pool_timeout_seconds=60.0,
    )


def through_proxy(database_url: str, port: int) -> str:
    head, _, database = database_url.rpartition("/")
    credentials = head.split("://", 1)[1].split("@", 1)[0]
    return f"postgresql://{credentials}@127.0.0.1:{port}/{database}"


async def part_a(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        symbols = [
            row[0] for row in conn.execute("select symbol from marts.fct_latest_prices order by symbol")
        ]
    engine = bench_engine(database_url)
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
        engine = bench_engine(through_proxy(database_url, port))
        await n_plus_one(engine, symbols, f"through a {PROXY_DELAY_MS} ms-each-way delay proxy")
        await engine.dispose()
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)


GZIP = {"Accept-Encoding": "gzip"}


def wrk(url: str, headers: dict[str, str]) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) of wrk at CONNECTIONS connections."""
    header_options = [option for name, value in headers.items() for option in ("-H", f"{name}: {value}")]
    output = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{LOAD_SECONDS}s", "--latency", *header_options, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]

    def percentile(name: str) -> float:
        value, unit = re.search(rf"^\s+{name}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return rate, percentile("50"), percentile("99")


def wait_until_up(url: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} did not answer")
        time.sleep(0.2)


def stop(server: subprocess.Popen[bytes]) -> None:
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=30)


def part_b(database_url: str, redis_url: str) -> None:
    if shutil.which("wrk") is None:
        print("\n(b) skipped: the load test needs wrk (apt-get install wrk)")
        return
    api_port, bare_port = free_port(), free_port()
    # What an earlier run cached is gone: the first request below computes the answer.
    purge_api_cache(redis_url, prefix=CACHE_PREFIX)
    env = {
        **os.environ,
        "STOCKYARD_SERVICES_DATABASE_URL": database_url,
        "STOCKYARD_SERVICES_REDIS_URL": redis_url,
        "STOCKYARD_API_CACHE_PREFIX": CACHE_PREFIX,
    }
    # Both as they run by default (the API logs each request at info), one worker each.
    api = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--port", str(api_port), "--workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    bare = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "bench.bare_api:app", "--port", str(bare_port)),
            *("--workers", "1", "--no-access-log", "--no-server-header", "--log-level", "warning"),
        ],
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{api_port}/api/v1"
    cached = f"{base}/recommendations?limit=50"
    endpoints = {
        "bare FastAPI endpoint": f"http://127.0.0.1:{bare_port}/",
        "/api/v1/health/live": f"{base}/health/live",
        "cached /recommendations": cached,
    }
    try:
        wait_until_up(f"{base}/health/ready")
        wait_until_up(endpoints["bare FastAPI endpoint"])
        answer = httpx.get(cached, headers={"Accept-Encoding": "identity"})
        if answer.status_code != 200:
            raise SystemExit(f"{cached} answered {answer.status_code}, not a cacheable 200: {answer.text}")
        plain_size = len(answer.content)
        gzip_size = int(httpx.get(cached, headers=GZIP).headers.get("content-length", plain_size))
        runs: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
        for _ in range(ROUNDS):
            for encoding, headers in (("plain", {}), ("gzip", GZIP)):
                for name, url in endpoints.items():
                    runs.setdefault((name, encoding), []).append(wrk(url, headers))
        # The run of median throughput, with its own latencies.
        results = {case: sorted(measured)[len(measured) // 2] for case, measured in runs.items()}
    finally:
        stop(api)
        stop(bare)
    print(
        f"\n(b) load: 1 worker each, wrk with {CONNECTIONS} connections, the median of {ROUNDS} interleaved "
        f"{LOAD_SECONDS} s runs each "
        f"(recommendations payload {plain_size / 1024:.1f} KB, {gzip_size / 1024:.1f} KB gzipped)"
    )
    print(f"{'endpoint':<26} {'encoding':<9} {'requests/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'vs bare':>8}")
    for (name, encoding), (rate, p50, p99) in results.items():
        floor = results["bare FastAPI endpoint", encoding][0]
        print(f"{name:<26} {encoding:<9} {rate:>11.0f} {p50:>8.2f} {p99:>8.2f} {rate / floor:>7.0%}")
    for encoding in ("plain", "gzip"):
        rate, _, p99 = results["cached /recommendations", encoding]
        floor = results["bare FastAPI endpoint", encoding][0]
        print(
            f"cached {encoding}: {rate / floor:.0%} of the bare endpoint (target >= 75%), "
            f"p99 {p99:.1f} ms (target < 20 ms)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--server-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--load-only", action="store_true", help="skip (a), the N+1 comparison")
    args = parser.parse_args()
    started = time.perf_counter()
    database_url = build_warehouse(args.server_url)
    built = time.perf_counter() - started
    print(f"warehouse: {SYMBOLS} sample symbols over {START}..{END}, built in {built:.0f} s")
    if not args.load_only:
        asyncio.run(part_a(database_url))
    part_b(database_url, args.redis_url)


if __name__ == "__main__":
    main()
