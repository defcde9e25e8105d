"""A daily incremental run writes exactly what a full build writes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import psycopg
import pytest

from tests.dbt.support import invoke_dbt, load_raw_market, run_dbt
from tests.dbt.synthetic_market import RawMarket
from tests.support import throwaway_database

pytestmark = pytest.mark.slow

# Every table dbt writes, with its grain.
TABLES = {
    "intermediate.int_prices_adjusted": ["symbol", "date"],
    "intermediate.int_prices_smoothed": ["symbol", "date"],
    "intermediate.int_market_returns_daily": ["date"],
    "marts.fct_daily_prices": ["symbol", "date"],
    "marts.fct_stock_features": ["symbol", "date"],
    "marts.fct_alpha158": ["symbol", "date"],
    "marts.fct_forward_returns": ["symbol", "date"],
    "marts.fct_sector_daily": ["sector", "date"],
    "marts.dim_stocks": ["symbol"],
    "marts.fct_corporate_actions": ["symbol", "ex_date"],
    "marts.fct_latest_prices": ["symbol"],
}


def read_table(conn: psycopg.Connection, table: str) -> pd.DataFrame:
    cursor = conn.execute(f"select * from {table} order by {', '.join(TABLES[table])}")  # type: ignore[arg-type]
    return pd.DataFrame(cursor.fetchall(), columns=[column.name for column in cursor.description or []])


@pytest.mark.parametrize(
    "sessions",
    [
        pytest.param(1, id="a day: each row gathers its year"),
        pytest.param(10, id="two weeks: windows sweep each symbol's year"),
    ],
)
def test_a_run_for_the_last_sessions_after_a_build_matches_the_full_build(
    sessions: int, market: RawMarket, built_warehouse: str, dbt_target_dir: Path
) -> None:
    dates = sorted(market.bars["date"].unique())
    first_day, last_day = pd.Timestamp(dates[-sessions]), pd.Timestamp(dates[-1])
    new_actions = market.since(first_day).actions
    # The new days bring a split and a dividend: those symbols' whole history is rewritten.
    assert (new_actions["split_ratio"] != 1).any() and (new_actions["cash_dividend"] > 0).any()

    window = f"{{start_date: '{first_day.date()}', end_date: '{last_day.date()}'}}"
    with throwaway_database() as url:
        load_raw_market(url, market.before(first_day))
        run_dbt(["run"], database_url=url, target_dir=dbt_target_dir)
        load_raw_market(url, market.since(first_day))
        run_dbt(["run", "--vars", window], database_url=url, target_dir=dbt_target_dir)

        with psycopg.connect(url) as incremental, psycopg.connect(built_warehouse) as full:
            for table in TABLES:
                pd.testing.assert_frame_equal(
                    read_table(incremental, table), read_table(full, table), check_exact=True, obj=table
                )


def test_a_window_ending_before_it_starts_fails_naming_both_dates(
    built_warehouse: str, dbt_target_dir: Path
) -> None:
    window = "{start_date: '2024-06-28', end_date: '2024-06-01'}"
    result = invoke_dbt(
        ["run", "--select", "fct_daily_prices", "--vars", window],
        database_url=built_warehouse,
        target_dir=dbt_target_dir,
    )

    assert not result.success
    messages = [str(node.message) for node in result.result.results]  # type: ignore[union-attr]
    expected = "start_date 2024-06-28 is after end_date 2024-06-01"
    assert any(expected in message for message in messages), messages
