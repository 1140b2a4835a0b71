"""Stored delivery events for DORA and CI figures (read in the background from GitHub and
PagerDuty), and per-day command usage.

Revision ID: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.create_table(
        "delivery_source",
        sa.Column("system", sa.String(), primary_key=True),
        sa.Column("key", sa.String(), primary_key=True),
        sa.Column("read_at", sa.Float(), nullable=True),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("tried_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "delivery_event",
        sa.Column("slug", sa.String(), primary_key=True),
        sa.Column("key", sa.String(), primary_key=True),
        sa.Column("sha", sa.String(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("changes_read", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "delivery_change",
        sa.Column("slug", sa.String(), primary_key=True),
        sa.Column("delivery_key", sa.String(), primary_key=True),
        sa.Column("sha", sa.String(), primary_key=True),
        sa.Column("committed_at", sa.Float(), nullable=False),
        sa.Column("delivered_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "workflow_run_event",
        sa.Column("slug", sa.String(), primary_key=True),
        sa.Column("run_id", sa.BigInteger(), primary_key=True),
        sa.Column("sha", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("conclusion", sa.String(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "incident_event",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("service_id", sa.String(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("resolved_at", sa.Float(), nullable=True),
    )
    for table, columns in (("delivery_event", ["slug", "at"]), ("delivery_change", ["slug", "delivered_at"]),
                           ("workflow_run_event", ["slug", "created_at"]), ("incident_event", ["service_id", "created_at"])):
        op.create_index(f"ix_{table}_{'_'.join(columns)}", table, columns)
    op.create_table(
        "usage_day",
        sa.Column("day", sa.String(), primary_key=True),
        sa.Column("user_id", sa.String(), primary_key=True),
        sa.Column("action", sa.String(), primary_key=True),
        sa.Column("count", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    for table in ("usage_day", "incident_event", "workflow_run_event", "delivery_change", "delivery_event", "delivery_source"):
        op.drop_table(table)
