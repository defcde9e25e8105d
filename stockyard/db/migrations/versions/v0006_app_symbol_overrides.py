"""app.symbol_overrides: the symbols admins added to or retired from the provider's universe.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "symbol_overrides",
        sa.Column("symbol", sa.Text, nullable=False),
        sa.Column(
            "tracked",
            sa.Boolean,
            nullable=False,
            comment="True: added to the provider's universe; false: retired (not fetched, its history kept).",
        ),
        sa.Column(
            "changed_by",
            sa.BigInteger,
            sa.ForeignKey("app.users.user_id", ondelete="SET NULL"),
            comment="The admin who last changed it; null once that account is deleted (the audit log keeps "
            "who).",
        ),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("symbol", name="symbol_overrides_pkey"),
        comment="The admins' changes to the tracked symbols, applied by the ingestion to its provider's "
        "universe (stockyard.universe).",
        schema="app",
    )


def downgrade() -> None:
    op.drop_table("symbol_overrides", schema="app")
