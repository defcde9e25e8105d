"""The window and the row counts the data-quality tests share."""

from __future__ import annotations

from datetime import date

import pandas as pd
import psycopg

from stockyard import warehouse
from stockyard.marketdata.base import MarketDataProvider
from stockyard.quality.results import Window

HISTORY_START = date(2024, 1, 2)
N_SYMBOLS = 12
# The checked window; defects go on days well inside it.
WINDOW = Window.of(date(2024, 2, 1), date(2024, 3, 28))
DEFECT_DAY = date(2024, 2, 21)


def load_window(conn: psycopg.Connection, provider: MarketDataProvider, window: Window = WINDOW) -> None:
    """Replace the window's raw rows (and its quarantine) with what `provider` returns for every symbol."""
    warehouse.ingest(
        conn,
        provider,
        provider.symbols(),
        start=window.first,
        end=window.last,
        partition_key=window.partition_key,
    )


def returned_rows(provider: MarketDataProvider, window: Window = WINDOW) -> pd.Series:
    """Bars the provider returns for the window per date: loaded plus quarantined rows must add up to it."""
    dates = [
        pd.to_datetime(provider.fetch_symbol(symbol, window.first, window.last)[0]["date"])
        for symbol in provider.symbols()
    ]
    returned = pd.concat(dates).dt.date
    return returned[returned.between(window.first, window.last)].value_counts().sort_index()


def accounted_rows(conn: psycopg.Connection, window: Window = WINDOW) -> pd.Series:
    """Loaded plus quarantined bars per date of the window."""
    rows = conn.execute(
        """
        select date, count(*) from (
            select date from raw.daily_prices where date between %(first)s and %(last)s
            union all
            select date from raw.quarantined_rows
            where dataset = 'daily_prices' and date between %(first)s and %(last)s
        ) as accounted
        group by date order by date
        """,
        {"first": window.first, "last": window.last},
    ).fetchall()
    return pd.Series(dict(rows), name="count").rename_axis(None)
