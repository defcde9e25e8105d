"""Ingestion assets materialized for real: Dagster, the sample provider and PostgreSQL."""

from __future__ import annotations

from datetime import date

import dagster as dg
import psycopg
import pytest

from orchestration.definitions import build_definitions
from orchestration.ingestion.assets import build_price_assets, stock_universe
from orchestration.partitions import trading_day_partitions
from orchestration.resources import MarketDataResource, WarehouseResource
from stockyard.settings import Settings

HISTORY_START = date(2024, 1, 2)
PARTITIONS = trading_day_partitions(HISTORY_START)
PRICE_ASSETS = build_price_assets(PARTITIONS)


def resources(database_url: str) -> dict[str, object]:
    return {
        "market_data": MarketDataResource(
            providers="sample", history_start=HISTORY_START.isoformat(), sample_symbols=15
        ),
        "warehouse_db": WarehouseResource(database_url=database_url),
    }


def materialize_prices(database_url: str, first: str, last: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [stock_universe, PRICE_ASSETS],
        selection=[PRICE_ASSETS],
        resources=resources(database_url),
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
    )


def test_definitions_load() -> None:
    defs = build_definitions(Settings())
    graph = defs.resolve_asset_graph()
    assert {"stock_universe", "raw_daily_prices", "raw_corporate_actions"} <= {
        key.to_user_string() for key in graph.get_all_asset_keys()
    }


def test_partitions_are_nyse_trading_days() -> None:
    keys = PARTITIONS.get_partition_keys()
    assert keys[0] == "2024-01-02"
    assert "2024-07-04" not in keys and "2024-03-29" not in keys  # Independence Day, Good Friday
    assert "2024-01-06" not in keys  # a Saturday
    assert "2024-07-05" in keys


@pytest.fixture(scope="module")
def loaded_database(database_url: str) -> str:
    assert dg.materialize([stock_universe], resources=resources(database_url)).success
    return database_url


def test_stock_universe_is_labelled_synthetic(loaded_database: str) -> None:
    with psycopg.connect(loaded_database) as conn:
        count, synthetic, sectors = conn.execute(
            "select count(*), bool_and(is_synthetic), count(distinct sector) from raw.stocks"
        ).fetchone()  # type: ignore[misc]
    assert count == 15 and synthetic and sectors == 11


def test_price_window_materializes_in_one_run_and_reruns_idempotently(loaded_database: str) -> None:
    result = materialize_prices(loaded_database, "2024-01-02", "2024-03-28")
    assert result.success
    materializations = result.asset_materializations_for_node("raw_market_data")
    prices = next(m for m in materializations if m.asset_key == dg.AssetKey("raw_daily_prices"))
    assert prices.metadata["synthetic"].value is True
    assert prices.metadata["provider"].value == "sample"
    assert prices.metadata["first_date"].value == "2024-01-02"
    assert prices.metadata["last_date"].value == "2024-03-28"

    with psycopg.connect(loaded_database) as conn:
        before = conn.execute(
            "select count(*), round(sum(close)::numeric, 6) from raw.daily_prices"
        ).fetchone()
        assert materialize_prices(loaded_database, "2024-02-01", "2024-02-01").success
        assert (
            conn.execute("select count(*), round(sum(close)::numeric, 6) from raw.daily_prices").fetchone()
            == before
        )
        duplicates = conn.execute(
            "select count(*) from (select from raw.daily_prices group by symbol, date having count(*) > 1) d"
        ).fetchone()
    assert duplicates == (0,)
    provider = MarketDataResource(
        providers="sample", history_start=HISTORY_START.isoformat(), sample_symbols=15
    ).provider()
    returned = provider.history(provider.symbols(), date(2024, 1, 2), date(2024, 3, 28))
    assert before is not None and before[0] == len(returned.bars) > 0
