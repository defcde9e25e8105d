"""Evaluation metrics, with the same names for every model family.

Cross-sectional metrics take a frame of out-of-sample predictions with columns `date`, `prediction` and
`target` (the realized forward excess return over the horizon), one row per symbol and date:

- `ic`, `rank_ic`: the mean over dates of the daily Pearson / Spearman correlation across symbols.
- `icir`, `rank_icir`: that mean divided by the standard deviation of the daily values.
- `rank_ic_tstat`: the mean daily rank IC over its Newey-West standard error (labels of nearby dates
  overlap, so the daily values are autocorrelated and the naive standard error is too small).
- `hit_rate`: the share of rows where the prediction, relative to the date's average prediction, has the
  sign of the target.
- `top_decile_return`: the mean target of the top tenth of each date's predictions, averaged over dates.
- `long_short_return`: the same for top tenth minus bottom tenth.
- `long_short_sharpe`: the mean over the standard deviation of the daily long-short values, annualized by
  the number of horizon-long periods in a year.

Price forecasts are also scored with `mape`, `rmse` and `interval_coverage`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

CROSS_SECTIONAL_METRICS = (
    "ic",
    "rank_ic",
    "icir",
    "rank_icir",
    "rank_ic_tstat",
    "hit_rate",
    "top_decile_return",
    "long_short_return",
    "long_short_sharpe",
)
FORECAST_METRICS = ("mape", "rmse", "interval_coverage")
TRADING_DAYS_PER_YEAR = 252
DECILE = 0.1


def daily_ic(predictions: pd.DataFrame, *, rank: bool) -> pd.Series:
    """Per date, the correlation across symbols of prediction and target: Spearman with `rank`, else Pearson.

    A date where the predictions are all equal scores 0 (they rank nothing); a date with fewer than two
    symbols or a constant target has no value. Plain numpy over date groups: early stopping calls this once
    per boosting round.
    """
    valid = _valid(predictions)
    codes, dates = pd.factorize(valid["date"], sort=True)
    order = np.argsort(codes, kind="stable")
    codes = codes[order]
    x = valid["prediction"].to_numpy(np.float64)[order]
    y = valid["target"].to_numpy(np.float64)[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if len(codes) else np.array([], int)
    if rank:
        x, y = _ranks_within(codes, starts, x), _ranks_within(codes, starts, y)
    sizes = np.diff(np.r_[starts, len(codes)])
    x = x - (_sums(x, starts) / sizes)[codes]
    y = y - (_sums(y, starts) / sizes)[codes]
    xy, xx, yy = _sums(x * y, starts), _sums(x * x, starts), _sums(y * y, starts)
    with np.errstate(divide="ignore", invalid="ignore"):
        ic = np.where((xx == 0) & (yy > 0), 0.0, xy / np.sqrt(xx * yy))
    return pd.Series(ic, index=pd.DatetimeIndex(dates), name="rank_ic" if rank else "ic").dropna()


def long_short_returns(predictions: pd.DataFrame, quantile: float = DECILE) -> pd.DataFrame:
    """Per date, the mean target of the top and bottom `quantile` of predictions (at least one symbol
    each) and their difference, for dates with at least two symbols."""
    valid = _valid(predictions)
    valid = valid.loc[valid.groupby("date")["prediction"].transform("size") >= 2]
    by_date = valid.groupby("date")["prediction"]
    size = np.maximum(1, np.floor(by_date.transform("size") * quantile))
    top = valid["target"].where(by_date.rank(method="first", ascending=False) <= size)
    bottom = valid["target"].where(by_date.rank(method="first", ascending=True) <= size)
    result = pd.DataFrame(
        {"top": top.groupby(valid["date"]).mean(), "bottom": bottom.groupby(valid["date"]).mean()}
    )
    result["long_short"] = result["top"] - result["bottom"]
    return result


def hit_rate(predictions: pd.DataFrame) -> float:
    valid = _valid(predictions)
    relative = valid["prediction"] - valid.groupby("date")["prediction"].transform("mean")
    decided = (relative != 0) & (valid["target"] != 0)
    if not decided.any():
        return math.nan
    return float((np.sign(relative[decided]) == np.sign(valid["target"][decided])).mean())


def mean_standard_error(values: pd.Series, lags: int) -> float:
    """Newey-West (Bartlett kernel) standard error of the mean of an autocorrelated series."""
    x = values.to_numpy(dtype=np.float64)
    n = len(x)
    if n < 2:
        return math.nan
    x = x - x.mean()
    variance = float(x @ x) / n
    for lag in range(1, min(lags, n - 1) + 1):
        variance += 2 * (1 - lag / (lags + 1)) * float(x[lag:] @ x[:-lag]) / n
    return math.sqrt(variance / n)


def cross_sectional_metrics(predictions: pd.DataFrame, horizon: int) -> dict[str, float]:
    ic = daily_ic(predictions, rank=False)
    rank_ic = daily_ic(predictions, rank=True)
    long_short = long_short_returns(predictions)
    standard_error = mean_standard_error(rank_ic, lags=horizon)
    return {
        "ic": _mean(ic),
        "rank_ic": _mean(rank_ic),
        "icir": _mean_over_std(ic),
        "rank_icir": _mean_over_std(rank_ic),
        "rank_ic_tstat": _mean(rank_ic) / standard_error if standard_error > 0 else math.nan,
        "hit_rate": hit_rate(predictions),
        "top_decile_return": _mean(long_short["top"]),
        "long_short_return": _mean(long_short["long_short"]),
        "long_short_sharpe": _mean_over_std(long_short["long_short"])
        * math.sqrt(TRADING_DAYS_PER_YEAR / horizon),
    }


def forecast_metrics(forecasts: pd.DataFrame) -> dict[str, float]:
    """Accuracy of price forecasts: columns `actual`, `yhat`, `yhat_lower`, `yhat_upper`."""
    valid = forecasts.dropna(subset=["actual", "yhat"])
    actual, forecast = valid["actual"], valid["yhat"]
    inside = (actual >= valid["yhat_lower"]) & (actual <= valid["yhat_upper"])
    return {
        "mape": _mean((actual - forecast).abs() / actual.abs()),
        "rmse": math.sqrt(_mean((actual - forecast) ** 2)),
        "interval_coverage": _mean(inside.astype(float)),
    }


def _sums(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return np.add.reduceat(values, starts) if len(starts) else np.array([])


def _ranks_within(codes: np.ndarray, starts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Average ranks (from 1, ties sharing their mean rank) of `values` within each group of equal,
    sorted, consecutive `codes`."""
    order = np.lexsort((values, codes))
    ordered_values, ordered_codes = values[order], codes[order]
    new_run = np.r_[
        True, (ordered_values[1:] != ordered_values[:-1]) | (ordered_codes[1:] != ordered_codes[:-1])
    ]
    first = np.flatnonzero(new_run)
    last = np.r_[first[1:], len(values)] - 1
    run = np.cumsum(new_run) - 1
    ranks = np.empty(len(values))
    ranks[order] = (first[run] + last[run]) / 2 - starts[ordered_codes] + 1
    return ranks


def _valid(predictions: pd.DataFrame) -> pd.DataFrame:
    return predictions.dropna(subset=["prediction", "target"])


def _mean(values: pd.Series) -> float:
    return float(values.mean()) if len(values) else math.nan


def _mean_over_std(values: pd.Series) -> float:
    if len(values) < 2:
        return math.nan
    std = float(values.std())
    return float(values.mean()) / std if std > 0 else math.nan
