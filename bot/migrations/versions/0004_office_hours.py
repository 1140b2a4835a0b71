"""Office-hours questions.

Revision ID: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "oh_question",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("channel", sa.String(), nullable=False, index=True),
        sa.Column("ts", sa.String(), nullable=False),
        sa.Column("user", sa.String(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("asked_at", sa.Float(), nullable=False, index=True),
        sa.Column("status", sa.String(), nullable=False, index=True),
        sa.Column("answered_at", sa.Float(), nullable=True),
        sa.Column("answered_by", sa.String(), nullable=False),
        sa.Column("answer_key", sa.String(), nullable=False),
        sa.UniqueConstraint("channel", "ts", name="oh_question_message"),
    )


def downgrade() -> None:
    op.drop_table("oh_question")
