"""Initial schema: catalog, delivery de-duplication, pages, Slack identities, audit log.

Revision ID: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "catalog_source",
        sa.Column("key", sa.String(), primary_key=True),
        sa.Column("digest", sa.String(), nullable=False),
        sa.Column("problems", sa.Text(), nullable=False),
        sa.Column("loaded_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "catalog_entity",
        sa.Column("key", sa.String(), primary_key=True),
        sa.Column("source_key", sa.String(), nullable=False, index=True),
        sa.Column("kind", sa.String(), nullable=False, index=True),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("refs", sa.Text(), nullable=False),
    )
    op.create_table(
        "handled_delivery",
        sa.Column("key", sa.String(), primary_key=True),
        sa.Column("received_at", sa.Float(), nullable=False, index=True),
    )
    op.create_table(
        "page_record",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dedup_key", sa.String(), nullable=False, unique=True),
        sa.Column("entity_key", sa.String(), nullable=False, index=True),
        sa.Column("paged_by", sa.String(), nullable=False),
        sa.Column("method", sa.String(), nullable=False),
        sa.Column("reference", sa.String(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False, index=True),
    )
    op.create_table(
        "slack_identity",
        sa.Column("slack_user_id", sa.String(), primary_key=True),
        sa.Column("email", sa.String(), nullable=False),
        sa.Column("fetched_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.Float(), nullable=False, index=True),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False, index=True),
        sa.Column("target", sa.String(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    for table in ("audit_log", "slack_identity", "page_record", "handled_delivery", "catalog_entity", "catalog_source"):
        op.drop_table(table)
