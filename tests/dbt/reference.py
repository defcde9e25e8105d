"""An independent pandas implementation of the dbt models' numbers, to check them against.

Written from the definitions in the models' .yml files, not from their SQL: back-adjusted prices, the stock
features with their warm-ups and cross-sectional ranks, forward returns and sector aggregates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stockyard.features import ranked_features
from tests.dbt.synthetic_market import RawMarket

RANKED_FEATURES = ranked_features()
YEAR = 252


def adjusted_prices(market: RawMarket) -> pd.DataFrame:
    """Bars with adj_open/high/low/close/volume and return_1d: for each ex-date, the prices before it times
    ex-date close / (ex-date close + dividend) / split ratio, the ex-date close being that of the first bar
    on or after the ex-date (only the split when there is none); the volume times the split ratio."""
    frames = []
    for symbol, bars in market.bars.groupby("symbol"):
        bars = bars.sort_values("date").reset_index(drop=True)
        price_factor = np.ones(len(bars))
        volume_factor = np.ones(len(bars))
        for action in market.actions.loc[market.actions["symbol"] == symbol].itertuples():
            before = (bars["date"] < action.ex_date).to_numpy()
            if not before.any():
                continue
            closes_from_ex_date = bars.loc[~before, "close"]
            ex_date_close = closes_from_ex_date.iloc[0] if len(closes_from_ex_date) else None
            dividend_factor = (
                ex_date_close / (ex_date_close + action.cash_dividend) if ex_date_close is not None else 1.0
            )
            price_factor[before] *= dividend_factor / action.split_ratio
            volume_factor[before] *= action.split_ratio
        for column in ("open", "high", "low", "close"):
            bars[f"adj_{column}"] = bars[column] * price_factor
        bars["adj_volume"] = bars["volume"] * volume_factor
        bars["return_1d"] = bars["adj_close"] / bars["adj_close"].shift() - 1
        frames.append(bars)
    return pd.concat(frames, ignore_index=True)


def wilder_average(values: pd.Series, periods: int = 14) -> pd.Series:
    """Null until `periods` values, then their mean, then (previous * (periods - 1) + value) / periods."""
    out = np.full(len(values), np.nan)
    seen, total, average = 0, 0.0, None
    for i, value in enumerate(values.to_numpy()):
        if np.isnan(value):
            continue
        if average is None:
            seen += 1
            total += value
            if seen == periods:
                average = total / periods
                out[i] = average
        else:
            average = (average * (periods - 1) + value) / periods
            out[i] = average
    return pd.Series(out, index=values.index)


def _symbol_features(prices: pd.DataFrame, market_return: pd.Series) -> pd.DataFrame:
    close, high, low = prices["adj_close"], prices["adj_high"], prices["adj_low"]
    volume = prices["adj_volume"]
    previous_close = close.shift()
    row = pd.Series(np.arange(1, len(prices) + 1), index=prices.index)  # trading days so far
    log_return = np.log(close / previous_close)
    returns = prices["return_1d"]
    market = market_return.reindex(prices["date"]).to_numpy()
    market = pd.Series(market, index=prices.index)

    features = pd.DataFrame(
        {"symbol": prices["symbol"], "date": prices["date"], "history_days": row, "return_1d": returns}
    )
    for days in (5, 21, 63, 252):
        features[f"return_{days}d"] = close / close.shift(days) - 1
    features["log_return_1d"] = log_return
    features["momentum_12_1"] = close.shift(21) / close.shift(YEAR) - 1
    for days in (21, 63):
        features[f"volatility_{days}d"] = np.sqrt(252) * log_return.rolling(days).std()
    for days in (5, 10, 20, 50, 200):
        features[f"close_to_sma_{days}"] = close / close.rolling(days).mean()

    macd = close.ewm(span=12, adjust=False).mean() - close.ewm(span=26, adjust=False).mean()
    features["macd"] = macd.where(row >= 26)
    features["macd_signal"] = macd.ewm(span=9, adjust=False).mean().where(row >= 26 + 9 - 1)

    change = close - previous_close
    average_gain = wilder_average(change.clip(lower=0))
    average_loss = wilder_average((-change).clip(lower=0))
    moved = average_gain + average_loss
    # 50 where the price did not move at all over the averages' span.
    features["rsi_14"] = (100 * average_gain / moved.where(moved > 0)).mask(moved == 0, 50.0)

    middle, deviation = close.rolling(20).mean(), close.rolling(20).std(ddof=0)
    # 0.5 in a band of zero width: twenty equal closes.
    flat_close = close.rolling(20).max() == close.rolling(20).min()
    percent_b = (close - (middle - 2 * deviation)) / (4 * deviation)
    features["bollinger_percent_b"] = percent_b.mask(flat_close, 0.5)
    true_range = pd.concat([high - low, (high - previous_close).abs(), (low - previous_close).abs()], axis=1)
    features["atr_14"] = wilder_average(true_range.max(axis=1).where(previous_close.notna()))
    # Two-pass standard deviation: pandas' running one leaves rounding residue where a constant window has 0.
    volume_deviation = volume.rolling(20).apply(lambda window: np.std(window, ddof=1), raw=True)
    constant_volume = volume.rolling(20).max() == volume.rolling(20).min()
    volume_zscore = (volume - volume.rolling(20).mean()) / volume_deviation
    # 0 where the twenty volumes are equal: the volume is their mean.
    features["volume_zscore_20d"] = volume_zscore.mask(constant_volume, 0.0)
    features["distance_from_52w_high"] = close / high.rolling(YEAR).max() - 1
    features["distance_from_52w_low"] = close / low.rolling(YEAR).min() - 1
    # Undefined (null) where the market's returns did not vary.
    market_variance = market.rolling(63).var()
    features["beta_63d"] = returns.rolling(63).cov(market) / market_variance.where(market_variance > 0)
    # 0 where the stock's returns did not vary (a flat price) and the market's did.
    flat_returns = returns.rolling(63).max() == returns.rolling(63).min()
    correlation = returns.rolling(63).corr(market).mask(flat_returns, 0.0)
    features["correlation_63d"] = correlation.where(market_variance > 0)
    return features


def percent_rank(values: pd.Series) -> pd.Series:
    """(rank - 1) / (count - 1) among the non-null values, ties at their lowest rank; 0 for a single one."""
    ranks = values.rank(method="min")
    count = values.notna().sum()
    return (ranks - 1) / (count - 1) if count > 1 else ranks * 0


def stock_features(adjusted: pd.DataFrame) -> pd.DataFrame:
    market_return = adjusted.groupby("date")["return_1d"].mean()
    per_symbol = [_symbol_features(prices, market_return) for _, prices in adjusted.groupby("symbol")]
    features = pd.concat(per_symbol, ignore_index=True)
    for feature in RANKED_FEATURES:
        features[f"{feature}_rank"] = features.groupby("date")[feature].transform(percent_rank)
    return features


def forward_returns(adjusted: pd.DataFrame) -> pd.DataFrame:
    frame = adjusted[["symbol", "date"]].copy()
    close = adjusted.groupby("symbol")["adj_close"]
    for days in (1, 5, 21):
        frame[f"forward_return_{days}d"] = close.shift(-days) / adjusted["adj_close"] - 1
        mean = frame.groupby("date")[f"forward_return_{days}d"].transform("mean")
        frame[f"excess_forward_return_{days}d"] = frame[f"forward_return_{days}d"] - mean
    return frame


def sector_daily(adjusted: pd.DataFrame, stocks: pd.DataFrame) -> pd.DataFrame:
    members = adjusted.merge(stocks[["symbol", "sector", "market_cap"]], on="symbol", how="left")
    members["sector"] = members["sector"].fillna("Unclassified")
    members["advanced"] = (members["return_1d"] > 0).astype(float).where(members["return_1d"].notna())
    return members.groupby(["sector", "date"], as_index=False).agg(
        symbols_count=("symbol", "size"),
        mean_return_1d=("return_1d", "mean"),
        advancers_share=("advanced", "mean"),
        total_market_cap=("market_cap", "sum"),
    )
