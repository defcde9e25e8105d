"""Checks shared by the analytics modules: each raises a ValueError that names what was wrong."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd


def listing(values: Iterable[object], limit: int = 5) -> str:
    """`a, b, c` or `a, b, c, d, e and 3 more`, for error messages."""
    shown = [str(value.date()) if isinstance(value, pd.Timestamp) else str(value) for value in values]
    if len(shown) <= limit:
        return ", ".join(shown)
    return f"{', '.join(shown[:limit])} and {len(shown) - limit} more"


def require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{what} must be a pandas DataFrame, not {type(frame).__name__}")
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {listing(missing)} (expected {listing(columns, 10)})")
    if frame.empty:
        raise ValueError(f"{what}: no rows")


def require_finite(values: pd.Series, what: str) -> None:
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    bad = ~np.isfinite(numbers.to_numpy())
    if bad.any():
        raise ValueError(f"{what} must be finite numbers; not on row(s) {listing(values.index[bad])}")


def check_dates(values: pd.Series, what: str) -> pd.Series:
    """The column as timestamps; every value must parse."""
    dates = pd.to_datetime(values, errors="coerce")
    if dates.isna().any():
        raise ValueError(
            f"{what} has missing or unparseable dates on row(s) {listing(values.index[dates.isna()])}"
        )
    return dates


def check_price_panel(prices: pd.DataFrame) -> None:
    """A wide panel: one row per trading date (sorted, unique DatetimeIndex), one column per symbol, prices
    positive where present (NaN before a listing or on a missing day)."""
    if not isinstance(prices, pd.DataFrame):
        raise ValueError(f"prices must be a pandas DataFrame (dates x symbols), not {type(prices).__name__}")
    if prices.empty:
        raise ValueError("prices are empty: the panel needs at least one date and one symbol")
    if not isinstance(prices.index, pd.DatetimeIndex):
        raise ValueError(
            f"prices must be indexed by date (a DatetimeIndex), not {type(prices.index).__name__}"
        )
    if not prices.index.is_unique or not prices.index.is_monotonic_increasing:
        raise ValueError("prices' dates must be unique and in increasing order")
    if not prices.columns.is_unique:
        raise ValueError(
            f"prices have duplicated symbols: {listing(prices.columns[prices.columns.duplicated()])}"
        )
    values = prices.to_numpy(dtype="float64", na_value=np.nan)
    bad_columns = ((values <= 0) | np.isinf(values)).any(axis=0)
    if bad_columns.any():
        raise ValueError(
            f"prices must be positive and finite; not for {listing(prices.columns[bad_columns])}"
        )


def check_symbols_known(symbols: Iterable[str], prices: pd.DataFrame, what: str) -> None:
    unknown = sorted(set(symbols) - set(prices.columns))
    if unknown:
        raise ValueError(f"unknown symbols in {what} (not in the price panel): {listing(unknown)}")


def check_series(series: pd.Series, what: str, minimum: int = 1) -> np.ndarray:
    """The values as a float array: a Series of at least `minimum` finite values on unique, increasing
    dates."""
    if not isinstance(series, pd.Series):
        raise ValueError(f"{what} must be a pandas Series, not {type(series).__name__}")
    if len(series) < minimum:
        raise ValueError(f"{what} need at least {minimum} value(s), got {len(series)}")
    if not series.index.is_unique or not series.index.is_monotonic_increasing:
        raise ValueError(f"{what} must be indexed by unique dates in increasing order")
    values = series.to_numpy(dtype="float64", na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(f"{what} must be finite; NaN or infinite on {listing(series.index[bad])}")
    return values


def check_returns(returns: pd.Series, what: str = "returns", minimum: int = 1) -> np.ndarray:
    values = check_series(returns, what, minimum)
    if (values < -1).any():
        raise ValueError(f"{what} below -100% on {listing(returns.index[values < -1])}")
    return values


def check_positive_values(values: pd.Series, minimum: int = 1) -> np.ndarray:
    """A value history (or equity curve): finite, positive values on unique, increasing dates."""
    array = check_series(values, "values", minimum)
    if (array <= 0).any():
        raise ValueError(f"values must be positive; not on {listing(values.index[array <= 0])}")
    return array


def check_aligned(left: pd.Series, right: pd.Series, what: str) -> None:
    if left.index.equals(right.index):
        return
    only_left = left.index.difference(right.index)
    only_right = right.index.difference(left.index)
    raise ValueError(
        f"{what} are not aligned: {len(only_left)} date(s) only in the first ({listing(only_left)}), "
        f"{len(only_right)} only in the second ({listing(only_right)}); select the common dates first"
    )
