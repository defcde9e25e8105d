"""Quality of the raw layer: bars and corporate actions as loaded, and what the loader set aside.

Row rules are enforced on the way in (stockyard.marketdata.schema): a failing row is quarantined, so on loaded
rows the row suites should find nothing; when they do, a row reached the table some other way. What the
loader quarantined is counted here too, under the same rule names, and the check fails when the quarantined
share of a window passes its threshold. Plausibility flags (gaps, unexplained moves, stale or zero-volume
bars) are warnings: real markets produce each of them now and then.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, LiteralString

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa

from stockyard import rules
from stockyard.calendar import trading_days
from stockyard.quality import expectations as expect
from stockyard.quality.frames import read_frame
from stockyard.quality.results import QualityResult, Quarantine, Severity, Window
from stockyard.quality.settings import QualitySettings
from stockyard.quality.suite import SAMPLE_ROWS, Rule, run_suite

PRICES = ["open", "high", "low", "close"]
BAR_SAMPLE_COLUMNS = ["symbol", "date", "open", "high", "low", "close", "volume"]
ACTION_SAMPLE_COLUMNS = ["symbol", "ex_date", "split_ratio", "cash_dividend"]
_BAR_TYPES = {
    "symbol": pa.string(),
    "date": pa.date32(),
    **{column: pa.float64() for column in ["open", "high", "low", "close", "volume"]},
}
_WINDOW_BARS: LiteralString = """
    select symbol, date, open, high, low, close, volume
    from raw.daily_prices where date between %(first)s and %(last)s order by symbol, date
"""
# The last bar before the window of each of the window's symbols (given: its bars are read already), looked
# up through the (symbol, date) key.
_PREVIOUS_BARS: LiteralString = """
    select previous.symbol, previous.date, previous.open, previous.high, previous.low, previous.close,
        previous.volume
    from unnest(%(symbols)s::text[]) as s(symbol)
    cross join lateral (
        select * from raw.daily_prices where symbol = s.symbol and date < %(first)s order by date desc limit 1
    ) as previous
"""
# Each symbol's first and last bar, through the (symbol, date) key: the symbols one after the other (a skip
# scan), then both ends of each; grouping the table's rows instead reads them all, years of them.
_LISTED_SPANS: LiteralString = """
    with recursive symbols as (
        select min(symbol) as symbol from raw.daily_prices
        union all
        select (select min(symbol) from raw.daily_prices where symbol > symbols.symbol)
        from symbols where symbols.symbol is not null
    )
    select symbol,
        (select min(date) from raw.daily_prices as bars where bars.symbol = symbols.symbol) as listed_from,
        (select max(date) from raw.daily_prices as bars where bars.symbol = symbols.symbol) as listed_to
    from symbols where symbol is not null
"""
# The table each quarantine dataset loads into, and its date column.
_LOADED_TABLES: dict[str, tuple[LiteralString, LiteralString]] = {
    "daily_prices": ("raw.daily_prices", "date"),
    "corporate_actions": ("raw.corporate_actions", "ex_date"),
}
QUARANTINE_SAMPLE_COLUMNS = [
    "rule",
    "provider",
    "partition_key",
    "symbol",
    "date",
    "source",
    "source_row",
    "detail",
    "record",
    "loaded_at",
]


def price_row_rules() -> list[Rule]:
    """The loader's row rules for bars, as expectations on loaded rows (see `row_frame` for the columns)."""
    return [
        Rule(
            rules.MISSING_PRICE,
            "open, high, low or close is missing",
            expect.ExpectColumnValuesToNotBeNull(column="lowest_price"),
        ),
        Rule(
            rules.NON_POSITIVE_PRICE,
            "a price is zero or negative",
            expect.ExpectColumnValuesToBeBetween(column="lowest_price", min_value=0, strict_min=True),
        ),
        Rule(
            rules.INVALID_VOLUME,
            "volume is negative",
            expect.ExpectColumnValuesToBeBetween(column="volume", min_value=0),
        ),
        Rule(
            rules.HIGH_LOW_INCONSISTENT,
            "high is below max(open, close) or low is above min(open, close)",
            expect.ExpectColumnValuesToBeBetween(column="body_outside_range", max_value=0),
            shows=("body_outside_range",),
        ),
        Rule(
            rules.DUPLICATE_ROW,
            "more than one bar for this symbol and date",
            expect.ExpectCompoundColumnsToBeUnique(column_list=["symbol", "date"]),
        ),
        Rule(
            rules.NON_TRADING_DAY,
            "date is not an NYSE trading day",
            # A flag, not the dates against the window's sessions: GE copies an expectation's arguments
            # every time it reads them, and a window of years has thousands of sessions.
            expect.ExpectColumnValuesToBeInSet(column="trading_day", value_set=[True]),
        ),
    ]


