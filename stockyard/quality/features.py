"""Quality of the features the models read (marts.fct_stock_features, built by dbt).

Each feature has a warm-up: how many of the symbol's trading days (the model's `history_days`, counted from
its first row) it needs to be computed. Before that it is null by design; from then on a null is a defect.
Ranges are the ones the definitions guarantee (an RSI is within 0..100, a percent rank within 0..1, a return
above -100%), so a value outside one is a bug or bad input, never a market event.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import LiteralString

import pandas as pd
import psycopg

from stockyard.quality import expectations as expect
from stockyard.quality import rules
from stockyard.quality.frames import read_frame
from stockyard.quality.results import QualityResult, Severity, Window
from stockyard.quality.suite import Rule, run_suite

FEATURES_TABLE = "marts.fct_stock_features"
# Room for floating-point rounding at bounds the definitions reach exactly.
EPSILON = 1e-9


@dataclass(frozen=True)
class FeatureSpec:
    """History days from which the feature must be present, and the range its definition guarantees."""

    warmup: int
    low: float | None = None
    high: float | None = None
    strict_low: bool = False


# Warm-ups follow dbt_project/models/marts/fct_stock_features.sql: a return over n days needs n + 1 closes,
# a Wilder average over 14 moves 15 closes, MACD's signal 26 + 9 - 1 days.
FEATURES: dict[str, FeatureSpec] = {
    "return_1d": FeatureSpec(2, low=-1.0, strict_low=True),
    "return_5d": FeatureSpec(6, low=-1.0, strict_low=True),
    "return_21d": FeatureSpec(22, low=-1.0, strict_low=True),
    "return_63d": FeatureSpec(64, low=-1.0, strict_low=True),
    "return_252d": FeatureSpec(253, low=-1.0, strict_low=True),
    "log_return_1d": FeatureSpec(2),
    "momentum_12_1": FeatureSpec(253, low=-1.0, strict_low=True),
    "volatility_21d": FeatureSpec(22, low=0.0),
    "volatility_63d": FeatureSpec(64, low=0.0),
    "close_to_sma_5": FeatureSpec(5, low=0.0, strict_low=True),
    "close_to_sma_10": FeatureSpec(10, low=0.0, strict_low=True),
    "close_to_sma_20": FeatureSpec(20, low=0.0, strict_low=True),
    "close_to_sma_50": FeatureSpec(50, low=0.0, strict_low=True),
    "close_to_sma_200": FeatureSpec(200, low=0.0, strict_low=True),
    "macd": FeatureSpec(26),
    "macd_signal": FeatureSpec(34),
    "rsi_14": FeatureSpec(15, low=0.0, high=100.0),
    # Over 20 points no value is more than sqrt(19) population standard deviations from their mean...
    "bollinger_percent_b": FeatureSpec(
        20, low=0.5 - math.sqrt(19) / 4 - EPSILON, high=0.5 + math.sqrt(19) / 4 + EPSILON
    ),
    "atr_14": FeatureSpec(15, low=0.0),
    # ...and none more than 19 / sqrt(20) sample standard deviations.
    "volume_zscore_20d": FeatureSpec(
        20, low=-19 / math.sqrt(20) - EPSILON, high=19 / math.sqrt(20) + EPSILON
    ),
    "distance_from_52w_high": FeatureSpec(252, low=-1.0, high=EPSILON, strict_low=True),
    "distance_from_52w_low": FeatureSpec(252, low=-EPSILON),
    "beta_63d": FeatureSpec(64),
    "correlation_63d": FeatureSpec(64, low=-1.0 - EPSILON, high=1.0 + EPSILON),
}
KEY_COLUMNS = ["symbol", "date", "history_days"]


def feature_specs(columns: set[str]) -> dict[str, FeatureSpec]:
    """FEATURES, and for each `<feature>_rank` column in the table (which features are ranked across symbols
    is the model's choice) a percent rank that exists exactly when its feature does."""
    ranks = {
        column: FeatureSpec(FEATURES[column.removesuffix("_rank")].warmup, low=0.0, high=1.0)
        for column in sorted(columns)
        if column.endswith("_rank") and column.removesuffix("_rank") in FEATURES
    }
    return FEATURES | ranks


def feature_rules(columns: set[str]) -> list[Rule]:
    """One row per symbol and date; per feature: present, non-null after its warm-up, within its range."""
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
    for name, spec in feature_specs(columns).items():
        if name not in columns:
            found.append(_missing(name, "the feature is not in the table"))
            continue
        # A feature's rules read the same columns, so they share one narrow GE batch.
        reads = (name, "history_days") if warmups else (name,)
        if warmups:
            found.append(
                Rule(
                    "null_after_warmup",
                    f"null from the symbol's trading day {spec.warmup} on",
                    expect.ExpectColumnValuesToNotBeNull(
                        column=name, row_condition=f"history_days >= {spec.warmup}", condition_parser="pandas"
                    ),
                    name,
                    shows=(name,),
                    reads=reads,
                )
            )
        if spec.low is not None or spec.high is not None:
            found.append(
                Rule(
                    "out_of_range",
                    f"outside {_interval(spec)}",
                    expect.ExpectColumnValuesToBeBetween(
                        column=name, min_value=spec.low, max_value=spec.high, strict_min=spec.strict_low
                    ),
                    name,
                    shows=(name,),
                    reads=reads,
                )
            )
    return found


def _missing(column: str, why: str) -> Rule:
    return Rule("missing_column", why, expect.ExpectColumnToExist(column=column), column)


def check_features(
    conn: psycopg.Connection, window: Window, *, results_dir: Path, table: LiteralString = FEATURES_TABLE
) -> QualityResult:
    """ERROR: duplicated rows, missing features, nulls after a feature's warm-up, values out of range."""
    frame = read_features(conn, window, table=table)
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
    unchecked = sorted(set(frame.columns) - set(feature_specs(set(frame.columns))) - set(KEY_COLUMNS))
    metrics: dict[str, int | float | str] = {
        "symbols": int(frame["symbol"].nunique()),
        "unchecked_columns": ", ".join(unchecked) or "none",
    }
    return QualityResult(name, Severity.ERROR, len(frame), findings, path, window, metrics=metrics)


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
