"""The plots logged with every run, drawn on bare matplotlib Figures (no pyplot, so no GUI backend)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

ROLLING_DAYS = 63


def save_ic_plot(daily_rank_ic: pd.Series, fold_starts: list[pd.Timestamp], path: Path) -> None:
    """Daily out-of-sample rank IC with its rolling mean; dashed lines where test folds start."""
    figure = Figure(figsize=(10, 4), layout="constrained")
    axes = figure.subplots()
    axes.bar(daily_rank_ic.index, daily_rank_ic.to_numpy(), width=1.0, color="#9db4d0", label="daily rank IC")
    axes.plot(
        daily_rank_ic.index,
        daily_rank_ic.rolling(ROLLING_DAYS, min_periods=1).mean().to_numpy(),
        color="#1f3b73",
        label=f"{ROLLING_DAYS}-day mean",
    )
    axes.axhline(0.0, color="black", linewidth=0.8)
    axes.vlines(
        pd.DatetimeIndex(fold_starts).to_numpy(),
        0.0,
        1.0,
        transform=axes.get_xaxis_transform(),
        colors="grey",
        linestyles="--",
        linewidth=0.8,
    )
    axes.set_title(f"Out-of-sample rank IC (mean {daily_rank_ic.mean():.4f})")
    axes.legend(loc="upper left")
    figure.savefig(path, dpi=100)


def save_equity_curve(long_short: pd.DataFrame, horizon: int, path: Path) -> None:
    """Cumulative excess return of the top decile, the bottom decile and long top / short bottom.

    Each date's values are horizon-day returns; holding `horizon` staggered tranches earns 1/horizon of
    each per day, which is what is summed.
    """
    figure = Figure(figsize=(10, 4), layout="constrained")
    axes = figure.subplots()
    for column, color in (("long_short", "#1f3b73"), ("top", "#2e8b57"), ("bottom", "#b22222")):
        axes.plot(
            long_short.index, (long_short[column] / horizon).cumsum().to_numpy(), color=color, label=column
        )
    axes.axhline(0.0, color="black", linewidth=0.8)
    axes.set_title(f"Cumulative excess return, {horizon}-day holding in staggered tranches")
    axes.legend(loc="upper left")
    figure.savefig(path, dpi=100)


def save_feature_importance(importance: pd.Series, path: Path, top: int = 30) -> None:
    shown = importance.sort_values(ascending=True).tail(top)
    figure = Figure(figsize=(8, max(3.0, 0.25 * len(shown) + 1)), layout="constrained")
    axes = figure.subplots()
    axes.barh(shown.index.astype(str), shown.to_numpy(), color="#1f3b73")
    axes.set_title("Feature importance")
    figure.savefig(path, dpi=100)
