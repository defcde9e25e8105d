"""The raw and products schemas as the plain DDL (raw_schema.sql, products_schema.sql) created them.

Every statement is "if not exists": a database those files created is taken over as it is.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _loaded_at() -> sa.Column[datetime]:
    return sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def _created_at() -> sa.Column[datetime]:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def _backtest_id_reference() -> sa.Column[int]:
    return sa.Column(
        "backtest_id",
        sa.BigInteger,
        sa.ForeignKey("products.backtests.backtest_id", ondelete="CASCADE"),
        nullable=False,
    )


def _index(name: str, table: str, columns: list[str], *, unique: bool = False) -> None:
    schema, table_name = table.split(".")
    op.create_index(name, table_name, columns, schema=schema, unique=unique, if_not_exists=True)


def upgrade() -> None:
    op.execute("create schema if not exists raw")
    op.execute("create schema if not exists products")

    op.create_table(
        "daily_prices",
        sa.Column("symbol", sa.Text, nullable=False),
        sa.Column("date", sa.Date, nullable=False),
        sa.Column("open", sa.Double, nullable=False),
        sa.Column("high", sa.Double, nullable=False),
        sa.Column("low", sa.Double, nullable=False),
        sa.Column("close", sa.Double, nullable=False),
        sa.Column("volume", sa.BigInteger, nullable=False),
        sa.Column("provider", sa.Text, nullable=False),
        _loaded_at(),
        sa.PrimaryKeyConstraint("symbol", "date", name="daily_prices_pkey"),
        schema="raw",
        if_not_exists=True,
    )
    _index("daily_prices_date_idx", "raw.daily_prices", ["date"])

    op.create_table(
        "corporate_actions",
        sa.Column("symbol", sa.Text, nullable=False),
        sa.Column("ex_date", sa.Date, nullable=False),
        sa.Column(
            "split_ratio",
            sa.Double,
            nullable=False,
            server_default=sa.text("1.0"),
            comment="New shares per old share: 4.0 for a 4-for-1 split, 1.0 when there is no split.",
        ),
        sa.Column("cash_dividend", sa.Double, nullable=False, server_default=sa.text("0.0")),
        sa.Column("provider", sa.Text, nullable=False),
        _loaded_at(),
        sa.PrimaryKeyConstraint("symbol", "ex_date", name="corporate_actions_pkey"),
        schema="raw",
        if_not_exists=True,
    )
    _index("corporate_actions_ex_date_idx", "raw.corporate_actions", ["ex_date"])

    op.create_table(
        "stocks",
        sa.Column("symbol", sa.Text, nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("sector", sa.Text),
        sa.Column("industry", sa.Text),
        sa.Column("market_cap", sa.Double),
        sa.Column("currency", sa.Text),
        sa.Column("exchange", sa.Text),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("is_synthetic", sa.Boolean, nullable=False),
        _loaded_at(),
        sa.PrimaryKeyConstraint("symbol", name="stocks_pkey"),
        schema="raw",
        if_not_exists=True,
    )

    op.create_table(
        "quarantined_rows",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("dataset", sa.Text, nullable=False),
        sa.Column("partition_key", sa.Text, nullable=False),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("symbol", sa.Text),
        sa.Column("date", sa.Date),
        sa.Column("source", sa.Text),
        sa.Column("source_row", sa.Integer),
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("record", JSONB),
        _loaded_at(),
        sa.PrimaryKeyConstraint("id", name="quarantined_rows_pkey"),
        comment="Rows set aside on the way in, with the rule they broke; nothing a provider returned is "
        "silently dropped.",
        schema="raw",
        if_not_exists=True,
    )
    _index("quarantined_rows_dataset_date_idx", "raw.quarantined_rows", ["dataset", "date"])

    op.create_table(
        "model_versions",
        sa.Column("model_name", sa.Text, nullable=False),
        sa.Column("family", sa.Text, nullable=False),
        sa.Column("version", sa.Text, nullable=False),
        sa.Column(
            "alias",
            sa.Text,
            sa.CheckConstraint("alias in ('champion', 'challenger')", name="model_versions_alias_check"),
            comment="'champion', 'challenger', or null once a newer version took the alias.",
        ),
        sa.Column("run_id", sa.Text, nullable=False),
        sa.Column("run_url", sa.Text, nullable=False),
        sa.Column("evaluation_start", sa.Date, nullable=False),
        sa.Column("evaluation_end", sa.Date, nullable=False),
        sa.Column(
            "metrics",
            JSONB,
            nullable=False,
            comment="The same names for every family: ic, rank_ic, icir, rank_icir, hit_rate, "
            "top_decile_return, ...",
        ),
        sa.Column("promotion_reason", sa.Text, nullable=False),
        sa.Column("dataset_fingerprint", sa.Text, nullable=False),
        sa.Column("data_source", sa.Text, nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("model_name", "version", name="model_versions_pkey"),
        comment="The registered model versions the products were made with, and their walk-forward "
        "metrics; the API's models endpoint reads this table, never MLflow at request time.",
        schema="products",
        if_not_exists=True,
    )
    _index("model_versions_alias_idx", "products.model_versions", ["model_name", "alias"], unique=True)

    op.create_table(
        "recommendations",
        sa.Column("date", sa.Date, nullable=False),
        sa.Column("symbol", sa.Text, nullable=False),
        sa.Column("score", sa.Double, nullable=False),
        sa.Column("rank", sa.Integer, nullable=False, comment="1 is the best; contiguous within a date."),
        sa.Column(
            "percentile",
            sa.Double,
            nullable=False,
            comment="Share of the date's symbols scored at or below this one, in (0, 1].",
        ),
        sa.Column("expected_excess_return", sa.Double, nullable=False),
        sa.Column("confidence", sa.Double, nullable=False),
        sa.Column(
            "action",
            sa.Text,
            sa.CheckConstraint("action in ('buy', 'hold', 'sell')", name="recommendations_action_check"),
            nullable=False,
        ),
        sa.Column(
            "top_contributions",
            JSONB,
            nullable=False,
            comment='[{"feature": "rsi_14", "value": 71.2, "contribution": 0.0013}, ...], largest '
            "|contribution| first.",
        ),
        sa.Column("model_name", sa.Text, nullable=False),
        sa.Column("model_version", sa.Text, nullable=False),
        sa.Column("data_date", sa.Date, nullable=False),
        sa.Column("data_source", sa.Text, nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("date", "symbol", name="recommendations_pkey"),
        comment="Daily recommendations, one row per symbol per date; re-running a date replaces its rows.",
        schema="products",
        if_not_exists=True,
    )
    _index("recommendations_symbol_date_idx", "products.recommendations", ["symbol", "date"])
    _index("recommendations_date_rank_idx", "products.recommendations", ["date", "rank"])

    op.create_table(
        "forecasts",
        sa.Column("data_date", sa.Date, nullable=False),
        sa.Column("symbol", sa.Text, nullable=False),
        sa.Column("target_date", sa.Date, nullable=False),
        sa.Column("step", sa.Integer, nullable=False, comment="Trading days ahead of data_date, 1..horizon."),
        sa.Column("predicted_close", sa.Double, nullable=False),
        sa.Column("lower_close", sa.Double, nullable=False),
        sa.Column("upper_close", sa.Double, nullable=False),
        sa.Column("interval_width", sa.Double, nullable=False),
        sa.Column("model_name", sa.Text, nullable=False),
        sa.Column("model_version", sa.Text, nullable=False),
        sa.Column("data_source", sa.Text, nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("data_date", "symbol", "target_date", name="forecasts_pkey"),
        comment="Prophet's forecast of the close for the next trading days, with its interval; one row per "
        "forecast target date of each symbol, per data date the forecast was made on.",
        schema="products",
        if_not_exists=True,
    )
    _index("forecasts_symbol_data_date_idx", "products.forecasts", ["symbol", "data_date"])

    op.create_table(
        "backtests",
        sa.Column("backtest_id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.Text, nullable=False),
        sa.Column("model_version", sa.Text, nullable=False),
        sa.Column("run_id", sa.Text, nullable=False),
        sa.Column("start_date", sa.Date, nullable=False),
        sa.Column("end_date", sa.Date, nullable=False),
        sa.Column("top_k", sa.Integer, nullable=False),
        sa.Column("rebalance_days", sa.Integer, nullable=False),
        sa.Column("cost_bps", sa.Double, nullable=False),
        sa.Column("annual_return", sa.Double, nullable=False),
        sa.Column("annual_volatility", sa.Double, nullable=False),
        sa.Column("sharpe", sa.Double, nullable=False),
        sa.Column("sortino", sa.Double, nullable=False),
        sa.Column("max_drawdown", sa.Double, nullable=False),
        sa.Column("calmar", sa.Double, nullable=False),
        sa.Column("turnover", sa.Double, nullable=False),
        sa.Column("hit_rate", sa.Double, nullable=False),
        sa.Column("benchmark_annual_return", sa.Double, nullable=False),
        sa.Column("excess_annual_return", sa.Double, nullable=False),
        sa.Column("data_date", sa.Date, nullable=False),
        sa.Column("data_source", sa.Text, nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("backtest_id", name="backtests_pkey"),
        comment="Backtests of the top-k strategy on a model version's scores; metrics as columns for the "
        "API.",
        schema="products",
        if_not_exists=True,
    )
    _index("backtests_model_idx", "products.backtests", ["model_name", "model_version", "created_at"])

    op.create_table(
        "backtest_equity",
        _backtest_id_reference(),
        sa.Column("date", sa.Date, nullable=False),
        sa.Column("strategy_value", sa.Double, nullable=False),
        sa.Column("benchmark_value", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("backtest_id", "date", name="backtest_equity_pkey"),
        comment="The daily values of a backtest's strategy and benchmark (both start at 1.0).",
        schema="products",
        if_not_exists=True,
    )

    op.create_table(
        "backtest_positions",
        _backtest_id_reference(),
        sa.Column("rebalance_date", sa.Date, nullable=False),
        sa.Column("symbol", sa.Text, nullable=False),
        sa.Column("weight", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("backtest_id", "rebalance_date", "symbol", name="backtest_positions_pkey"),
        comment="What the backtest held after each rebalance, for a stock's backtest context.",
        schema="products",
        if_not_exists=True,
    )
    _index("backtest_positions_symbol_idx", "products.backtest_positions", ["symbol", "backtest_id"])

    op.create_table(
        "signal_health",
        sa.Column("date", sa.Date, nullable=False),
        sa.Column("model_name", sa.Text, nullable=False),
        sa.Column(
            "model_version",
            sa.Text,
            nullable=False,
            comment="The version that made that date's recommendations.",
        ),
        sa.Column("horizon_days", sa.Integer, nullable=False),
        sa.Column("realized_rank_ic", sa.Double),
        sa.Column("top_decile_return", sa.Double),
        sa.Column("rolling_rank_ic", sa.Double),
        sa.Column("symbols", sa.Integer, nullable=False),
        sa.Column("data_source", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("model_name", "date", name="signal_health_pkey"),
        comment="Realized signal health: per recommendation date whose horizon has passed, how the scores "
        "did.",
        schema="products",
        if_not_exists=True,
    )


def downgrade() -> None:
    op.execute("drop schema products cascade")
    op.execute("drop schema raw cascade")