def price_plausibility_rules(max_daily_move: float) -> list[Rule]:
    """Flags on the listed sessions of a window (see `_plausibility_frame` for the columns)."""
    bound = math.log1p(max_daily_move)
    return [
        Rule(
            rules.GAP,
            "no bar for a trading day between the symbol's first and last bar",
            expect.ExpectColumnValuesToNotBeNull(column="close"),
        ),
        Rule(
            rules.UNEXPLAINED_MOVE,
            f"the close is more than {max_daily_move:.0%} away from the previous close adjusted for the "
            "day's corporate actions (log move beyond +/-log(1 + threshold))",
            expect.ExpectColumnValuesToBeBetween(column="log_move", min_value=-bound, max_value=bound),
            shows=("log_move",),
        ),
        Rule(
            rules.STALE_PRICE,
            "open, high, low and close repeat the previous bar's",
            expect.ExpectColumnValuesToBeBetween(column="ohlc_change", min_value=0, strict_min=True),
            shows=("ohlc_change",),
        ),
        Rule(
            rules.ZERO_VOLUME,
            "no shares traded",
            expect.ExpectColumnValuesToBeBetween(column="volume", min_value=0, strict_min=True),
        ),
    ]


def action_row_rules() -> list[Rule]:
    """The loader's row rules for corporate actions (stockyard.marketdata.schema.validate_actions)."""
    return [
        Rule(
            rules.INVALID_SPLIT_RATIO,
            "split ratio must be positive",
            expect.ExpectColumnValuesToBeBetween(column="split_ratio", min_value=0, strict_min=True),
        ),
        Rule(
            rules.NEGATIVE_DIVIDEND,
            "cash dividend is negative",
            expect.ExpectColumnValuesToBeBetween(column="cash_dividend", min_value=0),
        ),
        Rule(
            rules.DUPLICATE_ROW,
            "more than one corporate action row for this symbol and ex-date",
            expect.ExpectCompoundColumnsToBeUnique(column_list=["symbol", "ex_date"]),
        ),
    ]


def window_bars(conn: psycopg.Connection, window: Window) -> pd.DataFrame:
    """The window's loaded bars (symbol, date, OHLCV), by symbol and date: what both price checks read.
    Typed even when there are none; volume as float, since bars missing from the plausibility frame leave
    holes in it."""
    return read_frame(conn, _WINDOW_BARS, {"first": window.first, "last": window.last}, _BAR_TYPES)


def check_price_rows(
    conn: psycopg.Connection,
    window: Window,
    *,
    settings: QualitySettings,
    results_dir: Path,
    bars: pd.DataFrame | None = None,
) -> QualityResult:
    """ERROR: loaded bars breaking a row rule, and the quarantined share of the window over its threshold.
    `bars`: the window's, when read already (window_bars)."""
    frame = row_frame(window_bars(conn, window) if bars is None else bars, window)
    name = "raw_daily_prices.row_rules"
    findings, path = run_suite(
        name,
        frame,
        price_row_rules(),
        severity=Severity.ERROR,
        id_columns=["symbol", "date"],
        sample_columns=BAR_SAMPLE_COLUMNS,
        results_dir=results_dir,
        window=window,
    )
    quarantine = quarantine_summary(conn, "daily_prices", window, max_share=settings.max_quarantined_share)
    return QualityResult(name, Severity.ERROR, len(frame), findings, path, window, quarantine)


