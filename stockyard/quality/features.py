"""Quality of the features the models read (marts.fct_stock_features, built by dbt).

Each feature has a warm-up: how many of the symbol's trading days (the model's `history_days`, counted from
its first row) it needs to be computed. Before that it is null by design. After it the model gives every
feature a value on all legitimate data, flat prices and constant volumes included (a zero-width Bollinger band
has %B 0.5, an RSI without any move is 50: the conventions are in the model's yml), so a null after the
warm-up shows a bug and blocks, however few such rows a large window holds: a tolerance would let a feature
broken on a few symbols through. The one exception is mathematical: no beta to, nor correlation with, a
market whose returns did not vary over the 63 days exists. Such rows are undefined by rule: reported with the
result, never failing.

Ranges are the ones the definitions guarantee (an RSI is within 0..100, a percent rank within 0..1, a return
above -100%), and every value is finite, so a value outside one is a bug or bad input, never a market event.
Duplicated rows block, and so do rows missing inside the window: the symbol's trading-day count jumps.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import LiteralString

import pandas as pd
import psycopg

from stockyard import rules
from stockyard.features import KEY_COLUMNS as FEATURE_KEY_COLUMNS
from stockyard.features import stock_features
from stockyard.quality import expectations as expect
from stockyard.quality.frames import read_frame
from stockyard.quality.results import Finding, QualityResult, Severity, Window
from stockyard.quality.suite import SAMPLE_ROWS, Rule, run_suite

FEATURES_TABLE = "marts.fct_stock_features"
# The window of the market-relative features (beta_63d, correlation_63d), in daily returns.
MARKET_DAYS = 63
# The calendar days holding MARKET_DAYS trading days (about 91), with ample room for holidays and closures.
MARKET_LOOKBACK = timedelta(days=140)
# Columns the check derives from the table: the date's market was still over MARKET_DAYS returns; the
# symbol's trading days since its previous row in the window.
MARKET_STILL = "market_still"
HISTORY_STEP = "history_step"


@dataclass(frozen=True)
class FeatureSpec:
    """History days from which the feature must be present, and the range its definition guarantees.
    `needs_market_moves`: undefined (null by rule) where the market's returns did not vary over MARKET_DAYS
    days."""

    warmup: int
    low: float | None = None
    high: float | None = None
    strict_low: bool = False
    needs_market_moves: bool = False


# The model's yml states each feature's warm-up and range (stockyard.features).
FEATURES: dict[str, FeatureSpec] = {
    feature.name: FeatureSpec(
        feature.warmup,
        low=feature.low,
        high=feature.high,
        strict_low=feature.strict_low,
        needs_market_moves=feature.needs_market_moves,
    )
    for feature in stock_features()
}
KEY_COLUMNS = list(FEATURE_KEY_COLUMNS)


def feature_specs(columns: set[str]) -> dict[str, FeatureSpec]:
    """FEATURES, and for each `<feature>_rank` column in the table (which features are ranked across symbols
    is the model's choice) a percent rank that exists exactly when its feature does."""
    ranks = {
        column: FeatureSpec(feature.warmup, low=0.0, high=1.0, needs_market_moves=feature.needs_market_moves)
        for column in sorted(columns)
        if column.endswith("_rank") and (feature := FEATURES.get(column.removesuffix("_rank")))
    }
    return FEATURES | ranks


def feature_rules(columns: set[str]) -> list[Rule]:
    """One row per symbol and date, none missing; per feature: present, non-null after its warm-up (unless
    undefined by rule, with the MARKET_STILL column), finite and within its range."""
    found = [
        Rule(
            rules.DUPLICATE_ROW,
            "more than one row for this symbol and date",
            expect.ExpectCompoundColumnsToBeUnique(column_list=["symbol", "date"]),
            reads=("symbol", "date"),
        )
    ]
    warmups = "history_days" in columns
    if not warmups:
        found.append(_missing("history_days", "without it no warm-up can be told from a defect"))
    if HISTORY_STEP in columns:
        found.append(
            Rule(
                "missing_rows",
                "the symbol's trading-day count jumps from its previous row: the rows between are missing",
                expect.ExpectColumnValuesToBeBetween(column=HISTORY_STEP, max_value=1),
                reads=("history_days", HISTORY_STEP),
                shows=("history_days", HISTORY_STEP),
            )
        )
    for name, spec in feature_specs(columns).items():
        if name not in columns:
            found.append(_missing(name, "the feature is not in the table"))
            continue
        condition = f"history_days >= {spec.warmup}"
        exempt = spec.needs_market_moves and MARKET_STILL in columns
        if exempt:
            condition += f" and ~{MARKET_STILL}"
        # A feature's rules read the same columns, so they share one narrow GE batch.
        reads = (name, "history_days", *([MARKET_STILL] if exempt else [])) if warmups else (name,)
        if warmups:
            found.append(
                Rule(
                    "null_after_warmup",
                    f"null from the symbol's trading day {spec.warmup} on"
                    + (" on a date the market moved" if exempt else ""),
                    expect.ExpectColumnValuesToNotBeNull(
                        column=name, row_condition=condition, condition_parser="pandas"
                    ),
                    name,
                    shows=(name,),
                    reads=reads,
                )
            )
        # Unbounded sides at the largest float: an infinite value fails too.
        found.append(
            Rule(
                "out_of_range",
                f"infinite or outside {_interval(spec)}",
                expect.ExpectColumnValuesToBeBetween(
                    column=name,
                    min_value=-sys.float_info.max if spec.low is None else spec.low,
                    max_value=sys.float_info.max if spec.high is None else spec.high,
                    strict_min=spec.strict_low,
                ),
                name,
                shows=(name,),
                reads=reads,
            )
        )
    return found


def undefined_by_rule(frame: pd.DataFrame) -> list[Finding]:
    """Per feature needing market moves, its rows null after the warm-up on a date whose market was still:
    legitimate, reported beside the rules' findings."""
    if MARKET_STILL not in frame.columns or "history_days" not in frame.columns:
        return []
    found = []
    for name, spec in feature_specs(set(frame.columns)).items():
        if not spec.needs_market_moves or name not in frame.columns:
            continue
        rows = frame.loc[
            frame[MARKET_STILL] & (frame["history_days"] >= spec.warmup) & frame[name].isna(),
            [*KEY_COLUMNS, name],
        ]
        if len(rows):
            rule = f"undefined_by_rule[{name}]"
            description = f"no {name} exists: the market's returns did not vary over {MARKET_DAYS} days"
            found.append(Finding(rule, description, Severity.WARN, len(rows), rows[:SAMPLE_ROWS]))
    return found


def _missing(column: str, why: str) -> Rule:
    return Rule("missing_column", why, expect.ExpectColumnToExist(column=column), column)


def check_features(
    conn: psycopg.Connection, window: Window, *, results_dir: Path, table: LiteralString = FEATURES_TABLE
) -> QualityResult:
    """ERROR: duplicated or missing rows, missing features, nulls after a feature's warm-up where it is
    defined, infinite values or values out of range. Rows undefined by rule are reported."""
    frame = read_features(conn, window, table=table)
    unchecked = sorted(set(frame.columns) - set(feature_specs(set(frame.columns))) - set(KEY_COLUMNS))
    if "history_days" in frame.columns:
        frame[HISTORY_STEP] = frame.groupby("symbol", sort=False)["history_days"].diff()
    if "return_1d" in frame.columns:
        frame[MARKET_STILL] = frame["date"].isin(market_still_dates(conn, window, table=table))
    name = f"{table}.feature_rules"
    findings, path = run_suite(
        name,
        frame,
        feature_rules(set(frame.columns)),
        severity=Severity.ERROR,
        id_columns=["symbol", "date"],
        sample_columns=KEY_COLUMNS,
        results_dir=results_dir,
        window=window,
    )
    reported = undefined_by_rule(frame)
    metrics: dict[str, int | float | str] = {
        "symbols": int(frame["symbol"].nunique()),
        "unchecked_columns": ", ".join(unchecked) or "none",
    }
    return QualityResult(
        name, Severity.ERROR, len(frame), findings, path, window, metrics=metrics, reported=reported
    )


def market_still_dates(
    conn: psycopg.Connection, window: Window, *, table: LiteralString = FEATURES_TABLE
) -> list[str]:
    """The window's dates on which the equal-weight market's daily return (the mean return_1d of the date's
    rows, as int_market_returns_daily) took one value over its last MARKET_DAYS dates: its variance is 0.
    A symbol with gaps in that span regresses on other dates; it is judged by the market's all the same."""
    rows = conn.execute(
        f"""
        with market as (
            select date, avg(return_1d) as market_return_1d
            from {table}
            where date between %(since)s and %(last)s and return_1d is not null
            group by date
        ),

        spans as (
            select
                date,
                count(*) over last_market_days as dates,
                min(market_return_1d) over last_market_days
                = max(market_return_1d) over last_market_days as still
            from market
            window last_market_days as (
                order by date rows between {MARKET_DAYS - 1} preceding and current row
            )
        )

        select to_char(date, 'YYYY-MM-DD') from spans
        where date >= %(first)s and dates = {MARKET_DAYS} and still
        """,
        {"since": window.first - MARKET_LOOKBACK, "first": window.first, "last": window.last},
    ).fetchall()
    return [row[0] for row in rows]


def read_features(
    conn: psycopg.Connection, window: Window, *, table: LiteralString = FEATURES_TABLE
) -> pd.DataFrame:
    """The window's rows, every feature as a float (even a column Arrow saw only nulls in)."""
    frame = read_frame(
        conn,
        f"select * from {table} where date between %(first)s and %(last)s order by symbol, date",
        {"first": window.first, "last": window.last},
    )
    for column in frame.columns.drop(["symbol", "date"]):
        if frame[column].dtype != "float64":
            frame[column] = frame[column].astype("float64")
    frame["date"] = frame["date"].dt.strftime("%Y-%m-%d")
    return frame


def _interval(spec: FeatureSpec) -> str:
    low = "-inf" if spec.low is None else f"{spec.low:g}"
    high = "inf" if spec.high is None else f"{spec.high:g}"
    return f"{'(' if spec.strict_low else '['}{low}, {high}]"
