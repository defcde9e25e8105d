"""Qlib's top-k-with-dropout backtest of daily scores, against the equal-weight universe, with Qlib's report
conventions, so the benchmark's rows read like Qlib's own.

Each date t, with the scores of t (traded at the close of t, earning the next day's return):
- held names without a score on t are sold (they can no longer be traded on their score);
- the candidates are the best-scored names not held, as many as `n_drop` plus the free places;
- of the held names and the candidates ranked together by score, the held names among the `n_drop` lowest
  are sold, and the best candidates are bought until `k` names are held again (fewer if the universe is
  smaller).
The book is equal-weight over the names held after trading, so the gross return of t is the mean next-day
return of those names. Costs are charged on the traded fraction of the book, each name 1/k of it:
buys x buy_cost + sells x sell_cost (the first day buys the whole book). The benchmark is the mean next-day
return of every name scored on t, without costs.

Reported on the daily excess returns (strategy minus benchmark), gross and net of costs, as Qlib's
`risk_analysis` does: annual return = mean x 252, information ratio = mean / std x sqrt(252), maximum
drawdown = the lowest point of the cumulative sum below its running maximum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

TRADING_DAYS_PER_YEAR = 252
BASIS_POINTS = 10_000


@dataclass(frozen=True)
class TopkDropoutConfig:
    k: int = 50
    n_drop: int = 5
    buy_cost_bps: float = 5.0
    sell_cost_bps: float = 15.0

    def __post_init__(self) -> None:
        if self.k < 1 or not 0 <= self.n_drop <= self.k:
            raise ValueError(f"need k >= 1 and 0 <= n_drop <= k, not k={self.k}, n_drop={self.n_drop}")
        if min(self.buy_cost_bps, self.sell_cost_bps) < 0:
            raise ValueError("costs cannot be negative")


def topk_dropout_daily(
    scores: pd.DataFrame, next_returns: pd.DataFrame, config: TopkDropoutConfig | None = None
) -> pd.DataFrame:
    """Per date of `scores` (`date`, `symbol`, `prediction`): the strategy's gross next-day return, its cost
    as a fraction of the book, the benchmark's return, and how many names were bought and sold.

    `next_returns` (`date`, `symbol`, `next_return`) holds each name's return from the close of the date to
    the next close; a held name without one earns 0 that day.
    """
    config = config or TopkDropoutConfig()
    scored = scores.dropna(subset=["prediction"])
    returns = next_returns.set_index(["date", "symbol"])["next_return"]
    joined = scored.join(returns, on=["date", "symbol"])
    held: list[str] = []
    rows = []
    for day, group in joined.groupby("date", sort=True):
        ranked = group.sort_values(["prediction", "symbol"], ascending=[False, True])
        score = dict(zip(ranked["symbol"], ranked["prediction"], strict=True))
        unscored = [name for name in held if name not in score]
        kept = [name for name in held if name in score]
        free = config.k - len(kept)
        candidates = [name for name in ranked["symbol"] if name not in set(kept)][: config.n_drop + free]
        together = sorted(kept + candidates, key=lambda name: (-score[name], name))
        lowest = set(together[len(together) - config.n_drop :]) if config.n_drop else set()
        sold = [name for name in kept if name in lowest]
        kept = [name for name in kept if name not in lowest]
        bought = candidates[: config.k - len(kept)]
        held = kept + bought
        next_return = group.set_index("symbol")["next_return"]
        gross = float(next_return.reindex(held).fillna(0.0).mean()) if held else 0.0
        n_sold = len(sold) + len(unscored)
        cost = (len(bought) * config.buy_cost_bps + n_sold * config.sell_cost_bps) / (config.k * BASIS_POINTS)
        rows.append(
            {
                "date": day,
                "gross": gross,
                "cost": cost,
                "benchmark": float(next_return.fillna(0.0).mean()),
                "bought": len(bought),
                "sold": n_sold,
            }
        )
    return pd.DataFrame(rows, columns=["date", "gross", "cost", "benchmark", "bought", "sold"])


def risk_analysis(returns: pd.Series) -> dict[str, float]:
    """Qlib's `risk_analysis` of daily returns: annualized return (mean x 252), information ratio and maximum
    drawdown of the cumulative sum."""
    values = returns.to_numpy(np.float64)
    if len(values) == 0:
        return {"annual_return": math.nan, "information_ratio": math.nan, "max_drawdown": math.nan}
    cumulative = np.cumsum(values)
    std = float(values.std(ddof=1)) if len(values) > 1 else math.nan
    return {
        "annual_return": float(values.mean()) * TRADING_DAYS_PER_YEAR,
        "information_ratio": float(values.mean()) / std * math.sqrt(TRADING_DAYS_PER_YEAR)
        if std > 0
        else math.nan,
        "max_drawdown": float((cumulative - np.maximum.accumulate(cumulative)).min()),
    }


def backtest_metrics(daily: pd.DataFrame) -> dict[str, float]:
    """The benchmark's annual return, and the excess over it without and with costs (Qlib's report rows)."""
    gross_excess = daily["gross"] - daily["benchmark"]
    net_excess = gross_excess - daily["cost"]
    metrics = {"benchmark_annual_return": risk_analysis(daily["benchmark"])["annual_return"]}
    metrics |= {f"excess_{name}": value for name, value in risk_analysis(gross_excess).items()}
    metrics |= {f"excess_net_{name}": value for name, value in risk_analysis(net_excess).items()}
    return metrics
