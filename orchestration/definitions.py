"""The Stockyard code location: every asset, check, resource and schedule, loaded lazily.

Settings are read when Dagster loads the definitions, never at import time.
"""

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from orchestration.ingestion.assets import build_price_assets, stock_universe
from orchestration.partitions import trading_day_partitions
from orchestration.quality.checks import build_quality_checks
from orchestration.resources import MarketDataResource, WarehouseResource
from orchestration.transformation.assets import build_dbt_assets, dbt_cli, dbt_project
from stockyard.services import resolve_endpoints
from stockyard.settings import Settings, get_settings


def build_definitions(settings: Settings) -> dg.Definitions:
    partitions_def = trading_day_partitions(settings.market_data_start)
    endpoints = resolve_endpoints(settings)
    project = dbt_project()
    incremental_models, other_models = build_dbt_assets(project, partitions_def)
    return dg.Definitions(
        assets=[stock_universe, build_price_assets(partitions_def), incremental_models, other_models],
        asset_checks=build_quality_checks(
            settings, features=get_asset_key_for_model([incremental_models], "fct_stock_features")
        ),
        resources={
            "market_data": MarketDataResource.from_settings(settings),
            "warehouse_db": WarehouseResource(database_url=endpoints.database_url),
            "dbt": dbt_cli(project),
        },
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(get_settings())
