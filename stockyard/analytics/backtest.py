"""Backtest of a top-k equal-weight strategy on model scores, against the equal-weight universe.

Timing, with no look-ahead: the scores of date t are traded at the close of t, so the positions they pick earn
returns from t+1 on. Rebalances fall every `rebalance_every` trading days (dates of the price panel) from the
first score date on; scores of the dates in between are not used. A scheduled rebalance date without scores is
an error, except past the last score date, where the backtest ends (the last positions are held for their full
period, or to the end of the panel).

At a rebalance the strategy buys the k highest scores (ties go to the alphabetically first symbol) at weight
1/k each; between rebalances the weights drift with prices. The benchmark holds every symbol scored on the
rebalance date at equal weight, on the same schedule and without costs, so the difference is the selection.

Turnover of a rebalance is the sum over symbols of |target weight - weight before trading|: buys plus sells as
a fraction of the portfolio's value (the first rebalance buys from cash, 1.0; replacing the whole book, 2.0).
The costs, turnover x cost_bps / 10,000 of the portfolio's value, are paid at the close of the rebalance date
and so show in the next day's return.

`prices` is a close panel (dates x symbols), adjusted for splits and dividends so that its returns are total
returns. Every symbol scored on a rebalance date needs a close on that date; a held symbol without a close on
a later day keeps its last one (earning 0 that day).

Metrics, on the daily returns net of costs and with the conventions of `stockyard.analytics.portfolio`:
annual_return, annual_volatility, sharpe, sortino, max_drawdown (of the equity curve), calmar; turnover (the
mean turnover per rebalance, the first one included); hit_rate (the share of rebalance periods in which the
strategy returned more than the benchmark); benchmark_annual_return and excess_annual_return (the strategy's
annual return minus the benchmark's). The names are the columns of products.backtests.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from stockyard.analytics import portfolio
from stockyard.analytics._inputs import (
    check_dates,
    check_price_panel,
    check_symbols_known,
    listing,
    require_columns,
    require_finite,
)

SCORE_COLUMNS = ("date", "symbol", "score")
BASIS_POINTS = 10_000


@dataclass(frozen=True)
class BacktestMetrics:
    annual_return: float
    annual_volatility: float
    sharpe: float
    sortino: float
    max_drawdown: float
    calmar: float
    turnover: float
    hit_rate: float
    benchmark_annual_return: float
    excess_annual_return: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class BacktestResult:
    """`daily_returns`: strategy (net of costs) and benchmark returns from the day after the first rebalance.
    `equity_curve`: both compounded from 1.0 on the first rebalance date. `positions`: rebalance_date, symbol,
    score and weight of every holding bought. `rebalances`: per rebalance date, turnover, cost (fraction of
    value paid), the strategy's and the benchmark's return over the period to the next rebalance, and the
    number of symbols in the universe."""

    k: int
    rebalance_every: int
    cost_bps: float
    daily_returns: pd.DataFrame
    equity_curve: pd.DataFrame
    positions: pd.DataFrame
    rebalances: pd.DataFrame
    metrics: BacktestMetrics


def run_backtest(
    scores: pd.DataFrame,
    prices: pd.DataFrame,
    *,
    k: int,
    rebalance_every: int = 1,
    cost_bps: float = 0.0,
    risk_free_rate: float = 0.0,
) -> BacktestResult:
    """Backtest the top-`k` equal-weight strategy on `scores` (columns date, symbol, score; higher is better)
    over the close panel `prices`; see the module docstring for timing, costs and metrics."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if rebalance_every < 1:
        raise ValueError(f"rebalance_every must be at least 1 trading day, got {rebalance_every}")
    if not math.isfinite(cost_bps) or cost_bps < 0:
        raise ValueError(f"cost_bps must be a finite number of basis points >= 0, got {cost_bps}")
    scores_by_day = _scores_by_day(scores, prices)
    dates, symbols = pd.DatetimeIndex(prices.index), prices.columns
    closes = prices.to_numpy(dtype="float64", na_value=np.nan)
    # Day-over-day gross returns; the carried close makes a held symbol's missing day a zero return.
    growth = (prices.ffill().pct_change() + 1.0).to_numpy(dtype="float64", na_value=np.nan)
    alphabetical_rank = np.argsort(np.argsort(symbols.astype(str).to_numpy()))
    cost_rate = cost_bps / BASIS_POINTS
    first_day, last_scored_day, last_day = min(scores_by_day), max(scores_by_day), len(dates) - 1
    if first_day == last_day:
        raise ValueError(f"the first score date {dates[first_day].date()} is the price panel's last date")

    strategy, benchmark = _Book(len(symbols)), _Book(len(symbols))
    strategy_parts, benchmark_parts, position_rows, rebalance_rows = [], [], [], []
    day = first_day
    while True:
        rebalance_date = dates[day]
        scored = scores_by_day.get(day)
        if scored is None:
            raise ValueError(f"no scores on the scheduled rebalance date {rebalance_date.date()}")
        _check_tradable(scored, closes[day], symbols, k, rebalance_date)
        # Highest scores first; ties go to the alphabetically first symbol.
        chosen = np.lexsort((alphabetical_rank[scored.columns], -scored.scores))[:k]
        strategy_target = np.zeros(len(symbols))
        strategy_target[scored.columns[chosen]] = 1.0 / k
        benchmark_target = np.zeros(len(symbols))
        benchmark_target[scored.columns] = 1.0 / len(scored.columns)
        end = min(day + rebalance_every, last_day)

        turnover = strategy.rebalance(strategy_target, cost_rate)
        benchmark.rebalance(benchmark_target, 0.0)
        strategy_returns = strategy.hold(growth[day + 1 : end + 1])
        benchmark_returns = benchmark.hold(growth[day + 1 : end + 1])

        strategy_parts.append(strategy_returns)
        benchmark_parts.append(benchmark_returns)
        position_rows += [
            (rebalance_date, symbols[column], score, 1.0 / k)
            for column, score in zip(scored.columns[chosen], scored.scores[chosen], strict=True)
        ]
        rebalance_rows.append(
            (
                rebalance_date,
                turnover,
                turnover * cost_rate,
                float(np.prod(1.0 + strategy_returns) - 1.0),
                float(np.prod(1.0 + benchmark_returns) - 1.0),
                len(scored.columns),
            )
        )
        day = end
        if day == last_day or day > last_scored_day:
            break

    daily_returns = pd.DataFrame(
        {"strategy": np.concatenate(strategy_parts), "benchmark": np.concatenate(benchmark_parts)},
        index=dates[first_day + 1 : day + 1],
    )
    start = pd.DataFrame({"strategy": [1.0], "benchmark": [1.0]}, index=dates[[first_day]])
    equity_curve = pd.concat([start, (1.0 + daily_returns).cumprod()])
    daily_returns.index.name = equity_curve.index.name = "date"
    positions = pd.DataFrame(position_rows, columns=["rebalance_date", "symbol", "score", "weight"])
    rebalances = pd.DataFrame(
        rebalance_rows,
        columns=[
            "rebalance_date",
            "turnover",
            "cost",
            "strategy_return",
            "benchmark_return",
            "universe_size",
        ],
    ).set_index("rebalance_date")
    metrics = _metrics(daily_returns, equity_curve, rebalances, risk_free_rate)
    return BacktestResult(
        k, rebalance_every, cost_bps, daily_returns, equity_curve, positions, rebalances, metrics
    )


