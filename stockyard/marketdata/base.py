"""The one interface every market-data provider implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import date

import pandas as pd

from stockyard.marketdata.schema import (
    History,
    SymbolFailure,
    empty_actions,
    empty_bars,
    empty_rejects,
    validate_actions,
    validate_bars,
)


class MarketDataProvider(ABC):
    """A source of daily bars, corporate actions and stock metadata in the standard schema.

    Implementations return raw rows with lineage (`source`, `source_row`); `history()` validates them and
    sets aside what breaks a rule, so every provider gets the same checks on the way in.
    """

    name: str
    #: True when the data is generated, not observed; it is labelled as synthetic wherever it surfaces.
    synthetic: bool = False

    @abstractmethod
    def symbols(self) -> list[str]:
        """The universe this provider serves."""

    @abstractmethod
    def metadata(self, symbols: Sequence[str]) -> pd.DataFrame:
        """METADATA_COLUMNS for the given symbols (columns a provider does not know are null)."""

    @abstractmethod
    def fetch_symbol(self, symbol: str, start: date, end: date) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Unvalidated bars and corporate actions for one symbol between start and end inclusive.

        Bars: BAR_COLUMNS + `source`, `source_row` (dates may be text); actions: ACTION_COLUMNS + lineage.
        Raises MarketDataError when the symbol cannot be served at all.
        """

    def history(self, symbols: Sequence[str], start: date, end: date) -> History:
        """Validated history for `symbols`; a symbol that fails is recorded and the others still load."""
        return collect_history(self, symbols, start, end)


def collect_history(provider: MarketDataProvider, symbols: Sequence[str], start: date, end: date) -> History:
    from stockyard.marketdata.schema import MarketDataError

    bars: list[pd.DataFrame] = []
    actions: list[pd.DataFrame] = []
    failures: list[SymbolFailure] = []
    for symbol in symbols:
        try:
            symbol_bars, symbol_actions = provider.fetch_symbol(symbol, start, end)
        except MarketDataError as error:
            failures.append(SymbolFailure.of(symbol, error, provider.name))
            continue
        bars.append(symbol_bars)
        actions.append(symbol_actions)
    return validated_history(bars, actions, failures, provider=provider.name, start=start, end=end)


def validated_history(
    bars: list[pd.DataFrame],
    actions: list[pd.DataFrame],
    failures: list[SymbolFailure],
    *,
    provider: str,
    start: date,
    end: date,
) -> History:
    """Validate raw frames, stamp the provider, and keep only rows inside [start, end]."""
    bar_frame = (
        pd.concat([b for b in bars if not b.empty], ignore_index=True)
        if any(not b.empty for b in bars)
        else empty_bars()
    )
    action_frame = (
        pd.concat([a for a in actions if not a.empty], ignore_index=True)
        if any(not a.empty for a in actions)
        else empty_actions()
    )
    bar_frame["provider"] = provider
    action_frame["provider"] = provider
    clean_bars, bar_rejects = validate_bars(bar_frame)
    clean_actions, action_rejects = validate_actions(action_frame)
    lo, hi = pd.Timestamp(start), pd.Timestamp(end)
    clean_bars = clean_bars.loc[clean_bars["date"].between(lo, hi)].reset_index(drop=True)
    clean_actions = clean_actions.loc[clean_actions["ex_date"].between(lo, hi)].reset_index(drop=True)
    rejects = [r for r in (bar_rejects, action_rejects) if not r.empty]
    reject_frame = pd.concat(rejects, ignore_index=True) if rejects else empty_rejects()
    if not reject_frame.empty:
        dates = pd.to_datetime(reject_frame["date"], errors="coerce", format="mixed")
        # A reject with no readable date cannot be placed in a window: keep it so it is never lost.
        reject_frame = reject_frame.loc[dates.isna() | dates.between(lo, hi)].reset_index(drop=True)
    reject_frame["provider"] = provider
    return History(bars=clean_bars, actions=clean_actions, rejects=reject_frame, failures=failures)
