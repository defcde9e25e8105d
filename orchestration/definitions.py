"""The Stockyard code location: every asset, check, resource and schedule, loaded lazily.

Settings are read when Dagster loads the definitions, never at import time.
"""

from __future__ import annotations

import dagster as dg

from orchestration.ingestion.assets import build_price_assets, stock_universe
from orchestration.partitions import trading_day_partitions
from orchestration.resources import MarketDataResource, WarehouseResource
from stockyard.services import resolve_endpoints
from stockyard.settings import Settings, get_settings


def build_definitions(settings: Settings) -> dg.Definitions:
    partitions_def = trading_day_partitions(settings.market_data_start)
    endpoints = resolve_endpoints(settings)
    return dg.Definitions(
        assets=[stock_universe, build_price_assets(partitions_def)],
        resources={
            "market_data": MarketDataResource.from_settings(settings),
            "warehouse_db": WarehouseResource(database_url=endpoints.database_url),
        },
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(get_settings())
