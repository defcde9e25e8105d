"""A small deterministic market in the raw schema's shape, for the dbt tests.

Random-walk bars as traded (unadjusted) with the cases the models must handle: splits (forward, reverse, and
one on the same day as a dividend), quarterly dividends, a listing partway through, a trading halt, a run of
constant volume, flat prices (from a listing, and for 31 sessions without a trade later on: zero-width bands,
no moves for the RSI, a zero variance), a stock without a sector, and a split and a dividend on the very last
day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

SECTORS = ("Energy", "Financials", "Health Care", "Information Technology")


@dataclass(frozen=True)
class RawMarket:
    """Rows for raw.daily_prices, raw.corporate_actions and raw.stocks (without provider and loaded_at)."""

    bars: pd.DataFrame
    actions: pd.DataFrame
    stocks: pd.DataFrame

    @property
    def last_date(self) -> pd.Timestamp:
        return pd.Timestamp(self.bars["date"].max())

    def before(self, day: pd.Timestamp) -> RawMarket:
        """The market as it was known before `day`: bars and actions dated earlier."""
        return RawMarket(
            bars=self.bars.loc[self.bars["date"] < day].reset_index(drop=True),
            actions=self.actions.loc[self.actions["ex_date"] < day].reset_index(drop=True),
            stocks=self.stocks,
        )

    def since(self, day: pd.Timestamp) -> RawMarket:
        """Only the bars and actions dated `day` or later."""
        return RawMarket(
            bars=self.bars.loc[self.bars["date"] >= day].reset_index(drop=True),
            actions=self.actions.loc[self.actions["ex_date"] >= day].reset_index(drop=True),
            stocks=self.stocks.iloc[0:0],
        )


def generate_market(
    n_symbols: int = 16, n_days: int = 320, seed: int = 7, last_day: date = date(2024, 6, 28)
) -> RawMarket:
    rng = np.random.default_rng(seed)
    days = pd.bdate_range(end=pd.Timestamp(last_day), periods=n_days)
    symbols = [f"SY{i:02d}" for i in range(n_symbols)]
    market_moves = rng.normal(0.0003, 0.01, n_days)

    # (symbol index, day index, split ratio, cash dividend as a share of the previous close)
    special_actions = [
        (0, 150, 2.0, 0.0),
        (1, 200, 1.5, 0.004),
        (4, 120, 0.25, 0.0),
        (5, n_days - 1, 1.0, 0.006),
        (6, n_days - 1, 3.0, 0.0),
    ]
    first_day = {2: 90}
    halted_days = {3: range(180, 186)}
    constant_volume_days = {8: range(200, 230)}
    # No price move on these days: the close stays at the day before's, and open = high = low = close.
    flat_days = {10: range(0, 70), 11: range(150, 180)}
    untraded_days = {11: range(150, 180)}

    bars, actions = [], []
    for i, symbol in enumerate(symbols):
        beta = 0.6 + 0.1 * (i % 8)
        log_moves = beta * market_moves + rng.normal(0.0, 0.015, n_days)
        flat = list(flat_days.get(i, ()))
        log_moves[flat] = 0.0
        economic_close = rng.uniform(20, 300) * np.exp(np.cumsum(log_moves))
        symbol_actions = {day: (ratio, share) for s, day, ratio, share in special_actions if s == i}
        if i % 3 == 0:
            for day in range(40, n_days - 1, 63):
                symbol_actions.setdefault(day, (1.0, 0.005))

        # Shares outstanding per old share as of each day: a split divides the price and multiplies volume.
        split_multiplier = np.ones(n_days)
        for day, (ratio, _share) in symbol_actions.items():
            split_multiplier[day:] *= ratio
        close = economic_close / split_multiplier
        open_ = np.concatenate([[close[0]], close[:-1]]) * np.exp(rng.normal(0, 0.004, n_days))
        open_[list(symbol_actions)] = close[list(symbol_actions)] * np.exp(
            rng.normal(0, 0.004, len(symbol_actions))
        )
        high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.006, n_days)))
        low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.006, n_days)))
        volume = np.round(rng.lognormal(13.5, 0.4, n_days) * split_multiplier).astype("int64")
        for day in constant_volume_days.get(i, ()):
            volume[day] = 1_000_000
        open_[flat] = high[flat] = low[flat] = close[flat]
        volume[list(untraded_days.get(i, ()))] = 0

        traded = np.ones(n_days, dtype=bool)
        traded[: first_day.get(i, 0)] = False
        traded[list(halted_days.get(i, ()))] = False
        bars.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "date": days,
                    "open": open_,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume": volume,
                }
            ).loc[traded]
        )
        for day, (ratio, share) in sorted(symbol_actions.items()):
            if traded[day]:
                actions.append(
                    {
                        "symbol": symbol,
                        "ex_date": days[day],
                        "split_ratio": ratio,
                        "cash_dividend": round(share * close[day - 1] * ratio, 4),
                    }
                )

    stocks = pd.DataFrame(
        {
            "symbol": symbols,
            "name": [f"Synthetic {symbol} Inc." for symbol in symbols],
            "sector": [None if i == 7 else SECTORS[i % len(SECTORS)] for i in range(n_symbols)],
            "industry": None,
            "market_cap": np.round(rng.uniform(1e9, 5e11, n_symbols), -6),
            "currency": "USD",
            "exchange": "SYNTH",
            "is_synthetic": True,
        }
    )
    stocks["sector_as_given"] = stocks["sector"]
    return RawMarket(bars=pd.concat(bars, ignore_index=True), actions=pd.DataFrame(actions), stocks=stocks)
