"""Every table the application owns, declared once: the raw layer the ingestion assets load, the products
the product assets write and the API serves, the API's own accounts (app), and the ops records of the
platform's own runs (ops). dbt owns the rest of the warehouse (staging to marts) and never touches these.

The writers' column lists and the API's products tables come from here; the migrations under
`stockyard/db/migrations` build exactly this (tests/stockyard/test_migrations.py checks it). A change here
needs a new migration revision.

Every row of the products says where it came from: the model name and version that made it, the data date
it was made on, and data_source ('synthetic' when the sample provider produced the prices, else the
provider). Constraint names are PostgreSQL's own defaults, as the tables had when plain DDL created them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, INET, JSONB

RAW_SCHEMA = "raw"
PRODUCTS_SCHEMA = "products"
OPS_SCHEMA = "ops"
APP_SCHEMA = "app"
SCHEMAS = (RAW_SCHEMA, PRODUCTS_SCHEMA, OPS_SCHEMA, APP_SCHEMA)

metadata = MetaData(
    naming_convention={"pk": "%(table_name)s_pkey", "fk": "%(table_name)s_%(column_0_name)s_fkey"}
)


def loaded_at() -> Column[datetime]:
    # now() is the start of the loading transaction: one timestamp for every row of a load.
    return Column("loaded_at", DateTime(timezone=True), nullable=False, server_default=func.now())


def created_at() -> Column[datetime]:
    return Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now())


# --- raw: what providers returned, validated, loaded by the ingestion assets; dbt reads it as a source -----

raw_daily_prices = Table(
    "daily_prices",
    metadata,
    Column("symbol", Text, primary_key=True),
    Column("date", Date, primary_key=True),
    Column("open", Double, nullable=False),
    Column("high", Double, nullable=False),
    Column("low", Double, nullable=False),
    Column("close", Double, nullable=False),
    Column("volume", BigInteger, nullable=False),
    Column("provider", Text, nullable=False),
    loaded_at(),
    Index("daily_prices_date_idx", "date"),
    schema=RAW_SCHEMA,
)

raw_corporate_actions = Table(
    "corporate_actions",
    metadata,
    Column("symbol", Text, primary_key=True),
    Column("ex_date", Date, primary_key=True),
    Column(
        "split_ratio",
        Double,
        nullable=False,
        server_default=text("1.0"),
        comment="New shares per old share: 4.0 for a 4-for-1 split, 1.0 when there is no split.",
    ),
    Column("cash_dividend", Double, nullable=False, server_default=text("0.0")),
    Column("provider", Text, nullable=False),
    loaded_at(),
    Index("corporate_actions_ex_date_idx", "ex_date"),
    schema=RAW_SCHEMA,
)

raw_stocks = Table(
    "stocks",
    metadata,
    Column("symbol", Text, primary_key=True),
    Column("name", Text),
    Column("sector", Text),
    Column("industry", Text),
    Column("market_cap", Double),
    Column("currency", Text),
    Column("exchange", Text),
    Column("provider", Text, nullable=False),
    Column("is_synthetic", Boolean, nullable=False),
    loaded_at(),
    Column(
        "sector_as_given",
        Text,
        comment="The sector as the provider wrote it, before it was mapped to today's GICS name.",
    ),
    schema=RAW_SCHEMA,
)

raw_quarantined_rows = Table(
    "quarantined_rows",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("dataset", Text, nullable=False),
    Column("partition_key", Text, nullable=False),
    Column("provider", Text, nullable=False),
    Column("symbol", Text),
    Column("date", Date),
    Column("source", Text),
    Column("source_row", Integer),
    Column("rule", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Column("record", JSONB),
    loaded_at(),
    Index("quarantined_rows_dataset_date_idx", "dataset", "date"),
    comment="Rows set aside on the way in, with the rule they broke; nothing a provider returned is "
    "silently dropped.",
    schema=RAW_SCHEMA,
)

# --- products: what the product assets write (orchestration/products) and the API serves (serving/) -------

model_versions = Table(
    "model_versions",
    metadata,
    Column("model_name", Text, primary_key=True),
    Column("family", Text, nullable=False),
    Column("version", Text, primary_key=True),
    Column(
        "alias",
        Text,
        CheckConstraint("alias in ('champion', 'challenger')", name="model_versions_alias_check"),
        comment="'champion', 'challenger', or null once a newer version took the alias.",
    ),
    Column("run_id", Text, nullable=False),
    Column("run_url", Text, nullable=False),
    Column("evaluation_start", Date, nullable=False),
    Column("evaluation_end", Date, nullable=False),
    Column(
        "metrics",
        JSONB,
        nullable=False,
        comment="The same names for every family: ic, rank_ic, icir, rank_icir, hit_rate, "
        "top_decile_return, ...",
    ),
    Column("promotion_reason", Text, nullable=False),
    Column("dataset_fingerprint", Text, nullable=False),
    Column("data_source", Text, nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("model_versions_alias_idx", "model_name", "alias", unique=True),
    comment="The registered model versions the products were made with, and their walk-forward metrics; "
    "the API's models endpoint reads this table, never MLflow at request time.",
    schema=PRODUCTS_SCHEMA,
)

recommendations = Table(
    "recommendations",
    metadata,
    Column("date", Date, primary_key=True),
    Column("symbol", Text, primary_key=True),
    Column("score", Double, nullable=False),
    Column("rank", Integer, nullable=False, comment="1 is the best; contiguous within a date."),
    Column(
        "percentile",
        Double,
        nullable=False,
        comment="Share of the date's symbols scored at or below this one, in (0, 1].",
    ),
    Column("expected_excess_return", Double, nullable=False),
    Column("confidence", Double, nullable=False),
    Column(
        "action",
        Text,
        CheckConstraint("action in ('buy', 'hold', 'sell')", name="recommendations_action_check"),
        nullable=False,
    ),
    Column(
        "top_contributions",
        JSONB,
        nullable=False,
        comment='[{"feature": "rsi_14", "value": 71.2, "contribution": 0.0013}, ...], largest '
        "|contribution| first.",
    ),
    Column("model_name", Text, nullable=False),
    Column("model_version", Text, nullable=False),
    Column("data_date", Date, nullable=False),
    Column("data_source", Text, nullable=False),
    created_at(),
    Index("recommendations_symbol_date_idx", "symbol", "date"),
    Index("recommendations_date_rank_idx", "date", "rank"),
    comment="Daily recommendations, one row per symbol per date; re-running a date replaces its rows.",
    schema=PRODUCTS_SCHEMA,
)

forecasts = Table(
    "forecasts",
    metadata,
    Column("data_date", Date, primary_key=True),
    Column("symbol", Text, primary_key=True),
    Column("target_date", Date, primary_key=True),
    Column("step", Integer, nullable=False, comment="Trading days ahead of data_date, 1..horizon."),
    Column("predicted_close", Double, nullable=False),
    Column("lower_close", Double, nullable=False),
    Column("upper_close", Double, nullable=False),
    Column("interval_width", Double, nullable=False),
    Column("model_name", Text, nullable=False),
    Column("model_version", Text, nullable=False),
    Column("data_source", Text, nullable=False),
    created_at(),
    Index("forecasts_symbol_data_date_idx", "symbol", "data_date"),
    comment="Prophet's forecast of the close for the next trading days, with its interval; one row per "
    "forecast target date of each symbol, per data date the forecast was made on.",
    schema=PRODUCTS_SCHEMA,
)

# The backtest's metrics, in the order of stockyard.analytics.backtest.BacktestMetrics: columns for the API.
BACKTEST_METRICS = (
    "annual_return",
    "annual_volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "turnover",
    "hit_rate",
    "benchmark_annual_return",
    "excess_annual_return",
)

backtests = Table(
    "backtests",
    metadata,
    Column("backtest_id", BigInteger, primary_key=True),
    Column("model_name", Text, nullable=False),
    Column("model_version", Text, nullable=False),
    Column("run_id", Text, nullable=False),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date, nullable=False),
    Column("top_k", Integer, nullable=False),
    Column("rebalance_days", Integer, nullable=False),
    Column("cost_bps", Double, nullable=False),
    *(Column(name, Double, nullable=False) for name in BACKTEST_METRICS),
    Column("data_date", Date, nullable=False),
    Column("data_source", Text, nullable=False),
    created_at(),
    Index("backtests_model_idx", "model_name", "model_version", "created_at"),
    comment="Backtests of the top-k strategy on a model version's scores; metrics as columns for the API.",
    schema=PRODUCTS_SCHEMA,
)

backtest_equity = Table(
    "backtest_equity",
    metadata,
    Column(
        "backtest_id",
        BigInteger,
        ForeignKey(backtests.c.backtest_id, ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("date", Date, primary_key=True),
    Column("strategy_value", Double, nullable=False),
    Column("benchmark_value", Double, nullable=False),
    comment="The daily values of a backtest's strategy and benchmark (both start at 1.0).",
    schema=PRODUCTS_SCHEMA,
)

backtest_positions = Table(
    "backtest_positions",
    metadata,
    Column(
        "backtest_id",
        BigInteger,
        ForeignKey(backtests.c.backtest_id, ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("rebalance_date", Date, primary_key=True),
    Column("symbol", Text, primary_key=True),
    Column("weight", Double, nullable=False),
    Index("backtest_positions_symbol_idx", "symbol", "backtest_id"),
    comment="What the backtest held after each rebalance, for a stock's backtest context.",
    schema=PRODUCTS_SCHEMA,
)

signal_health = Table(
    "signal_health",
    metadata,
    Column("date", Date, nullable=False),
    Column("model_name", Text, nullable=False),
    Column(
        "model_version", Text, nullable=False, comment="The version that made that date's recommendations."
    ),
    Column("horizon_days", Integer, nullable=False),
    Column("realized_rank_ic", Double),
    Column("top_decile_return", Double),
    Column("rolling_rank_ic", Double),
    Column("symbols", Integer, nullable=False),
    Column("data_source", Text, nullable=False),
    PrimaryKeyConstraint("model_name", "date"),
    comment="Realized signal health: per recommendation date whose horizon has passed, how the scores did.",
    schema=PRODUCTS_SCHEMA,
)


# --- ops: what an operator looks at when the platform runs itself -------------------------------------------

run_failures = Table(
    "run_failures",
    metadata,
    Column("run_id", Text, primary_key=True),
    Column("job_name", Text, nullable=False),
    Column("failed_at", DateTime(timezone=True), nullable=False),
    Column("error", Text, nullable=False),
    Column(
        "step_keys",
        ARRAY(Text),
        nullable=False,
        server_default=text("'{}'"),
        comment="The steps that failed; empty when the run failed before any step (a launch error).",
    ),
    Column("recorded_at", DateTime(timezone=True), server_default=func.now()),
    comment="Dagster runs that failed, recorded by the run-failure sensor (orchestration.automation).",
    schema=OPS_SCHEMA,
)


# --- app: the API's accounts, what their owners made, and the audit trail (serving/) ----------------------

ROLES = ("user", "admin")
TRANSACTION_KINDS = ("buy", "sell", "dividend", "cash_in", "cash_out")
AUDIT_RESULTS = ("success", "denied", "failed")


def one_of(column: str, values: tuple[str, ...]) -> str:
    """A check constraint's text: `column` is one of `values`."""
    return f"{column} in ({', '.join(repr(value) for value in values)})"


