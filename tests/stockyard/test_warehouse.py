"""Loading provider output into raw tables: replace a window in one transaction, never lose a row."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pandas as pd
import psycopg
import pytest

from stockyard import warehouse
from stockyard.marketdata.base import validated_history
from stockyard.marketdata.sample import SampleProvider
from stockyard.marketdata.schema import History, SymbolFailure

START, END = date(2024, 1, 2), date(2024, 1, 5)


def bars(symbol: str, closes: list[float], days: list[str] | None = None) -> pd.DataFrame:
    days = days or ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"][: len(closes)]
    return pd.DataFrame(
        {
            "symbol": symbol,
            "date": days,
            "open": closes,
            "high": [c + 1 for c in closes],
            "low": [c - 1 for c in closes],
            "close": closes,
            "volume": [1000] * len(closes),
            "source": f"test://{symbol}",
            "source_row": range(1, len(closes) + 1),
        }
    )


def actions(symbol: str, ex_date: str, split: float, dividend: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "symbol": [symbol],
            "ex_date": [ex_date],
            "split_ratio": [split],
            "cash_dividend": [dividend],
            "source": f"test://{symbol}",
            "source_row": [1],
        }
    )


def history(
    frames: list[pd.DataFrame],
    action_frames: list[pd.DataFrame] | None = None,
    failures: list[SymbolFailure] | None = None,
) -> History:
    return validated_history(
        frames, action_frames or [], failures or [], provider="test", start=START, end=END
    )


def load(
    conn: psycopg.Connection, history: History, symbols: list[str], **window: Any
) -> warehouse.LoadSummary:
    return warehouse.load_history(conn, [(symbols, history)], **window)


@pytest.fixture
def conn(empty_database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(empty_database_url) as connection:
        yield connection


def count(conn: psycopg.Connection, table: str) -> int:
    return conn.execute(f"select count(*) from {table}").fetchone()[0]  # type: ignore[index]


def test_reloading_a_window_replaces_it(conn: psycopg.Connection) -> None:
    first = history(
        [bars("AAA", [10, 11, 12, 13]), bars("BBB", [20, 21])], [actions("AAA", "2024-01-03", 2, 0)]
    )
    load(conn, first, ["AAA", "BBB"], start=START, end=END, partition_key="w")
    summary = load(conn, first, ["AAA", "BBB"], start=START, end=END, partition_key="w")

    assert (summary.bars, summary.actions, len(summary.symbols)) == (6, 1, 2)
    assert (summary.first_date, summary.last_date) == (START, END)
    assert count(conn, "raw.daily_prices") == 6
    assert count(conn, "raw.corporate_actions") == 1

    corrected = history([bars("AAA", [10, 11, 12, 14]), bars("BBB", [20, 21])])
    load(conn, corrected, ["AAA", "BBB"], start=START, end=END, partition_key="w")
    close = conn.execute(
        "select close from raw.daily_prices where symbol = 'AAA' and date = %s", (END,)
    ).fetchone()
    assert close == (14.0,)
    assert count(conn, "raw.corporate_actions") == 0


def test_rows_outside_the_window_are_untouched(conn: psycopg.Connection) -> None:
    load(conn, history([bars("AAA", [10, 11, 12, 13])]), ["AAA"], start=START, end=END, partition_key="w")
    one_day = validated_history(
        [bars("AAA", [99], ["2024-01-05"])], [], [], provider="test", start=END, end=END
    )
    load(conn, one_day, ["AAA"], start=END, end=END, partition_key="2024-01-05")
    closes = [row[0] for row in conn.execute("select close from raw.daily_prices order by date")]
    assert closes == [10, 11, 12, 99]


def test_a_symbol_the_provider_failed_keeps_its_previous_rows(conn: psycopg.Connection) -> None:
    load(
        conn,
        history([bars("AAA", [10, 11]), bars("BBB", [20, 21])]),
        ["AAA", "BBB"],
        start=START,
        end=END,
        partition_key="w",
    )
    outage = history(
        [bars("AAA", [10, 12])],
        failures=[SymbolFailure("BBB", "http://x/BBB", "HTTP 503 (symbol BBB)", "test")],
    )
    summary = load(conn, outage, ["AAA", "BBB"], start=START, end=END, partition_key="w")

    assert summary.failed_symbols == ["BBB"]
    assert count(conn, "raw.daily_prices") == 4
    rule, detail = conn.execute(
        "select rule, detail from raw.quarantined_rows where symbol = 'BBB'"
    ).fetchone()  # type: ignore[misc]
    assert rule == "provider_error" and "503" in detail


def test_rejected_rows_are_quarantined_and_cleared_on_reload(conn: psycopg.Connection) -> None:
    bad = bars("AAA", [10, -11, 12, 13])
    returned = history([bad])
    summary = load(conn, returned, ["AAA"], start=START, end=END, partition_key="w")
    assert summary.bars + summary.quarantined == len(bad), "loaded plus quarantined equals what was returned"
    row = conn.execute(
        "select rule, source, source_row, date, record->>'close' from raw.quarantined_rows"
    ).fetchone()
    assert row == ("non_positive_price", "test://AAA", 2, date(2024, 1, 3), "-11.0")

    load(conn, history([bars("AAA", [10, 11, 12, 13])]), ["AAA"], start=START, end=END, partition_key="w")
    assert count(conn, "raw.quarantined_rows") == 0
    assert count(conn, "raw.daily_prices") == 4


def test_a_failed_load_leaves_the_previous_data(conn: psycopg.Connection) -> None:
    load(conn, history([bars("AAA", [10, 11])]), ["AAA"], start=START, end=END, partition_key="w")
    broken = history([bars("AAA", [50, 51])])
    broken.bars["provider"] = None  # violates NOT NULL mid-COPY
    with pytest.raises(psycopg.errors.NotNullViolation):
        load(conn, broken, ["AAA"], start=START, end=END, partition_key="w")
    conn.rollback()
    assert [r[0] for r in conn.execute("select close from raw.daily_prices order by date")] == [10, 11]


def test_load_stocks_replaces_the_universe(conn: psycopg.Connection) -> None:
    metadata = pd.DataFrame(
        {
            "symbol": ["AAA", "BBB"],
            "name": ["A Inc", "B Inc"],
            "sector": ["Energy", None],
            "industry": [None, None],
            "market_cap": [1e9, None],
            "currency": ["USD", None],
            "exchange": ["XNYS", None],
        }
    )
    warehouse.load_stocks(conn, metadata, provider="sample", synthetic=True)
    warehouse.load_stocks(conn, metadata.iloc[:1], provider="sample", synthetic=True)
    assert warehouse.universe_symbols(conn) == ["AAA"]
    assert conn.execute("select is_synthetic from raw.stocks").fetchone() == (True,)


def test_ingest_streams_chunks_of_symbols_into_one_load(conn: psycopg.Connection) -> None:
    provider = SampleProvider(n_symbols=12, start=date(2024, 1, 2), end=date(2024, 2, 29))
    symbols = provider.symbols()
    summary = warehouse.ingest(
        conn,
        provider,
        symbols,
        start=date(2024, 1, 2),
        end=date(2024, 2, 29),
        partition_key="w",
        chunk_size=5,
    )
    whole = provider.history(symbols, date(2024, 1, 2), date(2024, 2, 29))
    assert summary.bars == len(whole.bars) == count(conn, "raw.daily_prices")
    assert summary.actions == len(whole.actions) == count(conn, "raw.corporate_actions")
    assert summary.served_by == {"sample": len(set(whole.bars["symbol"]))}
    assert (summary.first_date, summary.last_date) == (date(2024, 1, 2), date(2024, 2, 29))


def test_a_load_of_a_tenth_of_a_table_or_more_refreshes_its_statistics(conn: psycopg.Connection) -> None:
    provider = SampleProvider(n_symbols=12, start=date(2024, 1, 2), end=date(2024, 3, 1))
    symbols = provider.symbols()
    warehouse.ingest(
        conn, provider, symbols, start=date(2024, 1, 2), end=date(2024, 2, 29), partition_key="w"
    )
    # A table this small is analyzed whole: the count is exact, this load's rows included.
    backfilled = count(conn, "raw.daily_prices")
    assert planned_rows(conn, "raw.daily_prices") == backfilled

    warehouse.ingest(conn, provider, symbols, start=date(2024, 3, 1), end=date(2024, 3, 1), partition_key="d")
    assert count(conn, "raw.daily_prices") > backfilled
    # One more day is under a tenth: left to autovacuum.
    assert planned_rows(conn, "raw.daily_prices") == backfilled


def planned_rows(conn: psycopg.Connection, table: str) -> float:
    row = conn.execute("select reltuples from pg_class where oid = %s::regclass", (table,)).fetchone()
    assert row is not None
    return float(row[0])