def served_symbol_rules() -> list[Rule]:
    return [
        Rule(
            rules.PROVIDER_ERROR,
            "the provider could not serve the symbol or its file at all",
            expect.ExpectColumnValuesToBeInSet(column="served", value_set=[True]),
            shows=("reason",),
        )
    ]


def check_served_symbols(conn: psycopg.Connection, window: Window, *, results_dir: Path) -> QualityResult:
    """Symbols the window's load could not serve (recorded undated under its partition key), with the files
    and reasons: ERROR when the window then holds no bar at all, else WARN."""
    params = {"first": window.first, "last": window.last, "key": window.partition_key}
    unserved = _query(
        conn,
        """
        select symbol, provider, source, detail as reason, false as served
        from raw.quarantined_rows
        where dataset = 'daily_prices' and rule = %(rule)s and date is null and partition_key = %(key)s
        order by symbol, provider
        """,
        params | {"rule": rules.PROVIDER_ERROR},
        ["symbol", "provider", "source", "reason", "served"],
    )
    loaded = _query(
        conn,
        """
        select symbol, count(*) as bars from raw.daily_prices
        where date between %(first)s and %(last)s group by symbol order by symbol
        """,
        params,
        ["symbol", "bars"],
    )
    # A symbol that failed keeps the bars an earlier load gave it, but this load did not serve it.
    served = loaded.loc[~loaded["symbol"].isin(unserved["symbol"]), ["symbol"]].assign(served=True)
    frame = pd.concat([unserved, served], ignore_index=True) if not served.empty else unserved
    bars = int(loaded["bars"].sum())
    severity = Severity.ERROR if bars == 0 and not unserved.empty else Severity.WARN
    name = "raw_daily_prices.served_symbols"
    findings, path = run_suite(
        name,
        frame,
        served_symbol_rules(),
        severity=severity,
        id_columns=["symbol", "provider"],
        sample_columns=["symbol", "provider", "source"],
        results_dir=results_dir,
        window=window,
    )
    symbols_by_reason = unserved.groupby("reason")["symbol"].nunique()
    by_reason = {str(reason): int(symbols) for reason, symbols in symbols_by_reason.items()}
    metrics: dict[str, int | float | str | dict[str, int]] = {
        "bars_in_window": bars,
        "served_symbols": len(served),
        "unserved_symbols": int(unserved["symbol"].nunique()),
        "unserved_files": int(unserved["source"].dropna().nunique()),
        "unserved_by_reason": by_reason,
    }
    detail = (
        f"{bars} bars in the window; not served: "
        + "; ".join(f"{reason} ({symbols} symbol(s))" for reason, symbols in by_reason.items())
        if by_reason
        else ""
    )
    return QualityResult(name, severity, len(frame), findings, path, window, metrics=metrics, detail=detail)


def check_price_plausibility(
    conn: psycopg.Connection,
    window: Window,
    *,
    settings: QualitySettings,
    results_dir: Path,
    bars: pd.DataFrame | None = None,
) -> QualityResult:
    """WARN: gaps in listed symbols, moves no corporate action explains, stale repeats, zero volume.
    `bars`: the window's, when read already (window_bars)."""
    frame = _plausibility_frame(conn, window, window_bars(conn, window) if bars is None else bars)
    name = "raw_daily_prices.plausibility"
    findings, path = run_suite(
        name,
        frame,
        price_plausibility_rules(settings.max_daily_move),
        severity=Severity.WARN,
        id_columns=["symbol", "date"],
        sample_columns=BAR_SAMPLE_COLUMNS,
        results_dir=results_dir,
        window=window,
    )
    metrics: dict[str, int | float | str] = {
        "listed_sessions": len(frame),
        "symbols": int(frame["symbol"].nunique()),
        "max_daily_move": settings.max_daily_move,
    }
    return QualityResult(name, Severity.WARN, len(frame), findings, path, window, metrics=metrics)


