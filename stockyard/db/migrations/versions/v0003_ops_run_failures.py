"""ops.run_failures: the Dagster runs that failed, as the run-failure sensor records them.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("create schema if not exists ops")
    op.create_table(
        "run_failures",
        sa.Column("run_id", sa.Text, nullable=False),
        sa.Column("job_name", sa.Text, nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column(
            "step_keys",
            ARRAY(sa.Text),
            nullable=False,
            server_default=sa.text("'{}'"),
            comment="The steps that failed; empty when the run failed before any step (a launch error).",
        ),
        sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("run_id", name="run_failures_pkey"),
        comment="Dagster runs that failed, recorded by the run-failure sensor (orchestration.automation).",
        schema="ops",
    )


def downgrade() -> None:
    op.drop_table("run_failures", schema="ops")
    op.execute("drop schema if exists ops")
