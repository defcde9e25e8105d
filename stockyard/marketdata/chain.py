"""A fallback chain: each symbol is served by the first provider that can, and the rows say which one did."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date

import pandas as pd

from stockyard.marketdata.base import MarketDataProvider, validated_history
from stockyard.marketdata.schema import (
    METADATA_COLUMNS,
    History,
    MarketDataError,
    SymbolFailure,
    empty_actions,
    empty_bars,
    empty_metadata,
    empty_rejects,
)

logger = logging.getLogger(__name__)

_DESCRIPTIVE = [column for column in METADATA_COLUMNS if column != "symbol"]


class UnservedSymbolError(MarketDataError):
    """No provider in the chain could serve a symbol; `failures` holds each provider's error."""

    def __init__(self, symbol: str, failures: list[SymbolFailure]) -> None:
        reasons = "; ".join(f"{failure.provider}: {failure.message}" for failure in failures)
        super().__init__(f"no provider could serve it ({reasons})", symbol=symbol)
        self.failures = failures


class FallbackChain(MarketDataProvider):
    """Providers tried in order per symbol; a MarketDataError moves on to the next one.

    `history()` stamps each row's `provider` with the member that served its symbol, and a symbol no member
    could serve is recorded with one failure per member.
    """

    def __init__(self, providers: Sequence[MarketDataProvider]) -> None:
        if not providers:
            raise ValueError("a fallback chain needs at least one provider")
        self.providers = list(providers)
        self.name = f"chain({','.join(provider.name for provider in self.providers)})"
        self.synthetic = any(provider.synthetic for provider in self.providers)

    def symbols(self) -> list[str]:
        """Every member's symbols, in chain order, without repeats."""
        return list(dict.fromkeys(symbol for provider in self.providers for symbol in provider.symbols()))

    def metadata(self, symbols: Sequence[str]) -> pd.DataFrame:
        """Each symbol's row from the first member that knows anything about it beyond the symbol."""
        found: list[pd.DataFrame] = []
        remaining = list(symbols)
        for provider in self.providers:
            if not remaining:
                break
            try:
                frame = provider.metadata(remaining)
            except MarketDataError as error:
                logger.warning("%s: no metadata from %s: %s", self.name, provider.name, error)
                continue
            known = frame.loc[frame[_DESCRIPTIVE].notna().any(axis=1)]
            found.append(known)
            served = set(known["symbol"])
            remaining = [symbol for symbol in remaining if symbol not in served]
        unknown = pd.DataFrame({"symbol": remaining}).reindex(columns=list(empty_metadata().columns))
        unknown["provider"] = self.name
        return _concat([*found, unknown], empty_metadata())

    def fetch_symbol(self, symbol: str, start: date, end: date) -> tuple[pd.DataFrame, pd.DataFrame]:
        _, bars, actions = self._serve(symbol, start, end)
        return bars, actions

    def history(self, symbols: Sequence[str], start: date, end: date) -> History:
        """Validated history, each symbol from the first member that serves it, the rows stamped with it."""
        served: dict[str, tuple[list[pd.DataFrame], list[pd.DataFrame]]] = {}
        failures: list[SymbolFailure] = []
        for symbol in symbols:
            try:
                provider, bars, actions = self._serve(symbol, start, end)
            except UnservedSymbolError as error:
                failures.extend(error.failures)
                continue
            provider_bars, provider_actions = served.setdefault(provider.name, ([], []))
            provider_bars.append(bars)
            provider_actions.append(actions)
        # Validate per serving member so its name is stamped on its rows and rejects.
        parts = [
            validated_history(bars, actions, [], provider=name, start=start, end=end)
            for name, (bars, actions) in served.items()
        ]
        return History(
            bars=_concat([part.bars for part in parts], empty_bars()),
            actions=_concat([part.actions for part in parts], empty_actions()),
            rejects=_concat([part.rejects for part in parts], empty_rejects()),
            failures=failures,
        )

    def _serve(
        self, symbol: str, start: date, end: date
    ) -> tuple[MarketDataProvider, pd.DataFrame, pd.DataFrame]:
        failures: list[SymbolFailure] = []
        for provider in self.providers:
            try:
                bars, actions = provider.fetch_symbol(symbol, start, end)
            except MarketDataError as error:
                failures.append(SymbolFailure.of(symbol, error, provider.name))
                continue
            if failures:
                logger.warning(
                    "%s: %s served by %s after: %s",
                    self.name,
                    symbol,
                    provider.name,
                    "; ".join(f"{failure.provider}: {failure.message}" for failure in failures),
                )
            return provider, bars, actions
        raise UnservedSymbolError(symbol, failures)


def _concat(frames: list[pd.DataFrame], empty: pd.DataFrame) -> pd.DataFrame:
    """Concatenate the non-empty frames (an empty one would blur the dtypes), or return `empty`."""
    frames = [frame for frame in frames if not frame.empty]
    return pd.concat(frames, ignore_index=True) if frames else empty