def check_action_rows(
    conn: psycopg.Connection, window: Window, *, settings: QualitySettings, results_dir: Path
) -> QualityResult:
    """ERROR: loaded corporate actions breaking a row rule, and the quarantined share over its threshold."""
    frame = read_frame(
        conn,
        """
        select symbol, ex_date, split_ratio, cash_dividend
        from raw.corporate_actions where ex_date between %(first)s and %(last)s order by symbol, ex_date
        """,
        {"first": window.first, "last": window.last},
        {
            "symbol": pa.string(),
            "ex_date": pa.date32(),
            "split_ratio": pa.float64(),
            "cash_dividend": pa.float64(),
        },
    )
    name = "raw_corporate_actions.row_rules"
    findings, path = run_suite(
        name,
        frame,
        action_row_rules(),
        severity=Severity.ERROR,
        id_columns=["symbol", "ex_date"],
        sample_columns=ACTION_SAMPLE_COLUMNS,
        results_dir=results_dir,
        window=window,
    )
    quarantine = quarantine_summary(
        conn, "corporate_actions", window, max_share=settings.max_quarantined_share
    )
    return QualityResult(name, Severity.ERROR, len(frame), findings, path, window, quarantine)


def quarantine_summary(
    conn: psycopg.Connection, dataset: str, window: Window, *, max_share: float
) -> Quarantine:
    """Rows of `dataset` quarantined for `window` (dated inside it, or undated under its partition key, as
    warehouse.clear_quarantine matches them), per rule with a sample, against the rows loaded for it.

    Symbols not served at all are not rows: `check_served_symbols` reports them."""
    table, date_column = _LOADED_TABLES[dataset]
    params = {
        "dataset": dataset,
        "first": window.first,
        "last": window.last,
        "key": window.partition_key,
        "sample": SAMPLE_ROWS,
        "provider_error": rules.PROVIDER_ERROR,
    }
    in_window = """
        dataset = %(dataset)s and rule <> %(provider_error)s
        and (date between %(first)s and %(last)s or (date is null and partition_key = %(key)s))
    """
    loaded_row = conn.execute(
        f"select count(*) from {table} where {date_column} between %(first)s and %(last)s", params
    ).fetchone()
    by_rule: dict[str, int] = dict(
        conn.execute(
            f"select rule, count(*) from raw.quarantined_rows where {in_window} group by rule order by rule",
            params,
        ).fetchall()
    )
    sample = _query(
        conn,
        f"""
        select {", ".join(QUARANTINE_SAMPLE_COLUMNS)}
        from (
            select *, row_number() over (partition by rule order by symbol, date, id) as nth
            from raw.quarantined_rows where {in_window}
        ) as ranked
        where nth <= %(sample)s
        order by rule, symbol, date
        """,
        params,
        QUARANTINE_SAMPLE_COLUMNS,
    )
    return Quarantine(
        dataset=dataset,
        loaded=int(loaded_row[0]) if loaded_row else 0,
        quarantined=sum(by_rule.values()),
        by_rule=by_rule,
        sample=sample,
        max_share=max_share,
    )


def _query(
    conn: psycopg.Connection, query: LiteralString, params: dict[str, Any], columns: list[str]
) -> pd.DataFrame:
    rows = conn.execute(query, params).fetchall()
    return pd.DataFrame(rows, columns=columns)


def row_frame(bars: pd.DataFrame, window: Window) -> pd.DataFrame:
    """Bars with the columns the row rules read: one column per rule, so each rule is one expectation."""
    frame = bars.copy()
    frame["trading_day"] = frame["date"].isin(trading_days(window.first, window.last))
    # NaN when any price is missing (missing_price), else the smallest one (non_positive_price).
    frame["lowest_price"] = frame[PRICES].min(axis=1, skipna=False)
    # How far the body (open..close) sticks out of the high..low range: positive means inconsistent.
    frame["body_outside_range"] = np.maximum(
        frame[["open", "close"]].max(axis=1) - frame["high"],
        frame["low"] - frame[["open", "close"]].min(axis=1),
    )
    return frame


