"""The features suite on a features table shaped like marts.fct_stock_features."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest

from stockyard.quality.features import check_features
from tests.quality.features_table import SESSIONS, WINDOW, create_table, features_table, still_market_table
from tests.support import throwaway_database


@pytest.fixture(scope="module")
def features_database() -> Iterator[str]:
    with throwaway_database() as url:
        yield url


def test_features_in_range_and_null_only_while_warming_up_pass(
    features_database: str, tmp_path: Path
) -> None:
    with psycopg.connect(features_database) as conn:
        create_table(conn, features_table())
        result = check_features(conn, WINDOW, results_dir=tmp_path)
    assert result.passed, result.failing_rules
    assert result.rows == 21 + 21 + 17 and result.metrics["unchecked_columns"] == "none"
    rule_keys = {finding.rule for finding in result.findings}
    assert {"null_after_warmup[rsi_14_rank]", "out_of_range[rsi_14_rank]", "duplicate_row"} <= rule_keys


def test_each_feature_defect_fails_its_rule(features_database: str, tmp_path: Path) -> None:
    table = features_table()
    late = (table["symbol"] == "NEW") & (table["date"] == SESSIONS[-1])  # its 17th day: RSI is due
    table.loc[late, "rsi_14"] = np.nan
    bbb = table.index[(table["symbol"] == "BBB") & (table["date"] == SESSIONS[-1])]
    table.loc[bbb, ["rsi_14_rank", "volatility_21d"]] = [1.5, -0.1]
    table = pd.concat([table, table.loc[bbb]], ignore_index=True)
    table = table.drop(columns="return_5d").assign(novel_feature=1.0)
    with psycopg.connect(features_database) as conn:
        create_table(conn, table)
        result = check_features(conn, WINDOW, results_dir=tmp_path)

    assert not result.passed
    assert result.failing_rules == {
        "null_after_warmup[rsi_14]": 1,
        "out_of_range[rsi_14_rank]": 2,  # both copies of the duplicated row
        "out_of_range[volatility_21d]": 2,
        "duplicate_row": 2,
        "missing_column[return_5d]": 1,
    }
    samples = {finding.rule: finding.sample for finding in result.findings}
    assert samples["null_after_warmup[rsi_14]"][["symbol", "date", "history_days"]].values.tolist() == [
        ["NEW", SESSIONS[-1].date().isoformat(), 17.0]
    ]
    assert result.metrics["unchecked_columns"] == "novel_feature"


def test_without_history_days_the_warm_ups_cannot_be_checked(features_database: str, tmp_path: Path) -> None:
    with psycopg.connect(features_database) as conn:
        create_table(conn, features_table().drop(columns="history_days"))
        result = check_features(conn, WINDOW, results_dir=tmp_path)
    assert result.failing_rules == {"missing_column[history_days]": 1}
    assert not any(finding.rule.startswith("null_after_warmup") for finding in result.findings)


def test_infinite_values_and_rows_missing_inside_the_window_fail(
    features_database: str, tmp_path: Path
) -> None:
    table = features_table()
    aaa = table["symbol"] == "AAA"
    # Features without a bound as well as with one: every value must be finite.
    table.loc[aaa & (table["date"] == SESSIONS[-1]), ["macd", "rsi_14"]] = [np.inf, -np.inf]
    table = table.drop(table.index[aaa & (table["date"] == SESSIONS[30])])
    with psycopg.connect(features_database) as conn:
        create_table(conn, table)
        result = check_features(conn, WINDOW, results_dir=tmp_path)

    assert result.failing_rules == {"out_of_range[macd]": 1, "out_of_range[rsi_14]": 1, "missing_rows": 1}
    samples = {finding.rule: finding.sample for finding in result.findings}
    # The row after the gap, its count two days on.
    assert samples["missing_rows"][["symbol", "date", "history_days", "history_step"]].values.tolist() == [
        ["AAA", SESSIONS[31].date().isoformat(), 32.0, 2.0]
    ]


def test_beta_and_correlation_are_undefined_by_rule_only_while_the_market_is_still(
    features_database: str, tmp_path: Path
) -> None:
    table = still_market_table()
    with psycopg.connect(features_database) as conn:
        create_table(conn, table)
        still = check_features(conn, WINDOW, results_dir=tmp_path)
        # One move five sessions before the end: from then on the market moved within the last 63 returns.
        moved = (table["symbol"] == "BBB") & (table["date"] == SESSIONS[-5])
        create_table(conn, table.assign(return_1d=table["return_1d"].mask(moved, 0.01)))
        moving = check_features(conn, WINDOW, results_dir=tmp_path)

    window_rows = 3 * 21
    assert still.passed, still.failing_rules
    assert still.reported_rules == {
        "undefined_by_rule[beta_63d]": window_rows,
        "undefined_by_rule[correlation_63d]": window_rows,
    }
    assert moving.failing_rules == {
        "null_after_warmup[beta_63d]": 3 * 5,
        "null_after_warmup[correlation_63d]": 3 * 5,
    }
    assert moving.reported_rules == {
        "undefined_by_rule[beta_63d]": window_rows - 3 * 5,
        "undefined_by_rule[correlation_63d]": window_rows - 3 * 5,
    }
