"""Writing provider output into the raw schema of the PostgreSQL warehouse.

A load replaces a date window in one transaction: delete the window, COPY the new rows, record what was set
aside. A failed load rolls back and leaves the previous data; loading the same window twice leaves no
duplicates. The tables are stockyard.db.catalogue's; stockyard.db.migrate.upgrade creates them.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import LiteralString, TypeVar

import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv

from stockyard import rules
from stockyard.db.catalogue import (
    raw_corporate_actions,
    raw_daily_prices,
    raw_quarantined_rows,
    raw_stocks,
    written_columns,
)
from stockyard.marketdata.base import MarketDataProvider
from stockyard.marketdata.schema import History, SymbolFailure

T = TypeVar("T")

# loaded_at is left to the tables' default, now(): the loading transaction's start, the same for every row.
BAR_TABLE_COLUMNS = list(written_columns(raw_daily_prices))
ACTION_TABLE_COLUMNS = list(written_columns(raw_corporate_actions))
STOCK_TABLE_COLUMNS = list(written_columns(raw_stocks))
QUARANTINE_COLUMNS = list(written_columns(raw_quarantined_rows, leaving=("id", "loaded_at")))
_COPY_CHUNK_BYTES = 8 << 20
# A load this large a share of a table's rows refreshes its statistics (autovacuum_analyze_scale_factor's
# default).
ANALYZE_SHARE = 0.1


@dataclass
class LoadSummary:
    """What one load wrote, set aside and could not fetch, for the asset's metadata."""

    bars: int = 0
    actions: int = 0
    splits: int = 0
    dividends: int = 0
    quarantined: int = 0
    failures: list[SymbolFailure] = field(default_factory=list)
    symbols: set[str] = field(default_factory=set)
    served_by: Counter[str] = field(default_factory=Counter)
    first_date: date | None = None
    last_date: date | None = None
    #: Columns of the source no layout uses, and the files that have them.
    ignored_columns: dict[str, set[str]] = field(default_factory=dict)

    @property
    def failed_symbols(self) -> list[str]:
        return sorted({failure.symbol for failure in self.failures})

    @property
    def failed_sources(self) -> list[str]:
        """The files (or URLs) whose symbols could not be served."""
        return sorted({failure.source for failure in self.failures if failure.source})

    @property
    def failed_by_reason(self) -> dict[str, list[str]]:
        """Why symbols could not be served: each reason with its symbols."""
        by_reason: dict[str, set[str]] = {}
        for failure in self.failures:
            by_reason.setdefault(failure.why, set()).add(failure.symbol)
        return {reason: sorted(symbols) for reason, symbols in sorted(by_reason.items())}

    def add(self, history: History) -> None:
        self.failures += history.failures
        for column, sources in history.ignored_columns.items():
            self.ignored_columns.setdefault(column, set()).update(sources)
        if history.bars.empty:
            return
        self.symbols.update(history.bars["symbol"].unique())
        self.served_by.update(history.served_by.values())
        first, last = history.bars["date"].min().date(), history.bars["date"].max().date()
        self.first_date = min(first, self.first_date or first)
        self.last_date = max(last, self.last_date or last)
        self.splits += int((history.actions["split_ratio"] != 1.0).sum())
        self.dividends += int((history.actions["cash_dividend"] > 0).sum())


def connect(database_url: str) -> psycopg.Connection:
    return psycopg.connect(database_url)


def copy_frame(conn: psycopg.Connection, table: str, frame: pd.DataFrame, columns: Sequence[str]) -> int:
    """COPY `frame[columns]` into `table` as CSV written by Arrow (much faster than row-by-row)."""
    if frame.empty:
        return 0
    arrow = pa.Table.from_pandas(frame[list(columns)], preserve_index=False)
    # Dates travel as plain dates: formatting full timestamps costs more than the COPY itself saves.
    for index, arrow_field in enumerate(arrow.schema):
        if pa.types.is_timestamp(arrow_field.type):
            arrow = arrow.set_column(index, arrow_field.name, arrow.column(index).cast(pa.date32()))
    buffer = io.BytesIO()
    pacsv.write_csv(arrow, buffer, write_options=pacsv.WriteOptions(include_header=False))
    payload = buffer.getbuffer()
    column_list = ", ".join(columns)
    with conn.cursor().copy(f"copy {table} ({column_list}) from stdin with (format csv)") as copy:
        for offset in range(0, len(payload), _COPY_CHUNK_BYTES):
            copy.write(payload[offset : offset + _COPY_CHUNK_BYTES])
    return len(frame)


