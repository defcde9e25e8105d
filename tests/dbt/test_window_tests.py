"""In a run over a date window, the data tests of the incremental models read the window's dates only (the
rows the run wrote); without a window they read every row (macros/get_where_subquery.sql)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import psycopg
import pytest

from tests.dbt.support import invoke_dbt, load_raw_market, run_dbt
from tests.dbt.synthetic_market import RawMarket
from tests.support import throwaway_database

pytestmark = pytest.mark.slow

RSI_RANGE_TEST = "accepted_range_fct_stock_features_rsi_14__100__0"


def failing_tests(args: list[str], *, database_url: str, target_dir: Path) -> list[str]:
    """The names of the data tests of fct_stock_features that fail under `dbt test <args>`."""
    result = invoke_dbt(
        ["test", "--select", "fct_stock_features", "--exclude-resource-type", "unit_test", *args],
        database_url=database_url,
        target_dir=target_dir,
    )
    assert result.exception is None, result.exception
    tests = [node for node in result.result.results if node.node.resource_type == "test"]  # type: ignore[union-attr]
    assert tests, "dbt selected no tests"
    return [node.node.name for node in tests if str(node.status) != "pass"]


def test_a_window_run_tests_the_window_and_a_run_without_one_every_row(
    market: RawMarket, dbt_target_dir: Path
) -> None:
    last_day = market.last_date.date()
    window = ["--vars", f"{{start_date: '{last_day}', end_date: '{last_day}'}}"]
    with throwaway_database() as url:
        load_raw_market(url, market)
        run_dbt(["run"], database_url=url, target_dir=dbt_target_dir)

        def break_rsi_on(day: date) -> None:
            with psycopg.connect(url) as conn:
                conn.execute(
                    "update marts.fct_stock_features set rsi_14 = 150"
                    " where date = %s and symbol = (select min(symbol) from marts.fct_stock_features)",
                    (day,),
                )

        dates = sorted(market.bars["date"].dt.date.unique())
        break_rsi_on(dates[-30])
        assert failing_tests(window, database_url=url, target_dir=dbt_target_dir) == []
        assert failing_tests([], database_url=url, target_dir=dbt_target_dir) == [RSI_RANGE_TEST]

        break_rsi_on(last_day)
        assert failing_tests(window, database_url=url, target_dir=dbt_target_dir) == [RSI_RANGE_TEST]