def save_equity_curve(result: BacktestResult, path: Path) -> None:
    """The strategy's and the benchmark's equity curves as a PNG image."""
    # Imported here so that the API can import this module without the plotting stack; the Agg canvas renders
    # off-screen, with no GUI backend.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    curve = result.equity_curve
    axes.plot(
        curve.index, curve["strategy"].to_numpy(), color="#1f3b73", label=f"top {result.k}, equal weight"
    )
    axes.plot(curve.index, curve["benchmark"].to_numpy(), color="#9a9a9a", label="equal-weight universe")
    axes.axhline(1.0, color="black", linewidth=0.8)
    metrics = result.metrics
    axes.set_title(
        f"Rebalanced every {result.rebalance_every} trading days, {result.cost_bps:g} bp costs\n"
        f"annual return {metrics.annual_return:.1%} (benchmark {metrics.benchmark_annual_return:.1%}), "
        f"Sharpe {metrics.sharpe:.2f}, max drawdown {metrics.max_drawdown:.1%}"
    )
    axes.set_ylabel("growth of 1")
    axes.legend(loc="upper left")
    figure.savefig(path, format="png", dpi=100)


class _Book:
    """A portfolio's holdings as values per column of the price panel, its total value starting at 1.0."""

    def __init__(self, symbols: int) -> None:
        self.holdings = np.zeros(symbols)
        self.value = 1.0
        self.value_before_costs = 1.0

    def rebalance(self, target_weights: np.ndarray, cost_rate: float) -> float:
        """Trade to the target weights at today's close, paying the costs; returns the turnover."""
        turnover = float(np.abs(target_weights - self.holdings / self.value).sum())
        self.value_before_costs = self.value
        self.value *= 1.0 - cost_rate * turnover
        self.holdings = target_weights * self.value
        return turnover

    def hold(self, period_growth: np.ndarray) -> np.ndarray:
        """Let the holdings drift over the period's days (rows of gross returns); the daily returns, the first
        one net of costs."""
        held = np.flatnonzero(self.holdings)
        paths = np.cumprod(period_growth[:, held], axis=0) * self.holdings[held]
        values = paths.sum(axis=1)
        previous = np.concatenate([[self.value_before_costs], values[:-1]])
        self.holdings = np.zeros_like(self.holdings)
        self.holdings[held] = paths[-1]
        self.value = float(values[-1])
        return np.asarray(values / previous - 1.0)


