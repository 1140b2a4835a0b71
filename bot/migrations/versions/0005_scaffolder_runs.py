"""Scaffolder runs, their steps and repository-name claims.

Revision ID: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "scaffolder_run",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("idempotency_key", sa.String(), nullable=False, unique=True),
        sa.Column("values_digest", sa.String(), nullable=False, index=True),
        sa.Column("template_ref", sa.String(), nullable=False, index=True),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column("requester", sa.String(), nullable=False, index=True),
        sa.Column("owner", sa.String(), nullable=False, index=True),
        sa.Column("state", sa.String(), nullable=False, index=True),
        sa.Column("run_values", sa.Text(), nullable=False),
        sa.Column("output_links", sa.Text(), nullable=False),
        sa.Column("output_text", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("submitted_at", sa.Float(), nullable=False, index=True),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("slack_channel", sa.String(), nullable=False),
        sa.Column("slack_ts", sa.String(), nullable=False),
    )
    op.create_table(
        "scaffolder_step",
        sa.Column("run_id", sa.String(), sa.ForeignKey("scaffolder_run.id"), primary_key=True),
        sa.Column("position", sa.Integer(), primary_key=True),
        sa.Column("step_id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("resolved_input", sa.Text(), nullable=False),
        sa.Column("output", sa.Text(), nullable=False),
        sa.Column("checkpoints", sa.Text(), nullable=False),
        sa.Column("links", sa.Text(), nullable=False),
        sa.Column("log", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("finished_at", sa.Float(), nullable=True),
    )
    op.create_table(
        "scaffolder_claim",
        sa.Column("name", sa.String(), primary_key=True),
        sa.Column("run_id", sa.String(), nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("scaffolder_claim")
    op.drop_table("scaffolder_step")
    op.drop_table("scaffolder_run")
