"""Developer NPS answers (`/platform feedback`).

Revision ID: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.create_table(
        "feedback_response",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("response_key", sa.String(), nullable=False, unique=True),
        sa.Column("user_id", sa.String(), nullable=False, index=True),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("submitted_at", sa.Float(), nullable=False, index=True),
        sa.CheckConstraint("score >= 0 AND score <= 10", name="feedback_response_score_range"),
    )


def downgrade() -> None:
    op.drop_table("feedback_response")
