"""The app schema: the API's users, refresh tokens, portfolios, transactions and the append-only audit log.

The audit log is never updated by the API's role; erasing a user pseudonymizes its entries through
app.pseudonymize_audit_log, a function that runs as the tables' owner (security definer), the one update the
role may cause.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import INET, JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMA = "app"


def _created_at() -> sa.Column[datetime]:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def _user_id() -> sa.Column[int]:
    return sa.Column(
        "user_id", sa.BigInteger, sa.ForeignKey("app.users.user_id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    op.execute(f"create schema if not exists {SCHEMA}")

    op.create_table(
        "users",
        sa.Column("user_id", sa.BigInteger, primary_key=True),
        sa.Column("email", sa.Text, nullable=False, comment="Lower-cased; how the user signs in."),
        sa.Column(
            "password_hash",
            sa.Text,
            nullable=False,
            comment="argon2id, with its parameters (PHC string).",
        ),
        sa.Column("display_name", sa.Text),
        sa.Column(
            "role",
            sa.Text,
            sa.CheckConstraint("role in ('user', 'admin')", name="users_role_check"),
            nullable=False,
            server_default=sa.text("'user'"),
        ),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column(
            "password_changed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        _created_at(),
        sa.PrimaryKeyConstraint("user_id", name="users_pkey"),
        sa.UniqueConstraint("email", name="users_email_key"),
        comment="API accounts. Deleting one removes every row of the user (foreign keys cascade) and "
        "pseudonymizes its audit entries (app.pseudonymize_audit_log).",
        schema=SCHEMA,
    )

    op.create_table(
        "refresh_tokens",
        sa.Column(
            "token_hash",
            sa.Text,
            nullable=False,
            comment="SHA-256 of the token: the token itself is not kept.",
        ),
        _user_id(),
        sa.Column(
            "family_id",
            sa.Uuid,
            nullable=False,
            comment="The tokens rotated from one sign-in; reusing a rotated token revokes them all.",
        ),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "rotated_at", sa.DateTime(timezone=True), comment="When it was exchanged for its successor."
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("token_hash", name="refresh_tokens_pkey"),
        schema=SCHEMA,
    )
    op.create_index("refresh_tokens_user_id_idx", "refresh_tokens", ["user_id"], schema=SCHEMA)
    op.create_index("refresh_tokens_family_id_idx", "refresh_tokens", ["family_id"], schema=SCHEMA)

    op.create_table(
        "portfolios",
        sa.Column("portfolio_id", sa.BigInteger, primary_key=True),
        _user_id(),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column(
            "version",
            sa.Integer,
            nullable=False,
            server_default=sa.text("1"),
            comment="Bumped by every change of the portfolio or its transactions: part of its analytics' "
            "cache key.",
        ),
        _created_at(),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("portfolio_id", name="portfolios_pkey"),
        sa.UniqueConstraint("user_id", "name", name="portfolios_user_id_name_key"),
        schema=SCHEMA,
    )

    op.create_table(
        "transactions",
        sa.Column("transaction_id", sa.BigInteger, primary_key=True),
        sa.Column(
            "portfolio_id",
            sa.BigInteger,
            sa.ForeignKey("app.portfolios.portfolio_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "kind",
            sa.Text,
            sa.CheckConstraint(
                "kind in ('buy', 'sell', 'dividend', 'cash_in', 'cash_out')", name="transactions_kind_check"
            ),
            nullable=False,
        ),
        sa.Column("trade_date", sa.Date, nullable=False),
        sa.Column("symbol", sa.Text, comment="Null for cash in and out."),
        sa.Column("quantity", sa.Double, comment="Shares bought or sold, as traded (no split applied)."),
        sa.Column("price", sa.Double, comment="Per share, as traded."),
        sa.Column("amount", sa.Double, comment="The cash of a dividend, a cash in or a cash out."),
        sa.Column("fees", sa.Double, nullable=False, server_default=sa.text("0.0")),
        sa.Column("note", sa.Text),
        _created_at(),
        sa.PrimaryKeyConstraint("transaction_id", name="transactions_pkey"),
        sa.CheckConstraint(
            "(kind in ('buy', 'sell') and symbol is not null and quantity > 0 and price > 0"
            " and amount is null)"
            " or (kind = 'dividend' and symbol is not null and amount > 0 and quantity is null"
            " and price is null)"
            " or (kind in ('cash_in', 'cash_out') and symbol is null and amount > 0 and quantity is null"
            " and price is null)",
            name="transactions_shape_check",
        ),
        sa.CheckConstraint("fees >= 0", name="transactions_fees_check"),
        schema=SCHEMA,
    )
    op.create_index(
        "transactions_portfolio_id_trade_date_idx",
        "transactions",
        ["portfolio_id", "trade_date"],
        schema=SCHEMA,
    )

    op.create_table(
        "audit_log",
        sa.Column("audit_id", sa.BigInteger, primary_key=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column(
            "user_id",
            sa.BigInteger,
            comment="Who acted (no foreign key: entries outlive the account); null once pseudonymized.",
        ),
        sa.Column(
            "pseudonym",
            sa.Uuid,
            comment="Stands for a deleted user: the same for all of its entries, linked to nothing else.",
        ),
        sa.Column("action", sa.Text, nullable=False, comment="'auth.login', 'portfolio.create', ..."),
        sa.Column("target", sa.Text, comment="What was acted on: 'portfolio:12', 'user:3'."),
        sa.Column(
            "result",
            sa.Text,
            sa.CheckConstraint("result in ('success', 'denied', 'failed')", name="audit_log_result_check"),
            nullable=False,
        ),
        sa.Column("client_ip", INET),
        sa.Column("user_agent", sa.Text),
        sa.Column("request_id", sa.Text),
        sa.Column("detail", JSONB),
        sa.PrimaryKeyConstraint("audit_id", name="audit_log_pkey"),
        comment="Every authentication event and every write, append-only: the API's role may insert and "
        "read, never update or delete.",
        schema=SCHEMA,
    )
    op.create_index("audit_log_occurred_at_idx", "audit_log", ["occurred_at"], schema=SCHEMA)
    op.create_index("audit_log_user_id_idx", "audit_log", ["user_id", "occurred_at"], schema=SCHEMA)

    # One pseudonym per erased user; the client's address and agent go too (they could name the person).
    op.execute(
        """
        create function app.pseudonymize_audit_log(erased_user_id bigint) returns integer
        language sql security definer set search_path = pg_catalog, app
        as $$
            with stand_in as materialized (select gen_random_uuid() as id),
            erased as (
                update app.audit_log
                set user_id = null, pseudonym = stand_in.id, client_ip = null, user_agent = null
                from stand_in
                where user_id = erased_user_id
                returning 1
            )
            select count(*)::integer from erased
        $$
        """
    )
    op.execute("revoke all on function app.pseudonymize_audit_log(bigint) from public")


def downgrade() -> None:
    op.execute(f"drop schema {SCHEMA} cascade")
