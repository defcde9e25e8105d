"""The app schema's watchlists (and their symbols), saved screens, alerts and the hits the daily evaluation
found; every row goes with its user (ON DELETE CASCADE), like the accounts' own.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
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
    op.create_table(
        "watchlists",
        sa.Column("watchlist_id", sa.BigInteger, primary_key=True),
        _user_id(),
        sa.Column("name", sa.Text, nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("watchlist_id", name="watchlists_pkey"),
        sa.UniqueConstraint("user_id", "name", name="watchlists_user_id_name_key"),
        schema=SCHEMA,
    )
    op.create_table(
        "watchlist_items",
        sa.Column(
            "watchlist_id",
            sa.BigInteger,
            sa.ForeignKey("app.watchlists.watchlist_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("symbol", sa.Text, nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("watchlist_id", "symbol", name="watchlist_items_pkey"),
        schema=SCHEMA,
    )
    op.create_table(
        "screens",
        sa.Column("screen_id", sa.BigInteger, primary_key=True),
        _user_id(),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column(
            "conditions",
            JSONB,
            nullable=False,
            comment='[{"field": "rsi_14", "op": "<", "value": 30}, ...], all of which a symbol meets; '
            "validated against the known fields and operators (stockyard.screens) before it is stored.",
        ),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.text("true")),
        _created_at(),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("screen_id", name="screens_pkey"),
        sa.UniqueConstraint("user_id", "name", name="screens_user_id_name_key"),
        schema=SCHEMA,
    )
    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.BigInteger, primary_key=True),
        _user_id(),
        sa.Column(
            "kind",
            sa.Text,
            sa.CheckConstraint(
                "kind in ('price_above', 'price_below', 'enters_top')", name="alerts_kind_check"
            ),
            nullable=False,
        ),
        sa.Column("symbol", sa.Text, nullable=False),
        sa.Column("level", sa.Double, comment="The close a price alert watches for crossing."),
        sa.Column(
            "top_n", sa.Integer, comment="The rank an enters_top alert watches for the symbol entering."
        ),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.text("true")),
        _created_at(),
        sa.PrimaryKeyConstraint("alert_id", name="alerts_pkey"),
        sa.CheckConstraint(
            "(kind in ('price_above', 'price_below') and level > 0 and top_n is null)"
            " or (kind = 'enters_top' and top_n >= 1 and level is null)",
            name="alerts_shape_check",
        ),
        schema=SCHEMA,
    )
    op.create_index("alerts_user_id_idx", "alerts", ["user_id"], schema=SCHEMA)
    op.create_table(
        "hits",
        sa.Column("hit_id", sa.BigInteger, primary_key=True),
        _user_id(),
        sa.Column("screen_id", sa.BigInteger, sa.ForeignKey("app.screens.screen_id", ondelete="CASCADE")),
        sa.Column("alert_id", sa.BigInteger, sa.ForeignKey("app.alerts.alert_id", ondelete="CASCADE")),
        sa.Column("data_date", sa.Date, nullable=False),
        sa.Column("symbol", sa.Text, nullable=False),
        sa.Column(
            "detail",
            JSONB,
            nullable=False,
            comment="The values that met the screen or set off the alert.",
        ),
        _created_at(),
        sa.PrimaryKeyConstraint("hit_id", name="hits_pkey"),
        sa.CheckConstraint("(screen_id is null) <> (alert_id is null)", name="hits_source_check"),
        sa.UniqueConstraint(
            "screen_id",
            "alert_id",
            "data_date",
            "symbol",
            name="hits_screen_id_alert_id_data_date_symbol_key",
            postgresql_nulls_not_distinct=True,
        ),
        comment="What a screen or an alert of a user found on a data date; written by the alert_hits asset, "
        "pushed to its owner over the websocket.",
        schema=SCHEMA,
    )
    op.create_index("hits_user_id_idx", "hits", ["user_id", "hit_id"], schema=SCHEMA)


def downgrade() -> None:
    for table in ("hits", "alerts", "screens", "watchlist_items", "watchlists"):
        op.drop_table(table, schema=SCHEMA)
