"""raw.stocks.sector_as_given: the sector as the provider wrote it, before it was mapped to a GICS name.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "stocks",
        sa.Column(
            "sector_as_given",
            sa.Text,
            comment="The sector as the provider wrote it, before it was mapped to today's GICS name.",
        ),
        schema="raw",
        # Warehouses loaded by the plain DDL of the release that brought the column have it already.
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_column("stocks", "sector_as_given", schema="raw")
