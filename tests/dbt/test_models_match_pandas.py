"""Every number of the marts against the independent pandas implementation in `reference`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import psycopg
import pytest

from stockyard.features import alpha158_features
from tests.dbt import alpha158_reference, reference
from tests.dbt.synthetic_market import RawMarket

pytestmark = pytest.mark.slow

RELATIVE_TOLERANCE = 1e-6
# Values that cancel to about zero (a return of 0, an excess return of a lone symbol) differ by rounding only.
ABSOLUTE_TOLERANCE = 1e-12


def read_table(database_url: str, table: str, keys: list[str]) -> pd.DataFrame:
    with psycopg.connect(database_url) as conn:
        cursor = conn.execute(f"select * from {table} order by {', '.join(keys)}")  # type: ignore[arg-type]
        frame = pd.DataFrame(cursor.fetchall(), columns=[column.name for column in cursor.description or []])
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def assert_columns_match(
    actual: pd.DataFrame, expected: pd.DataFrame, keys: list[str], columns: list[str]
) -> None:
    """Same rows; in each column nulls in the same places and the values within tolerance."""
    merged = actual.merge(expected, on=keys, how="outer", suffixes=("_dbt", "_pandas"), indicator=True)
    assert (merged["_merge"] == "both").all(), merged.loc[merged["_merge"] != "both", [*keys, "_merge"]]
    problems = []
    for column in columns:
        ours = merged[f"{column}_dbt"].astype(float).to_numpy()
        theirs = merged[f"{column}_pandas"].astype(float).to_numpy()
        null_mismatch = np.isnan(ours) != np.isnan(theirs)
        both = ~np.isnan(ours) & ~np.isnan(theirs)
        value_mismatch = both & ~np.isclose(ours, theirs, rtol=RELATIVE_TOLERANCE, atol=ABSOLUTE_TOLERANCE)
        if null_mismatch.any() or value_mismatch.any():
            first = merged.loc[null_mismatch | value_mismatch, [*keys, f"{column}_dbt", f"{column}_pandas"]]
            problems.append(
                f"{column}: {null_mismatch.sum()} null and {value_mismatch.sum()} value mismatches,"
                f" first:\n{first.head(3).to_string()}"
            )
        assert both.any(), f"{column} is never computed: the test data is too short for it"
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def adjusted(market: RawMarket) -> pd.DataFrame:
    return reference.adjusted_prices(market)


def test_daily_prices_are_adjusted_backwards_for_splits_and_dividends(
    built_warehouse: str, adjusted: pd.DataFrame
) -> None:
    actual = read_table(built_warehouse, "marts.fct_daily_prices", ["symbol", "date"])
    columns = ["adj_open", "adj_high", "adj_low", "adj_close", "adj_volume", "return_1d"]
    assert_columns_match(actual, adjusted, ["symbol", "date"], columns)


def test_every_stock_feature_matches_pandas(built_warehouse: str, adjusted: pd.DataFrame) -> None:
    actual = read_table(built_warehouse, "marts.fct_stock_features", ["symbol", "date"])
    expected = reference.stock_features(adjusted)
    features = [column for column in actual.columns if column not in ("symbol", "date")]
    assert set(features) == set(expected.columns) - {"symbol", "date"}
    assert_columns_match(actual, expected, ["symbol", "date"], features)


def test_every_alpha158_feature_matches_qlib_s_definitions_in_pandas(
    built_warehouse: str, adjusted: pd.DataFrame
) -> None:
    actual = read_table(built_warehouse, "marts.fct_alpha158", ["symbol", "date"])
    expected = alpha158_reference.alpha158(adjusted)
    features = list(alpha158_features())
    assert list(actual.columns) == ["symbol", "date", "history_days", *features]
    assert set(expected.columns) == {"symbol", "date", *features}
    assert_columns_match(actual, expected, ["symbol", "date"], features)


def test_forward_returns_match_pandas(built_warehouse: str, adjusted: pd.DataFrame) -> None:
    actual = read_table(built_warehouse, "marts.fct_forward_returns", ["symbol", "date"])
    expected = reference.forward_returns(adjusted)
    columns = [column for column in expected.columns if column not in ("symbol", "date")]
    assert_columns_match(actual, expected, ["symbol", "date"], columns)


def test_sector_aggregates_match_pandas(
    built_warehouse: str, market: RawMarket, adjusted: pd.DataFrame
) -> None:
    actual = read_table(built_warehouse, "marts.fct_sector_daily", ["sector", "date"])
    expected = reference.sector_daily(adjusted, market.stocks)
    columns = ["symbols_count", "mean_return_1d", "advancers_share", "total_market_cap"]
    assert_columns_match(actual, expected, ["sector", "date"], columns)
