"""A features table shaped like marts.fct_stock_features, built from the suite's own feature specs."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import psycopg

from stockyard import warehouse
from stockyard.calendar import trading_days
from stockyard.quality.features import FEATURES, FeatureSpec, feature_specs
from stockyard.quality.results import Window

SESSIONS = trading_days(date(2024, 1, 2), date(2024, 3, 1))  # 42 sessions
# The checked window starts after 21 sessions: warm-ups are counted from each symbol's first row, before it.
WINDOW = Window.of(SESSIONS[21].date(), SESSIONS[-1].date())
RANKS = ["rsi_14_rank", "return_5d_rank"]
LISTED_AT = {"AAA": 0, "BBB": 0, "NEW": 25}  # NEW lists inside the window
# From September: each symbol is past the 63 returns of its beta and correlation throughout the window.
LONG_SESSIONS = trading_days(date(2023, 9, 1), SESSIONS[-1].date())


def in_range(spec: FeatureSpec) -> float:
    if spec.low is not None and spec.high is not None:
        return (spec.low + spec.high) / 2
    if spec.low is not None:
        return spec.low + 1.0
    return 0.5


def features_table(sessions: pd.DatetimeIndex = SESSIONS) -> pd.DataFrame:
    """Every feature in range from its warm-up on and null before, for each symbol from its listing, with the
    symbol's trading days so far (history_days) as the model writes them."""
    specs = feature_specs(set(FEATURES) | set(RANKS))
    frames = []
    for symbol, listed_at in LISTED_AT.items():
        history_days = np.arange(1, len(sessions) - listed_at + 1)
        frame = pd.DataFrame({"symbol": symbol, "date": sessions[listed_at:], "history_days": history_days})
        for name, spec in specs.items():
            frame[name] = np.where(history_days >= spec.warmup, in_range(spec), np.nan)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def still_market_table() -> pd.DataFrame:
    """The table over LONG_SESSIONS, beta_63d and correlation_63d null after their warm-up: undefined by rule,
    as every return_1d of the table is 0 (the market never moves)."""
    table = features_table(LONG_SESSIONS)
    assert (table["return_1d"].dropna() == 0).all()
    table.loc[table["history_days"] >= 64, ["beta_63d", "correlation_63d"]] = np.nan
    return table


def create_table(conn: psycopg.Connection, frame: pd.DataFrame) -> None:
    values = [column for column in frame.columns if column not in ("symbol", "date")]
    conn.execute("drop schema if exists marts cascade")
    conn.execute("create schema marts")
    columns = ", ".join(f"{column} double precision" for column in values)
    conn.execute(f"create table marts.fct_stock_features (symbol text, date date, {columns})")
    warehouse.copy_frame(conn, "marts.fct_stock_features", frame, list(frame.columns))