@dataclass(frozen=True)
class _DayScores:
    columns: np.ndarray  # the scored symbols' column numbers in the price panel
    scores: np.ndarray


def _scores_by_day(scores: pd.DataFrame, prices: pd.DataFrame) -> dict[int, _DayScores]:
    """Each scored date's scores, keyed by the date's row number in the price panel."""
    require_columns(scores, SCORE_COLUMNS, "scores")
    check_price_panel(prices)
    dates = check_dates(scores["date"], "scores' date")
    require_finite(scores["score"], "scores' score")
    duplicated = scores.assign(date=dates).duplicated(["date", "symbol"])
    if duplicated.any():
        rows = listing(scores.index[duplicated])
        raise ValueError(f"scores have more than one row for a date and symbol on row(s) {rows}")
    check_symbols_known(scores["symbol"], prices, "scores")
    days = prices.index.get_indexer(pd.DatetimeIndex(dates))
    if (days < 0).any():
        off_panel = listing(sorted(dates[days < 0].unique()))
        raise ValueError(f"score dates must be dates of the price panel; these are not: {off_panel}")
    columns = prices.columns.get_indexer(pd.Index(scores["symbol"]))
    values = scores["score"].to_numpy(dtype="float64")
    order = np.argsort(days, kind="stable")
    scored_days, starts = np.unique(days[order], return_index=True)
    return {
        int(day): _DayScores(columns[rows], values[rows])
        for day, rows in zip(scored_days, np.split(order, starts[1:]), strict=True)
    }


def _check_tradable(
    scored: _DayScores, closes: np.ndarray, symbols: pd.Index, k: int, date: pd.Timestamp
) -> None:
    if k > len(scored.columns):
        raise ValueError(f"k={k} exceeds the {len(scored.columns)} symbols scored on {date.date()}")
    unpriced = scored.columns[np.isnan(closes[scored.columns])]
    if unpriced.size:
        missing = listing(symbols[unpriced])
        raise ValueError(f"symbols scored on {date.date()} have no close that day to trade at: {missing}")


def _metrics(
    daily_returns: pd.DataFrame, equity_curve: pd.DataFrame, rebalances: pd.DataFrame, risk_free_rate: float
) -> BacktestMetrics:
    strategy = daily_returns["strategy"]
    annual_return = portfolio.annual_return(strategy)
    benchmark_annual_return = portfolio.annual_return(daily_returns["benchmark"])
    return BacktestMetrics(
        annual_return=annual_return,
        annual_volatility=portfolio.annual_volatility(strategy),
        sharpe=portfolio.sharpe_ratio(strategy, risk_free_rate=risk_free_rate),
        sortino=portfolio.sortino_ratio(strategy, risk_free_rate=risk_free_rate),
        max_drawdown=portfolio.max_drawdown(equity_curve["strategy"]).depth,
        calmar=portfolio.calmar_ratio(strategy),
        turnover=float(rebalances["turnover"].mean()),
        hit_rate=float((rebalances["strategy_return"] > rebalances["benchmark_return"]).mean()),
        benchmark_annual_return=benchmark_annual_return,
        excess_annual_return=annual_return - benchmark_annual_return,
    )