users = Table(
    "users",
    metadata,
    Column("user_id", BigInteger, primary_key=True),
    Column("email", Text, nullable=False, comment="Lower-cased; how the user signs in."),
    Column("password_hash", Text, nullable=False, comment="argon2id, with its parameters (PHC string)."),
    Column("display_name", Text),
    Column(
        "role",
        Text,
        CheckConstraint(one_of("role", ROLES), name="users_role_check"),
        nullable=False,
        server_default=text("'user'"),
    ),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    Column("password_changed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    created_at(),
    UniqueConstraint("email", name="users_email_key"),
    comment="API accounts. Deleting one removes every row of the user (foreign keys cascade) and "
    "pseudonymizes its audit entries (app.pseudonymize_audit_log).",
    schema=APP_SCHEMA,
)


def user_reference(*, nullable: bool = False) -> Column[int]:
    """The owning user: rows go with the user when the account is deleted (GDPR erasure)."""
    return Column("user_id", BigInteger, ForeignKey(users.c.user_id, ondelete="CASCADE"), nullable=nullable)


refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column(
        "token_hash", Text, primary_key=True, comment="SHA-256 of the token: the token itself is not kept."
    ),
    user_reference(),
    Column(
        "family_id",
        Uuid,
        nullable=False,
        comment="The tokens rotated from one sign-in; reusing a rotated token revokes them all.",
    ),
    Column("issued_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("rotated_at", DateTime(timezone=True), comment="When it was exchanged for its successor."),
    Column("revoked_at", DateTime(timezone=True)),
    Index("refresh_tokens_user_id_idx", "user_id"),
    Index("refresh_tokens_family_id_idx", "family_id"),
    schema=APP_SCHEMA,
)

portfolios = Table(
    "portfolios",
    metadata,
    Column("portfolio_id", BigInteger, primary_key=True),
    user_reference(),
    Column("name", Text, nullable=False),
    Column(
        "version",
        Integer,
        nullable=False,
        server_default=text("1"),
        comment="Bumped by every change of the portfolio or its transactions: part of its analytics' "
        "cache key.",
    ),
    created_at(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("user_id", "name", name="portfolios_user_id_name_key"),
    schema=APP_SCHEMA,
)

transactions = Table(
    "transactions",
    metadata,
    Column("transaction_id", BigInteger, primary_key=True),
    Column(
        "portfolio_id",
        BigInteger,
        ForeignKey(portfolios.c.portfolio_id, ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "kind",
        Text,
        CheckConstraint(one_of("kind", TRANSACTION_KINDS), name="transactions_kind_check"),
        nullable=False,
    ),
    Column("trade_date", Date, nullable=False),
    Column("symbol", Text, comment="Null for cash in and out."),
    Column("quantity", Double, comment="Shares bought or sold, as traded (no split applied)."),
    Column("price", Double, comment="Per share, as traded."),
    Column("amount", Double, comment="The cash of a dividend, a cash in or a cash out."),
    Column("fees", Double, nullable=False, server_default=text("0.0")),
    Column("note", Text),
    created_at(),
    CheckConstraint(
        "(kind in ('buy', 'sell') and symbol is not null and quantity > 0 and price > 0"
        " and amount is null)"
        " or (kind = 'dividend' and symbol is not null and amount > 0 and quantity is null"
        " and price is null)"
        " or (kind in ('cash_in', 'cash_out') and symbol is null and amount > 0 and quantity is null"
        " and price is null)",
        name="transactions_shape_check",
    ),
    CheckConstraint("fees >= 0", name="transactions_fees_check"),
    Index("transactions_portfolio_id_trade_date_idx", "portfolio_id", "trade_date"),
    schema=APP_SCHEMA,
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("audit_id", BigInteger, primary_key=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column(
        "user_id",
        BigInteger,
        comment="Who acted (no foreign key: entries outlive the account); null once pseudonymized.",
    ),
    Column(
        "pseudonym",
        Uuid,
        comment="Stands for a deleted user: the same for all of its entries, linked to nothing else.",
    ),
    Column("action", Text, nullable=False, comment="'auth.login', 'portfolio.create', ..."),
    Column("target", Text, comment="What was acted on: 'portfolio:12', 'user:3'."),
    Column(
        "result",
        Text,
        CheckConstraint(one_of("result", AUDIT_RESULTS), name="audit_log_result_check"),
        nullable=False,
    ),
    Column("client_ip", INET),
    Column("user_agent", Text),
    Column("request_id", Text),
    Column("detail", JSONB),
    Index("audit_log_occurred_at_idx", "occurred_at"),
    Index("audit_log_user_id_idx", "user_id", "occurred_at"),
    comment="Every authentication event and every write, append-only: the API's role may insert and read, "
    "never update or delete.",
    schema=APP_SCHEMA,
)


symbol_overrides = Table(
    "symbol_overrides",
    metadata,
    Column("symbol", Text, primary_key=True),
    Column(
        "tracked",
        Boolean,
        nullable=False,
        comment="True: added to the provider's universe; false: retired (not fetched, its history kept).",
    ),
    Column(
        "changed_by",
        BigInteger,
        ForeignKey(users.c.user_id, ondelete="SET NULL"),
        comment="The admin who last changed it; null once that account is deleted (the audit log keeps who).",
    ),
    Column("changed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    comment="The admins' changes to the tracked symbols, applied by the ingestion to its provider's universe "
    "(stockyard.universe).",
    schema=APP_SCHEMA,
)


# --- app: watchlists, saved screens and alerts, and the hits their evaluation found (stockyard.screens) -----

ALERT_KINDS = ("price_above", "price_below", "enters_top")

watchlists = Table(
    "watchlists",
    metadata,
    Column("watchlist_id", BigInteger, primary_key=True),
    user_reference(),
    Column("name", Text, nullable=False),
    created_at(),
    UniqueConstraint("user_id", "name", name="watchlists_user_id_name_key"),
    schema=APP_SCHEMA,
)

watchlist_items = Table(
    "watchlist_items",
    metadata,
    Column(
        "watchlist_id",
        BigInteger,
        ForeignKey(watchlists.c.watchlist_id, ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("symbol", Text, primary_key=True),
    Column("added_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    schema=APP_SCHEMA,
)

screens = Table(
    "screens",
    metadata,
    Column("screen_id", BigInteger, primary_key=True),
    user_reference(),
    Column("name", Text, nullable=False),
    Column(
        "conditions",
        JSONB,
        nullable=False,
        comment='[{"field": "rsi_14", "op": "<", "value": 30}, ...], all of which a symbol meets; validated '
        "against the known fields and operators (stockyard.screens) before it is stored.",
    ),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    created_at(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("user_id", "name", name="screens_user_id_name_key"),
    schema=APP_SCHEMA,
)

alerts = Table(
    "alerts",
    metadata,
    Column("alert_id", BigInteger, primary_key=True),
    user_reference(),
    Column(
        "kind",
        Text,
        CheckConstraint(one_of("kind", ALERT_KINDS), name="alerts_kind_check"),
        nullable=False,
    ),
    Column("symbol", Text, nullable=False),
    Column("level", Double, comment="The close a price alert watches for crossing."),
    Column("top_n", Integer, comment="The rank an enters_top alert watches for the symbol entering."),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    created_at(),
    CheckConstraint(
        "(kind in ('price_above', 'price_below') and level > 0 and top_n is null)"
        " or (kind = 'enters_top' and top_n >= 1 and level is null)",
        name="alerts_shape_check",
    ),
    Index("alerts_user_id_idx", "user_id"),
    schema=APP_SCHEMA,
)

hits = Table(
    "hits",
    metadata,
    Column("hit_id", BigInteger, primary_key=True),
    user_reference(),
    Column("screen_id", BigInteger, ForeignKey(screens.c.screen_id, ondelete="CASCADE")),
    Column("alert_id", BigInteger, ForeignKey(alerts.c.alert_id, ondelete="CASCADE")),
    Column("data_date", Date, nullable=False),
    Column("symbol", Text, nullable=False),
    Column("detail", JSONB, nullable=False, comment="The values that met the screen or set off the alert."),
    created_at(),
    CheckConstraint("(screen_id is null) <> (alert_id is null)", name="hits_source_check"),
    # Evaluating a data date again finds the same hits: stored (and pushed) once.
    UniqueConstraint(
        "screen_id",
        "alert_id",
        "data_date",
        "symbol",
        name="hits_screen_id_alert_id_data_date_symbol_key",
        postgresql_nulls_not_distinct=True,
    ),
    Index("hits_user_id_idx", "user_id", "hit_id"),
    comment="What a screen or an alert of a user found on a data date; written by the alert_hits asset, "
    "pushed to its owner over the websocket.",
    schema=APP_SCHEMA,
)


def written_columns(
    table: Table, *, leaving: tuple[str, ...] = ("loaded_at", "created_at")
) -> tuple[str, ...]:
    """The columns of `table` a writer fills, in table order: all but those `leaving` to their defaults."""
    return tuple(column.name for column in table.columns if column.name not in leaving)
