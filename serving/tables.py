"""The warehouse tables the API reads: dbt's marts and the products Dagster writes (only the columns used).

Declared rather than reflected, so the app starts without a round trip and a renamed column fails the tests.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    MetaData,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

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

model_versions = Table(
    "model_versions",
    metadata,
    Column("model_name", Text, primary_key=True),
    Column("family", Text),
    Column("version", Text, primary_key=True),
    Column("alias", Text),
    Column("run_id", Text),
    Column("run_url", Text),
    Column("evaluation_start", Date),
    Column("evaluation_end", Date),
    Column("metrics", JSONB),
    Column("promotion_reason", Text),
    Column("data_source", Text),
    Column("registered_at", DateTime(timezone=True)),
    schema="products",
)

recommendations = Table(
    "recommendations",
    metadata,
    Column("date", Date, primary_key=True),
    Column("symbol", Text, primary_key=True),
    Column("score", Float),
    Column("rank", Integer),
    Column("percentile", Float),
    Column("expected_excess_return", Float),
    Column("confidence", Float),
    Column("action", Text),
    Column("top_contributions", JSONB),
    Column("model_name", Text),
    Column("model_version", Text),
    Column("data_date", Date),
    Column("data_source", Text),
    schema="products",
)

forecasts = Table(
    "forecasts",
    metadata,
    Column("data_date", Date, primary_key=True),
    Column("symbol", Text, primary_key=True),
    Column("target_date", Date, primary_key=True),
    Column("step", Integer),
    Column("predicted_close", Float),
    Column("lower_close", Float),
    Column("upper_close", Float),
    Column("interval_width", Float),
    Column("model_name", Text),
    Column("model_version", Text),
    Column("data_source", Text),
    schema="products",
)

backtests = Table(
    "backtests",
    metadata,
    Column("backtest_id", BigInteger, primary_key=True),
    Column("model_name", Text),
    Column("model_version", Text),
    Column("run_id", Text),
    Column("start_date", Date),
    Column("end_date", Date),
    Column("top_k", Integer),
    Column("rebalance_days", Integer),
    Column("cost_bps", Float),
    Column("annual_return", Float),
    Column("annual_volatility", Float),
    Column("sharpe", Float),
    Column("sortino", Float),
    Column("max_drawdown", Float),
    Column("calmar", Float),
    Column("turnover", Float),
    Column("hit_rate", Float),
    Column("benchmark_annual_return", Float),
    Column("excess_annual_return", Float),
    Column("data_date", Date),
    Column("created_at", DateTime(timezone=True)),
    schema="products",
)

backtest_positions = Table(
    "backtest_positions",
    metadata,
    Column("backtest_id", BigInteger, primary_key=True),
    Column("rebalance_date", Date, primary_key=True),
    Column("symbol", Text, primary_key=True),
    Column("weight", Float),
    schema="products",
)