def ingest(
    conn: psycopg.Connection,
    provider: MarketDataProvider,
    symbols: Sequence[str],
    *,
    start: date,
    end: date,
    partition_key: str,
    chunk_size: int = 64,
) -> LoadSummary:
    """Fetch [start, end] from `provider` in chunks of symbols and load them in one transaction.

    The next chunk is fetched and validated in a thread while the current one streams into COPY, so reading
    and the database work overlap and only two chunks are in memory at a time.
    """
    chunks = [list(symbols[i : i + chunk_size]) for i in range(0, len(symbols), chunk_size)]
    fetched = _prefetched((chunk, provider.history(chunk, start, end)) for chunk in chunks)
    return load_history(conn, fetched, start=start, end=end, partition_key=partition_key)


def load_history(
    conn: psycopg.Connection,
    chunks: Iterable[tuple[Sequence[str], History]],
    *,
    start: date,
    end: date,
    partition_key: str,
) -> LoadSummary:
    """Replace [start, end] for the requested symbols that were served, all in one transaction.

    `chunks` pairs the symbols asked for with what came back. Symbols the provider could not serve keep their
    previous rows (an outage must not erase data); the failure is recorded in quarantine as `provider_error`.
    """
    summary = LoadSummary()
    with conn.transaction():
        clear_quarantine(
            conn,
            datasets=("daily_prices", "corporate_actions"),
            start=start,
            end=end,
            partition_key=partition_key,
        )
        for requested, history in chunks:
            failed = {failure.symbol for failure in history.failures}
            served = sorted(set(requested) - failed)
            conn.execute(
                "delete from raw.daily_prices where date between %s and %s and symbol = any(%s)",
                (start, end, served),
            )
            conn.execute(
                "delete from raw.corporate_actions where ex_date between %s and %s and symbol = any(%s)",
                (start, end, served),
            )
            summary.bars += copy_frame(conn, "raw.daily_prices", history.bars, BAR_TABLE_COLUMNS)
            summary.actions += copy_frame(
                conn, "raw.corporate_actions", history.actions, ACTION_TABLE_COLUMNS
            )
            summary.quarantined += quarantine(conn, history, partition_key=partition_key)
            summary.add(history)
        analyze_if_grown(conn, "raw.daily_prices", summary.bars)
        analyze_if_grown(conn, "raw.corporate_actions", summary.actions)
    return summary


def analyze_if_grown(conn: psycopg.Connection, table: LiteralString, loaded: int) -> None:
    """Refresh `table`'s planner statistics when `loaded` rows are a tenth of what they counted or more.

    Autovacuum would too, but later: the checks and dbt that read a backfill next would plan on statistics
    that have not seen it (a sort of millions of rows the estimates put at thousands)."""
    (counted,) = conn.execute(  # type: ignore[misc]  # one row: the table exists
        "select reltuples from pg_class where oid = %s::regclass", (table,)
    ).fetchone()
    # -1: never analyzed.
    if loaded > 0 and loaded >= ANALYZE_SHARE * max(counted, 0):
        conn.execute(f"analyze {table}")


def _prefetched(items: Iterator[T]) -> Iterator[T]:
    """Iterate `items`, computing the next one in a worker thread while the caller handles the current."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch") as pool:
        pending = pool.submit(next, items, None)
        while (item := pending.result()) is not None:
            pending = pool.submit(next, items, None)
            yield item


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


def quarantine(conn: psycopg.Connection, history: History, *, partition_key: str) -> int:
    """Record the rows validation set aside and the symbols nobody could serve, with their reasons."""
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
                "rule": rules.PROVIDER_ERROR,
                # What went wrong: the symbol and source have columns of their own.
                "detail": failure.why,
                "record": None,
            }
            for failure in history.failures
        ],
        columns=[column for column in QUARANTINE_COLUMNS if column != "partition_key"],
    )
    frame = (
        pd.concat([df for df in (rejects, failures) if not df.empty], ignore_index=True)
        if (not rejects.empty or not failures.empty)
        else failures
    )
    if frame.empty:
        return 0
    frame["partition_key"] = partition_key
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
    """Replace the stock universe in one transaction.

    `sector_as_given` comes from stockyard.marketdata.sectors.map_sectors; metadata loaded without it keeps
    its sector as given.
    """
    frame = metadata.assign(provider=provider, is_synthetic=synthetic)
    if "sector_as_given" not in frame:
        frame["sector_as_given"] = frame["sector"]
    if "provider" in metadata:
        frame["provider"] = metadata["provider"].fillna(provider)
    with conn.transaction():
        conn.execute("delete from raw.stocks")
        return copy_frame(conn, "raw.stocks", frame, STOCK_TABLE_COLUMNS)


def universe_symbols(conn: psycopg.Connection) -> list[str]:
    return [row[0] for row in conn.execute("select symbol from raw.stocks order by symbol")]
