"""The jobs: what a schedule, a sensor, `stockyard run` / `stockyard materialize` or the UI launches.

One run may hold partitioned and unpartitioned assets together: the partitioned ones materialize the run's
trading days (one partition, or a range given by the run's tags), the others once, each after its parents.

- full_build: every asset and check. `stockyard run` builds the warehouse with it over the whole window;
  `stockyard materialize --select` runs a part of it.
- daily_refresh (one trading day): the day's bars, the dbt models (the incremental ones for that day's
  window), their checks, the day's recommendations with the current champions, signal health; each asset that
  writes what the API reads purges the API's cache when it is done.
- retrain: the ML group, and the products made from the models alone (forecasts, backtest, model versions).
"""

from __future__ import annotations

import dagster as dg

from orchestration.ml.assets import ML_GROUP
from orchestration.products.assets import BACKTEST, FORECASTS, MODEL_VERSIONS

FULL_BUILD = "full_build"
DAILY_REFRESH = "daily_refresh"
RETRAIN = "retrain"
# The products that change only with the models; recommendations and signal health change every day.
MODEL_PRODUCTS = dg.AssetSelection.assets(FORECASTS, BACKTEST, MODEL_VERSIONS)
RETRAINED = dg.AssetSelection.groups(ML_GROUP) | MODEL_PRODUCTS


def build_jobs() -> list[dg.UnresolvedAssetJobDefinition]:
    return [
        dg.define_asset_job(
            FULL_BUILD,
            selection=dg.AssetSelection.all(),
            description="Every asset and check: the data of the run's trading days (a range when the run's "
            "tags give one), then the models and the products. What `stockyard run` launches.",
        ),
        dg.define_asset_job(
            DAILY_REFRESH,
            selection=dg.AssetSelection.all() - RETRAINED,
            description="One trading day after the close: its bars, the dbt models over its window and their "
            "checks, its recommendations with the current champions and signal health. The API's cache is "
            "purged by each asset that writes what it reads.",
        ),
        dg.define_asset_job(
            RETRAIN,
            selection=RETRAINED,
            description="Train every family on the marts as they are, decide promotion, and make the "
            "forecasts, backtest and model versions with the champions.",
        ),
    ]
