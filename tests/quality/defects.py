"""Bad market data on purpose: a provider wrapper that injects the defects real providers produce.

Used by the tests and to show what the checks catch on the sample market. Each defect kind names the rule
that should catch it (`CAUGHT_BY`): row rules quarantine the row on the way in, flags warn once it is loaded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

import numpy as np
import pandas as pd

from stockyard import rules
from stockyard.marketdata.base import MarketDataProvider

# Bars in a row that repeat the bar before them in a stale-repeats defect.
STALE_DAYS = 3


class DefectKind(StrEnum):
    HIGH_BELOW_LOW = "high_below_low"
    ZERO_PRICE = "zero_price"
    NEGATIVE_PRICE = "negative_price"
    MISSING_PRICE = "missing_price"
    NEGATIVE_VOLUME = "negative_volume"
    ZERO_VOLUME = "zero_volume"
    DUPLICATE_ROW = "duplicate_row"
    DUPLICATE_IDENTICAL = "duplicate_identical"
    NON_TRADING_DAY = "non_trading_day"
    GAP = "gap"
    STALE_REPEATS = "stale_repeats"
    UNANNOUNCED_SPLIT = "unannounced_split"


CAUGHT_BY: dict[DefectKind, str] = {
    DefectKind.HIGH_BELOW_LOW: rules.HIGH_LOW_INCONSISTENT,
    DefectKind.ZERO_PRICE: rules.NON_POSITIVE_PRICE,
    DefectKind.NEGATIVE_PRICE: rules.NON_POSITIVE_PRICE,
    DefectKind.MISSING_PRICE: rules.MISSING_PRICE,
    DefectKind.NEGATIVE_VOLUME: rules.INVALID_VOLUME,
    DefectKind.ZERO_VOLUME: rules.ZERO_VOLUME,
    DefectKind.DUPLICATE_ROW: rules.DUPLICATE_ROW,
    DefectKind.DUPLICATE_IDENTICAL: rules.DUPLICATE_IDENTICAL,
    DefectKind.NON_TRADING_DAY: rules.NON_TRADING_DAY,
    DefectKind.GAP: rules.GAP,
    DefectKind.STALE_REPEATS: rules.STALE_PRICE,
    DefectKind.UNANNOUNCED_SPLIT: rules.UNEXPLAINED_MOVE,
}


@dataclass(frozen=True)
class Defect:
    """`kind` injected into `symbol`'s bar on `day` (for non_trading_day: a bar added on that closed day;
    for unannounced_split: every bar from that day on; for duplicate_row: a second bar with another volume;
    for duplicate_identical: an exact copy of the bar)."""

    kind: DefectKind
    symbol: str
    day: date


class DefectInjectingProvider(MarketDataProvider):
    """`inner`'s data, served bar by bar through the standard validation, with `defects` injected."""

    def __init__(self, inner: MarketDataProvider, defects: Iterable[Defect]) -> None:
        self.inner = inner
        self.defects = list(defects)
        self.name = inner.name
        self.synthetic = inner.synthetic

    def symbols(self) -> list[str]:
        return self.inner.symbols()

    def metadata(self, symbols: Sequence[str]) -> pd.DataFrame:
        return self.inner.metadata(symbols)

    def fetch_symbol(self, symbol: str, start: date, end: date) -> tuple[pd.DataFrame, pd.DataFrame]:
        bars, actions = self.inner.fetch_symbol(symbol, start, end)
        for defect in self.defects:
            if defect.symbol == symbol:
                bars = inject(bars, defect)
        return bars, actions


def inject(bars: pd.DataFrame, defect: Defect) -> pd.DataFrame:
    """One symbol's raw bars (dates ascending) with `defect` injected."""
    bars = bars.reset_index(drop=True).copy()
    dates = pd.to_datetime(bars["date"])
    day = pd.Timestamp(defect.day)
    on_day = dates == day
    match defect.kind:
        case DefectKind.HIGH_BELOW_LOW:
            bars.loc[on_day, "high"] = bars.loc[on_day, "low"] * 0.95
        case DefectKind.ZERO_PRICE:
            bars.loc[on_day, "close"] = 0.0
        case DefectKind.NEGATIVE_PRICE:
            bars.loc[on_day, "open"] = -bars.loc[on_day, "open"]
        case DefectKind.MISSING_PRICE:
            bars.loc[on_day, "close"] = np.nan
        case DefectKind.NEGATIVE_VOLUME:
            bars.loc[on_day, "volume"] = -bars.loc[on_day, "volume"]
        case DefectKind.ZERO_VOLUME:
            bars.loc[on_day, "volume"] = 0
        case DefectKind.DUPLICATE_ROW:
            # A second bar for the day that disagrees with the first on the volume.
            other = bars.loc[on_day].assign(volume=bars.loc[on_day, "volume"] + 1)
            bars = pd.concat([bars, other], ignore_index=True)
        case DefectKind.DUPLICATE_IDENTICAL:
            bars = pd.concat([bars, bars.loc[on_day]], ignore_index=True)
        case DefectKind.NON_TRADING_DAY:
            earlier = bars.loc[dates < day]
            if not earlier.empty:
                bars = pd.concat([bars, earlier.tail(1).assign(date=day)], ignore_index=True)
        case DefectKind.GAP:
            bars = bars.loc[~on_day]
        case DefectKind.STALE_REPEATS:
            positions = np.flatnonzero(on_day)
            if len(positions) and positions[0] > 0:
                first = positions[0]
                repeated = bars.loc[first - 1, ["open", "high", "low", "close", "volume"]]
                bars.loc[first : first + STALE_DAYS - 1, repeated.index] = repeated.to_numpy()
        case DefectKind.UNANNOUNCED_SPLIT:
            after = dates >= day
            bars.loc[after, ["open", "high", "low", "close"]] = (
                bars.loc[after, ["open", "high", "low", "close"]] / 2
            ).round(2)
            bars.loc[after, "volume"] = bars.loc[after, "volume"] * 2
    return bars.sort_values("date", kind="stable", key=pd.to_datetime).reset_index(drop=True)
