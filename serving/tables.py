"""The warehouse tables the API reads: dbt's marts (only the columns used) and the products Dagster writes
(the application's own tables, from stockyard.db.catalogue).

Declared rather than reflected, so the app starts without a round trip and a renamed column fails the tests.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    MetaData,
    Table,
    Text,
)

from stockyard.db.catalogue import (
    backtest_positions,
    backtests,
    forecasts,
    model_versions,
    recommendations,
)

__all__ = [
    "INDICATOR_COLUMNS",
    "backtest_positions",
    "backtests",
    "dim_stocks",
    "fct_corporate_actions",
    "fct_daily_prices",
    "fct_latest_prices",
    "fct_sector_daily",
    "fct_stock_features",
    "forecasts",
    "metadata",
    "model_versions",
    "recommendations",
]

from stockyard.features import served_features

metadata = MetaData()

dim_stocks = Table(
    "dim_stocks",
    metadata,
    Column("symbol", Text, primary_key=True),
    Column("company_name", Text),
    Column("sector", Text),
    Column("industry", Text),
    Column("market_cap", Float),
    Column("currency", Text),
    Column("exchange", Text),
    Column("provider", Text),
    Column("is_synthetic", Boolean),
    Column("first_date", Date),
    Column("last_date", Date),
    Column("trading_days_count", BigInteger),
    schema="marts",
)

fct_daily_prices = Table(
    "fct_daily_prices",
    metadata,
    Column("symbol", Text, primary_key=True),
    Column("date", Date, primary_key=True),
    Column("open", Float),
    Column("high", Float),
    Column("low", Float),
    Column("close", Float),
    Column("volume", Float),
    Column("adj_open", Float),
    Column("adj_high", Float),
    Column("adj_low", Float),
    Column("adj_close", Float),
    Column("adj_volume", Float),
    Column("return_1d", Float),
    schema="marts",
)

fct_corporate_actions = Table(
    "fct_corporate_actions",
    metadata,
    Column("symbol", Text, primary_key=True),
    Column("ex_date", Date, primary_key=True),
    Column("split_ratio", Float),
    schema="marts",
)

fct_latest_prices = Table(
    "fct_latest_prices",
    metadata,
    Column("symbol", Text, primary_key=True),
    Column("date", Date),
    Column("close", Float),
    Column("adj_close", Float),
    Column("volume", Float),
    Column("change_1d", Float),
    Column("return_1d", Float),
    schema="marts",
)

fct_sector_daily = Table(
    "fct_sector_daily",
    metadata,
    Column("sector", Text, primary_key=True),
    Column("date", Date, primary_key=True),
    Column("symbols_count", BigInteger),
    Column("mean_return_1d", Float),
    Column("advancers_share", Float),
    Column("total_market_cap", Float),
    schema="marts",
)

# The indicators the API shows, in the order it shows them: the features the model's yml marks served.
INDICATOR_COLUMNS = served_features()

fct_stock_features = Table(
    "fct_stock_features",
    metadata,
    Column("symbol", Text, primary_key=True),
    Column("date", Date, primary_key=True),
    *(Column(name, Float) for name in INDICATOR_COLUMNS),
    schema="marts",
)
