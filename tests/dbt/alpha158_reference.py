"""Qlib's Alpha158 in pandas, to check marts.fct_alpha158 against.

Transcribed from the expressions of pyqlib 0.9.7 (qlib/contrib/data/loader.py, Alpha158DL.get_feature_config)
and the semantics of its operators (qlib/data/ops.py, qlib/data/_libs/rolling.pyx): `Std` is pandas' sample
standard deviation, `Quantile` pandas' linear interpolation, `Rank` pandas' rolling percentile rank (ties
averaged), `IdxMax`/`IdxMin` the 1-based position of the first extreme in the window, oldest first, `Slope`,
`Rsquare` and `Resi` an ordinary least squares fit of the values on 1..N. What the mart does differently,
written here the same way: a rolling feature is null until its window is full (Qlib fills partial windows with
`min_periods=1`); a division by zero is null (numpy gives inf or NaN). Qlib's own guard is kept: a correlation
or R-squared is null where a series' standard deviation over the window is at most 2e-5.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

WINDOWS = (5, 10, 20, 30, 60)
# Qlib's guard against a zero denominator, kept as Qlib writes it.
EPSILON = 1e-12
# Qlib's np.isclose(std, 0, atol=2e-05): a series this flat over a window has no correlation or R-squared.
FLAT = 2e-5


def alpha158(adjusted: pd.DataFrame) -> pd.DataFrame:
    """The features of every symbol's adjusted bars (reference.adjusted_prices)."""
    frames = [_symbol_alpha158(bars.sort_values("date")) for _, bars in adjusted.groupby("symbol")]
    return pd.concat(frames, ignore_index=True).replace([np.inf, -np.inf], np.nan)


