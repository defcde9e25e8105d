"""Realized signal health: how past recommendations did once their horizon has passed.

For a recommendation of date t and a horizon of h trading days, a symbol's realized forward return is
close(t + h) / close(t) - 1 on the (split- and dividend-adjusted) close panel. It is known only once the panel
reaches t + h: dates whose horizon has not passed by `as_of` are left out, never scored on partial returns. A
symbol without a close on t or on t + h has no realized return and is left out of that date (`symbols` counts
those that have one).

Per realized date:
- realized_rank_ic: the Spearman correlation across symbols of score and realized forward return (Pearson
  on average ranks); NaN with fewer than two symbols or when either side is constant.
- top_decile_return: the mean realized return of the top tenth of the scores (at least one symbol; ties go to
  the alphabetically first symbol), the definition the training metrics use.
- universe_return: the mean realized return of all symbols with one.

`rolling_rank_ic` averages the realized IC over the last `window` dates that have one; `ic_decay` says whether
the latest such average is below a floor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stockyard.analytics._inputs import (
    check_dates,
    check_price_panel,
    check_symbols_known,
    listing,
    require_columns,
    require_finite,
)

RECOMMENDATION_COLUMNS = ("date", "symbol", "score")
DECILE = 0.1


@dataclass(frozen=True)
class IcDecay:
    """The rolling realized rank IC at `as_of_date` (the last realized date with an IC) against the floor.
    `rolling_rank_ic` is NaN, and `decayed` False, until `window` dates have an IC."""

    as_of_date: pd.Timestamp | None
    rolling_rank_ic: float
    floor: float
    window: int
    decayed: bool


def realized_forward_returns(
    prices: pd.DataFrame, *, horizon: int, as_of: pd.Timestamp | None = None
) -> pd.DataFrame:
    """Columns date, symbol, forward_return: the return over the next `horizon` trading days of the panel, for
    the dates whose horizon has passed by `as_of` (default: the panel's last date)."""
    panel = _panel_as_of(prices, horizon, as_of)
    forward = (panel.shift(-horizon) / panel - 1.0).iloc[: _realized_count(panel, horizon)]
    long = (
        forward.rename_axis(index="date", columns=None)
        .reset_index()
        .melt(id_vars="date", var_name="symbol", value_name="forward_return")
    )
    return long.dropna(subset=["forward_return"]).sort_values(["date", "symbol"], ignore_index=True)


def realized_signal_health(
    recommendations: pd.DataFrame,
    prices: pd.DataFrame,
    *,
    horizon: int,
    as_of: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Per recommendation date whose horizon has passed by `as_of`: realized_rank_ic, top_decile_return,
    universe_return and symbols (see the module docstring). `recommendations` has columns date, symbol and
    score; `prices` is the close panel (dates x symbols)."""
    require_columns(recommendations, RECOMMENDATION_COLUMNS, "recommendations")
    panel = _panel_as_of(prices, horizon, as_of)
    dates = check_dates(recommendations["date"], "recommendations' date")
    require_finite(recommendations["score"], "recommendations' score")
    check_symbols_known(recommendations["symbol"], prices, "recommendations")
    frame = pd.DataFrame(
        {
            "date": dates,
            "symbol": recommendations["symbol"],
            "score": recommendations["score"].astype("float64"),
        }
    )
    duplicated = frame.duplicated(["date", "symbol"])
    if duplicated.any():
        rows = listing(recommendations.index[duplicated])
        raise ValueError(f"recommendations have more than one row for a date and symbol on row(s) {rows}")
    off_calendar = ~dates.isin(prices.index) & (dates <= prices.index[-1])
    if off_calendar.any():
        bad_dates = listing(sorted(dates[off_calendar].unique()))
        raise ValueError(f"recommendation dates must be dates of the price panel; these are not: {bad_dates}")

    realized_dates = panel.index[: _realized_count(panel, horizon)]
    frame = frame.loc[frame["date"].isin(realized_dates)]
    forward = realized_forward_returns(prices, horizon=horizon, as_of=as_of)
    scored = frame.merge(forward, on=["date", "symbol"], how="inner")
    scored = scored.sort_values(["date", "score", "symbol"], ascending=[True, False, True], ignore_index=True)
    by_date = scored.groupby("date")
    place = by_date.cumcount()
    size = by_date["score"].transform("size")
    top = scored.loc[place < np.maximum(1, np.floor(size * DECILE)), ["date", "forward_return"]]
    health = pd.DataFrame(
        {
            "realized_rank_ic": _rank_ic(scored),
            "top_decile_return": top.groupby("date")["forward_return"].mean(),
            "universe_return": by_date["forward_return"].mean(),
            "symbols": by_date.size(),
        }
    )
    health = health.reindex(pd.DatetimeIndex(sorted(frame["date"].unique()), name="date"))
    health["symbols"] = health["symbols"].fillna(0).astype("int64")
    return health


def rolling_rank_ic(health: pd.DataFrame, *, window: int) -> pd.Series:
    """The mean realized rank IC over the last `window` dates that have one (NaN until there are `window`)."""
    require_columns(health, ["realized_rank_ic"], "signal health")
    if window < 1:
        raise ValueError(f"window must be at least 1 date, got {window}")
    return health["realized_rank_ic"].dropna().rolling(window).mean().rename("rolling_rank_ic")


def ic_decay(health: pd.DataFrame, *, window: int, floor: float) -> IcDecay:
    """Whether the latest rolling realized rank IC is below `floor`."""
    if not math.isfinite(floor):
        raise ValueError(f"floor must be a finite IC value, got {floor}")
    rolling = rolling_rank_ic(health, window=window)
    if rolling.empty:
        return IcDecay(None, math.nan, floor, window, decayed=False)
    latest = float(rolling.iloc[-1])
    return IcDecay(
        pd.Timestamp(rolling.index[-1]),
        latest,
        floor,
        window,
        decayed=not math.isnan(latest) and latest < floor,
    )


def _panel_as_of(prices: pd.DataFrame, horizon: int, as_of: pd.Timestamp | None) -> pd.DataFrame:
    check_price_panel(prices)
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1 trading day, got {horizon}")
    return prices if as_of is None else prices.loc[prices.index <= pd.Timestamp(as_of)]


def _realized_count(panel: pd.DataFrame, horizon: int) -> int:
    """How many of the panel's first dates have the date `horizon` trading days later in the panel."""
    return max(len(panel) - horizon, 0)


def _rank_ic(scored: pd.DataFrame) -> pd.Series:
    """Per date, the Pearson correlation of the within-date average ranks of score and forward return."""
    by_date = scored.groupby("date")
    score_rank = by_date["score"].rank()
    return_rank = by_date["forward_return"].rank()
    x = score_rank - score_rank.groupby(scored["date"]).transform("mean")
    y = return_rank - return_rank.groupby(scored["date"]).transform("mean")
    sums = pd.DataFrame({"xy": x * y, "xx": x * x, "yy": y * y}).groupby(scored["date"]).sum()
    denominator = np.sqrt(sums["xx"] * sums["yy"])
    # A constant side has zero spread: its correlation is undefined, not infinite.
    return (sums["xy"] / denominator).where(denominator > 0)