def _plausibility_frame(conn: psycopg.Connection, window: Window, bars: pd.DataFrame) -> pd.DataFrame:
    """Every (symbol, trading day) of the window between the symbol's first and last bar, with its bar when
    one loaded, how far it moved from the previous bar (adjusted for the day's corporate actions) and whether
    it repeats it. Days with a quarantined bar are left out (the row check reports those), unless the bar
    quarantined was an identical copy of the loaded one."""
    params = {"first": window.first, "last": window.last}
    previous = read_frame(
        conn, _PREVIOUS_BARS, params | {"symbols": list(bars["symbol"].unique())}, _BAR_TYPES
    )
    actions = read_frame(
        conn,
        """
        select symbol, ex_date as date, split_ratio, cash_dividend
        from raw.corporate_actions where ex_date between %(first)s and %(last)s
        """,
        params,
        {
            "symbol": pa.string(),
            "date": pa.date32(),
            "split_ratio": pa.float64(),
            "cash_dividend": pa.float64(),
        },
    )
    spans = read_frame(
        conn,
        _LISTED_SPANS,
        params,
        {"symbol": pa.string(), "listed_from": pa.date32(), "listed_to": pa.date32()},
    )
    quarantined = read_frame(
        conn,
        """
        select distinct symbol, date from raw.quarantined_rows
        where dataset = 'daily_prices' and date between %(first)s and %(last)s
            and rule <> %(loaded_copy)s
        """,
        params | {"loaded_copy": rules.DUPLICATE_IDENTICAL},
        {"symbol": pa.string(), "date": pa.date32()},
    )

    moves = _moves(pd.concat([previous, bars], ignore_index=True), actions)
    listed = _listed_sessions(spans, window).merge(
        quarantined, on=["symbol", "date"], how="left", indicator=True
    )
    listed = listed.loc[listed["_merge"] == "left_only", ["symbol", "date"]]
    # Merged on the left: in the order of the listed sessions, by symbol and date.
    return listed.merge(moves, on=["symbol", "date"], how="left")


def _moves(bars: pd.DataFrame, actions: pd.DataFrame) -> pd.DataFrame:
    """Each bar's log move from the previous bar's close (adjusted like an as-traded price: divided by the
    split ratio, less the dividend, on the ex-date) and its total absolute OHLC change from that bar."""
    # The shift by symbol needs each symbol's bars in date order, not the symbols in order.
    bars = bars.sort_values("date").merge(actions, on=["symbol", "date"], how="left")
    previous = bars.groupby("symbol")[PRICES].shift(1)
    reference = previous["close"] / bars["split_ratio"].fillna(1.0) - bars["cash_dividend"].fillna(0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        # A reference at or below zero (a dividend larger than the price) is itself unexplained: infinite.
        log_move = np.where(reference > 0, np.log(bars["close"] / reference), np.inf)
    bars["log_move"] = np.where(previous["close"].isna(), np.nan, log_move)
    bars["ohlc_change"] = (bars[PRICES] - previous).abs().sum(axis=1, min_count=len(PRICES))
    return bars[[*BAR_SAMPLE_COLUMNS, "log_move", "ohlc_change"]]


def _listed_sessions(spans: pd.DataFrame, window: Window) -> pd.DataFrame:
    """(symbol, date) for every trading day of the window between the symbol's first and last bar."""
    sessions = pd.DataFrame({"date": trading_days(window.first, window.last)})
    # Each symbol's sessions in turn, so by symbol and date.
    grid = spans.sort_values("symbol").merge(sessions, how="cross")
    inside = grid["date"].between(grid["listed_from"], grid["listed_to"])
    return grid.loc[inside, ["symbol", "date"]].reset_index(drop=True)
