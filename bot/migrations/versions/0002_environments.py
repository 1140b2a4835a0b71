"""Environments and leases.

Revision ID: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "environment",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(), nullable=False, index=True),
        sa.Column("active_name", sa.String(), nullable=True, unique=True),
        sa.Column("request_key", sa.String(), nullable=False, unique=True),
        sa.Column("service_ref", sa.String(), nullable=False),
        sa.Column("owner_ref", sa.String(), nullable=False, index=True),
        sa.Column("purpose", sa.String(), nullable=False),
        sa.Column("size", sa.String(), nullable=False),
        sa.Column("requester", sa.String(), nullable=False, index=True),
        sa.Column("status", sa.String(), nullable=False, index=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False, index=True),
        sa.Column("warned_at", sa.Float(), nullable=True),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
    )
    op.create_table(
        "lease",
        sa.Column("name", sa.String(), primary_key=True),
        sa.Column("holder", sa.String(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("lease")
    op.drop_table("environment")