def _symbol_alpha158(bars: pd.DataFrame) -> pd.DataFrame:
    open_, high, low = bars["adj_open"], bars["adj_high"], bars["adj_low"]
    close, volume = bars["adj_close"], bars["adj_volume"]
    features: dict[str, pd.Series] = {"symbol": bars["symbol"], "date": bars["date"]}

    features["kmid"] = (close - open_) / open_
    features["klen"] = (high - low) / open_
    features["kmid2"] = (close - open_) / (high - low + EPSILON)
    features["kup"] = (high - np.maximum(open_, close)) / open_
    features["kup2"] = (high - np.maximum(open_, close)) / (high - low + EPSILON)
    features["klow"] = (np.minimum(open_, close) - low) / open_
    features["klow2"] = (np.minimum(open_, close) - low) / (high - low + EPSILON)
    features["ksft"] = (2 * close - high - low) / open_
    features["ksft2"] = (2 * close - high - low) / (high - low + EPSILON)
    features["open0"] = open_ / close
    features["high0"] = high / close
    features["low0"] = low / close

    change = close - close.shift(1)
    volume_change = volume - volume.shift(1)
    up = (close > close.shift(1)).astype(float).where(close.shift(1).notna())
    down = (close < close.shift(1)).astype(float).where(close.shift(1).notna())
    weighted_move = (close / close.shift(1) - 1).abs() * volume
    price_ratio = close / close.shift(1)
    volume_ratio = np.log(volume / volume.shift(1).where(volume.shift(1) != 0) + 1)
    log_volume = np.log(volume + 1)

    for d in WINDOWS:

        def rolling(series: pd.Series, days: int = d) -> pd.core.window.rolling.Rolling:
            return series.rolling(days, min_periods=days)

        def std(series: pd.Series, days: int = d) -> pd.Series:
            # Two-pass: pandas' running standard deviation leaves rounding residue where a window is flat.
            return rolling(series, days).apply(lambda window: np.std(window, ddof=1), raw=True)

        slope, rsquare, residual = _least_squares(close.to_numpy(), d)
        features[f"roc{d}"] = close.shift(d) / close
        features[f"ma{d}"] = rolling(close).mean() / close
        features[f"std{d}"] = std(close) / close
        features[f"beta{d}"] = pd.Series(slope, index=close.index) / close
        features[f"rsqr{d}"] = pd.Series(rsquare, index=close.index)
        features[f"resi{d}"] = pd.Series(residual, index=close.index) / close
        features[f"max{d}"] = rolling(high).max() / close
        features[f"min{d}"] = rolling(low).min() / close
        features[f"qtlu{d}"] = rolling(close).quantile(0.8) / close
        features[f"qtld{d}"] = rolling(close).quantile(0.2) / close
        features[f"rank{d}"] = rolling(close).rank(pct=True)
        lowest, highest = rolling(low).min(), rolling(high).max()
        features[f"rsv{d}"] = (close - lowest) / (highest - lowest + EPSILON)
        first_high = rolling(high).apply(lambda window: window.argmax() + 1, raw=True)
        first_low = rolling(low).apply(lambda window: window.argmin() + 1, raw=True)
        features[f"imax{d}"] = first_high / d
        features[f"imin{d}"] = first_low / d
        features[f"imxd{d}"] = (first_high - first_low) / d
        features[f"corr{d}"] = _correlation(close, log_volume, d)
        features[f"cord{d}"] = _correlation(price_ratio, volume_ratio, d)
        features[f"cntp{d}"] = rolling(up).mean()
        features[f"cntn{d}"] = rolling(down).mean()
        features[f"cntd{d}"] = rolling(up).mean() - rolling(down).mean()
        gains, losses = rolling(change.clip(lower=0)).sum(), rolling((-change).clip(lower=0)).sum()
        moved = rolling(change.abs()).sum() + EPSILON
        features[f"sump{d}"] = gains / moved
        features[f"sumn{d}"] = losses / moved
        features[f"sumd{d}"] = (gains - losses) / moved
        features[f"vma{d}"] = rolling(volume).mean() / (volume + EPSILON)
        features[f"vstd{d}"] = std(volume) / (volume + EPSILON)
        features[f"wvma{d}"] = std(weighted_move) / (rolling(weighted_move).mean() + EPSILON)
        volume_gains = rolling(volume_change.clip(lower=0)).sum()
        volume_losses = rolling((-volume_change).clip(lower=0)).sum()
        volume_moved = rolling(volume_change.abs()).sum() + EPSILON
        features[f"vsump{d}"] = volume_gains / volume_moved
        features[f"vsumn{d}"] = volume_losses / volume_moved
        features[f"vsumd{d}"] = (volume_gains - volume_losses) / volume_moved
    return pd.DataFrame(features)


def _least_squares(values: np.ndarray, days: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per full window of `days` values fitted on 1..days: the slope, the R-squared (NaN where the values are
    flat) and the last value's residual; NaN before the first full window."""
    slope, rsquare, residual = (np.full(len(values), np.nan) for _ in range(3))
    if len(values) < days:
        return slope, rsquare, residual
    windows = sliding_window_view(values, days)
    x = np.arange(1, days + 1, dtype=float)
    x_centred = x - x.mean()
    y_centred = windows - windows.mean(axis=1, keepdims=True)
    covariance = y_centred @ x_centred
    fitted_slope = covariance / (x_centred @ x_centred)
    y_spread = (y_centred**2).sum(axis=1)
    flat = windows.std(axis=1, ddof=1) <= FLAT
    fitted_last = windows.mean(axis=1) + fitted_slope * (days - x.mean())
    slope[days - 1 :] = fitted_slope
    explained = covariance**2 / ((x_centred @ x_centred) * np.where(flat, 1, y_spread))
    rsquare[days - 1 :] = np.where(flat, np.nan, explained)
    residual[days - 1 :] = windows[:, -1] - fitted_last
    return slope, rsquare, residual


def _correlation(left: pd.Series, right: pd.Series, days: int) -> pd.Series:
    """Pearson correlation over full windows of `days` pairs; NaN where either side is flat."""
    correlation = left.rolling(days, min_periods=days).corr(right)
    flat = [
        series.rolling(days).apply(lambda window: np.std(window, ddof=1), raw=True) <= FLAT
        for series in (left, right)
    ]
    return correlation.mask(flat[0] | flat[1])
