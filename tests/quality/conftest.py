"""Shared fixtures of the data-quality tests: one small synthetic market, a window of it, a database."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import psycopg
import pytest

from stockyard import warehouse
from stockyard.marketdata.sample import SampleProvider
from tests.quality.support import (
    HISTORY_START,
    N_SYMBOLS,
    WINDOW,
)
from tests.support import throwaway_database


@pytest.fixture(scope="session")
def sample_market() -> SampleProvider:
    return SampleProvider(n_symbols=N_SYMBOLS, start=HISTORY_START)


@pytest.fixture(scope="session")
def steady_symbols(sample_market: SampleProvider) -> list[str]:
    """Symbols with a bar on every trading day of the window (listed before it)."""
    bars = sample_market.history(sample_market.symbols(), HISTORY_START, WINDOW.last).bars
    first = bars.groupby("symbol")["date"].min()
    return sorted(first.index[first < pd.Timestamp(WINDOW.first)])


@pytest.fixture(scope="module")
def quality_database(sample_market: SampleProvider) -> Iterator[str]:
    """A warehouse of this module's own, with the sample universe in raw.stocks."""
    with throwaway_database() as url:
        with psycopg.connect(url) as conn:
            metadata = sample_market.metadata(sample_market.symbols())
            warehouse.load_stocks(conn, metadata, provider=sample_market.name, synthetic=True)
        yield url
