"""bench/products: the product assets materialized by Dagster on the real data, with the champions bench/train
registered: the backtest of the XGBoost champion (its metrics are the figure to report), Prophet's forecasts
for every symbol, the recommendations of the last trading days and their signal health. Prints each asset's
wall time and the backtest's metrics.

Run bench/dbt and then bench/train first (they leave the marts and the champions in stockyard_bench_dbt):

    .venv/bin/python -m bench.products \\
        [--database-url postgresql://postgres@127.0.0.1:5432/stockyard_bench_dbt] [--days 63]
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import date

import dagster as dg
import psycopg

from bench.train import ARTIFACT_ROOT
from ml.config import get_ml_settings
from orchestration.partitions import trading_day_partitions
from orchestration.products.assets import (
    BACKTEST,
    FORECASTS,
    MODEL_VERSIONS,
    RECOMMENDATIONS,
    SIGNAL_HEALTH,
    build_product_assets,
)
from orchestration.resources import ApiCacheResource, MLflowResource, WarehouseResource
from stockyard.db.catalogue import BACKTEST_METRICS
from stockyard.endpoints import sibling_database_url
from stockyard.product_settings import get_product_settings

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/stockyard_bench_dbt"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--days", type=int, default=63, help="trading days of recommendations to make")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    with psycopg.connect(args.database_url) as conn:
        days = [
            row[0]
            for row in conn.execute(
                "select distinct date from marts.fct_stock_features order by date desc limit %s", (args.days,)
            )
        ]
    first_day, last_day = min(days), max(days)
    products = get_product_settings()
    assets = [
        asset
        for asset in build_product_assets(
            get_ml_settings(),
            products,
            trading_day_partitions(date(1990, 1, 2)),
            features=dg.AssetKey("fct_stock_features"),
            prices=dg.AssetKey("fct_daily_prices"),
        )
        # model_versions takes the training assets' comparison, which bench/train does not make.
        if asset.key != MODEL_VERSIONS
    ]
    resources = {
        "warehouse_db": WarehouseResource(database_url=args.database_url),
        "mlflow_tracking": MLflowResource(
            tracking_uri=sibling_database_url(args.database_url, "_mlflow"), artifact_root=str(ARTIFACT_ROOT)
        ),
        # A prefix of its own: the bench must not empty a running API's cache.
        "api_cache": ApiCacheResource(redis_url=args.redis_url, prefix="stockyard-bench:api"),
    }
    partition_range = {
        "dagster/asset_partition_range_start": first_day.isoformat(),
        "dagster/asset_partition_range_end": last_day.isoformat(),
    }
    with dg.DagsterInstance.ephemeral() as instance:
        for key, tags in (
            (BACKTEST, {}),
            (FORECASTS, {}),
            (RECOMMENDATIONS, partition_range),
            (SIGNAL_HEALTH, {}),
        ):
            started = time.perf_counter()
            result = dg.materialize(
                assets, selection=[key], resources=resources, instance=instance, tags=tags
            )
            seconds = time.perf_counter() - started
            events = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
            metadata = events[-1].step_materialization_data.materialization.metadata
            rows = metadata.get("dagster/row_count")
            print(f"{key.to_user_string():<16} {seconds:>7.1f} s  {rows.value if rows else '':>9} rows")
            if key == BACKTEST:
                backtest = metadata

    print()
    print(
        f"backtest of {backtest['model'].value} on its walk-forward out-of-sample scores, "
        f"{backtest['window'].value}: top {products.backtest_top_k}, rebalanced every "
        f"{products.backtest_rebalance_days} trading days, {products.backtest_cost_bps:g} bp costs"
    )
    for name in BACKTEST_METRICS:
        print(f"  {name:<26} {backtest[name].value:>9.4f}")
    print(f"recommendations: {first_day}..{last_day} ({len(days)} trading days)")


if __name__ == "__main__":
    main()
