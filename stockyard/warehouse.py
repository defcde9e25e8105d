"""Writing provider output into the raw schema of the PostgreSQL warehouse.

A load replaces a date window in one transaction: delete the window, COPY the new rows, record what was set
aside. A failed load rolls back and leaves the previous data; loading the same window twice leaves no
duplicates.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib import resources

import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv

from stockyard.marketdata.schema import History

BAR_TABLE_COLUMNS = ["symbol", "date", "open", "high", "low", "close", "volume", "provider", "loaded_at"]
ACTION_TABLE_COLUMNS = ["symbol", "ex_date", "split_ratio", "cash_dividend", "provider", "loaded_at"]
STOCK_TABLE_COLUMNS = [
    "symbol",
    "name",
    "sector",
    "industry",
    "market_cap",
    "currency",
    "exchange",
    "provider",
    "is_synthetic",
    "loaded_at",
]
QUARANTINE_COLUMNS = [
    "dataset",
    "partition_key",
    "provider",
    "symbol",
    "date",
    "source",
    "source_row",
    "rule",
    "detail",
    "record",
    "loaded_at",
]
_COPY_CHUNK_BYTES = 8 << 20


@dataclass(frozen=True)
class LoadSummary:
    bars: int
    actions: int
    quarantined: int
    failed_symbols: list[str]
    symbols: int
    first_date: date | None
    last_date: date | None


def connect(database_url: str) -> psycopg.Connection:
    return psycopg.connect(database_url)


def ensure_raw_schema(conn: psycopg.Connection) -> None:
    ddl = resources.files("stockyard").joinpath("sql/raw_schema.sql").read_text()
    # Concurrent first loads race on "create ... if not exists"; a transaction-scoped lock serializes them.
    conn.execute("select pg_advisory_xact_lock(hashtext('stockyard.raw_schema'))")
    conn.execute(ddl)


def copy_frame(conn: psycopg.Connection, table: str, frame: pd.DataFrame, columns: Sequence[str]) -> int:
    """COPY `frame[columns]` into `table` as CSV written by Arrow (much faster than row-by-row)."""
    if frame.empty:
        return 0
    arrow = pa.Table.from_pandas(frame[list(columns)], preserve_index=False)
    buffer = io.BytesIO()
    pacsv.write_csv(arrow, buffer, write_options=pacsv.WriteOptions(include_header=False))
    payload = buffer.getbuffer()
    column_list = ", ".join(columns)
    with conn.cursor().copy(f"copy {table} ({column_list}) from stdin with (format csv)") as copy:
        for offset in range(0, len(payload), _COPY_CHUNK_BYTES):
            copy.write(payload[offset : offset + _COPY_CHUNK_BYTES])
    return len(frame)


def load_history(
    conn: psycopg.Connection,
    history: History,
    *,
    start: date,
    end: date,
    partition_key: str,
    symbols: Sequence[str],
) -> LoadSummary:
    """Replace [start, end] for the symbols that were served, in one transaction.

    Symbols the provider could not serve keep their previous rows (a provider outage must not erase data);
    their failure is recorded in quarantine with rule `provider_error`.
    """
    loaded_at = datetime.now(UTC)
    failed = sorted({failure.symbol for failure in history.failures})
    served = sorted(set(symbols) - set(failed))
    with conn.transaction():
        ensure_raw_schema(conn)
        conn.execute(
            "delete from raw.daily_prices where date between %s and %s and symbol = any(%s)",
            (start, end, served),
        )
        conn.execute(
            "delete from raw.corporate_actions where ex_date between %s and %s and symbol = any(%s)",
            (start, end, served),
        )
        clear_quarantine(
            conn,
            datasets=("daily_prices", "corporate_actions"),
            start=start,
            end=end,
            partition_key=partition_key,
        )
        bars = history.bars.assign(loaded_at=loaded_at)
        actions = history.actions.assign(loaded_at=loaded_at)
        n_bars = copy_frame(conn, "raw.daily_prices", bars, BAR_TABLE_COLUMNS)
        n_actions = copy_frame(conn, "raw.corporate_actions", actions, ACTION_TABLE_COLUMNS)
        n_quarantined = quarantine(conn, history, partition_key=partition_key, loaded_at=loaded_at)
    dates = history.bars["date"]
    return LoadSummary(
        bars=n_bars,
        actions=n_actions,
        quarantined=n_quarantined,
        failed_symbols=failed,
        symbols=int(history.bars["symbol"].nunique()),
        first_date=dates.min().date() if n_bars else None,
        last_date=dates.max().date() if n_bars else None,
    )


def clear_quarantine(
    conn: psycopg.Connection, *, datasets: Sequence[str], start: date, end: date, partition_key: str
) -> None:
    """Forget what an earlier load of this window set aside (undated rows are matched by partition key)."""
    conn.execute(
        """
        delete from raw.quarantined_rows
        where dataset = any(%s)
          and (date between %s and %s or (date is null and partition_key = %s))
        """,
        (list(datasets), start, end, partition_key),
    )


def quarantine(conn: psycopg.Connection, history: History, *, partition_key: str, loaded_at: datetime) -> int:
    rejects = history.rejects.copy()
    failures = pd.DataFrame(
        [
            {
                "dataset": "daily_prices",
                "provider": failure.provider,
                "symbol": failure.symbol,
                "date": None,
                "source": failure.source,
                "source_row": None,
                "rule": "provider_error",
                "detail": failure.message,
                "record": None,
            }
            for failure in history.failures
        ],
        columns=["dataset", "provider", "symbol", "date", "source", "source_row", "rule", "detail", "record"],
    )
    frame = (
        pd.concat([df for df in (rejects, failures) if not df.empty], ignore_index=True)
        if (not rejects.empty or not failures.empty)
        else failures
    )
    if frame.empty:
        return 0
    frame["partition_key"] = partition_key
    frame["loaded_at"] = loaded_at
    frame["date"] = pd.to_datetime(frame["date"], errors="coerce").dt.date
    frame["source_row"] = pd.to_numeric(frame["source_row"], errors="coerce").astype("Int64")
    frame["record"] = [json.dumps(r, default=str) if r is not None else None for r in frame["record"]]
    rows = frame[QUARANTINE_COLUMNS].astype(object).where(frame[QUARANTINE_COLUMNS].notna(), None)
    placeholders = ", ".join(["%s"] * len(QUARANTINE_COLUMNS))
    with conn.cursor() as cursor:
        cursor.executemany(
            f"insert into raw.quarantined_rows ({', '.join(QUARANTINE_COLUMNS)}) values ({placeholders})",
            rows.itertuples(index=False, name=None),
        )
    return len(frame)


def load_stocks(conn: psycopg.Connection, metadata: pd.DataFrame, *, provider: str, synthetic: bool) -> int:
    """Replace the stock universe in one transaction."""
    loaded_at = datetime.now(UTC)
    frame = metadata.assign(provider=provider, is_synthetic=synthetic, loaded_at=loaded_at)
    if "provider" in metadata:
        frame["provider"] = metadata["provider"].fillna(provider)
    with conn.transaction():
        ensure_raw_schema(conn)
        conn.execute("delete from raw.stocks")
        return copy_frame(conn, "raw.stocks", frame, STOCK_TABLE_COLUMNS)


def universe_symbols(conn: psycopg.Connection) -> list[str]:
    ensure_raw_schema(conn)
    return [row[0] for row in conn.execute("select symbol from raw.stocks order by symbol")]
