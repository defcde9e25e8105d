"""The tracked symbols: the market-data provider's universe with the admins' overrides applied
(app.symbol_overrides, written by `POST /admin/symbols` and `DELETE /admin/symbols/{symbol}`).

An added symbol is listed in raw.stocks and fetched, even when the provider does not list it. A retired one is
not fetched any more, but keeps its row in raw.stocks and its prices: its history stays, described (the
metadata check wants every priced symbol in raw.stocks). Retiring a symbol the provider does not list drops it
from raw.stocks at the next ingestion, as when a provider stops listing it; its prices stay.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import psycopg

from stockyard.db.catalogue import symbol_overrides
from stockyard.marketdata.base import MarketDataProvider

Overrides = Mapping[str, bool]


def read_overrides(conn: psycopg.Connection) -> dict[str, bool]:
    """Symbol -> tracked (True: added, False: retired)."""
    table = f"{symbol_overrides.schema}.{symbol_overrides.name}"
    return {row[0]: row[1] for row in conn.execute(f"select symbol, tracked from {table}")}


def listed_symbols(provider_symbols: Sequence[str], overrides: Overrides) -> list[str]:
    """raw.stocks' symbols: the provider's, then the added ones it does not list, without repeats."""
    added = sorted(symbol for symbol, tracked in overrides.items() if tracked)
    return list(dict.fromkeys([*provider_symbols, *added]))


def fetched_symbols(listed: Sequence[str], overrides: Overrides) -> list[str]:
    """The symbols whose bars the ingestion fetches: the listed ones (raw.stocks, where stock_universe put the
    added ones) less the retired."""
    return [symbol for symbol in listed if overrides.get(symbol, True)]


def tracked_metadata(conn: psycopg.Connection, provider: MarketDataProvider) -> pd.DataFrame:
    """The provider's METADATA_COLUMNS for the listed symbols; an added symbol it does not describe gets a row
    with only its symbol, so that the prices fetched for it are described."""
    symbols = listed_symbols(provider.symbols(), read_overrides(conn))
    metadata = provider.metadata(symbols)
    described = metadata.set_index("symbol")
    return (
        described.reindex(described.index.union(symbols, sort=False))
        .rename_axis("symbol")
        .reset_index()[metadata.columns]
    )


def tracked_symbols(conn: psycopg.Connection, listed: Sequence[str]) -> list[str]:
    """The symbols the ingestion fetches, of raw.stocks' `listed` ones (warehouse.universe_symbols)."""
    return fetched_symbols(listed, read_overrides(conn))
