"""Knowledge base documents with the database's own full-text index.

Revision ID: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "kb_document",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(), nullable=False, unique=True),
        sa.Column("kind", sa.String(), nullable=False, index=True),
        sa.Column("entity_ref", sa.String(), nullable=False, index=True),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("section", sa.String(), nullable=False),
        sa.Column("url", sa.String(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE kb_document ADD COLUMN search tsvector GENERATED ALWAYS AS ("
                   "setweight(to_tsvector('english', title || ' ' || section), 'A') || "
                   "setweight(to_tsvector('english', body), 'B')) STORED")
        op.execute("CREATE INDEX kb_document_search ON kb_document USING GIN (search)")
    else:
        op.execute("CREATE VIRTUAL TABLE kb_fts USING fts5(title, body, content='kb_document', content_rowid='id', "
                   "tokenize='porter unicode61')")
        op.execute("CREATE TRIGGER kb_fts_insert AFTER INSERT ON kb_document BEGIN "
                   "INSERT INTO kb_fts(rowid, title, body) VALUES (new.id, new.title || ' ' || new.section, new.body); END")
        op.execute("CREATE TRIGGER kb_fts_delete AFTER DELETE ON kb_document BEGIN "
                   "INSERT INTO kb_fts(kb_fts, rowid, title, body) VALUES ('delete', old.id, old.title || ' ' || old.section, old.body); END")
        op.execute("CREATE TRIGGER kb_fts_update AFTER UPDATE ON kb_document BEGIN "
                   "INSERT INTO kb_fts(kb_fts, rowid, title, body) VALUES ('delete', old.id, old.title || ' ' || old.section, old.body); "
                   "INSERT INTO kb_fts(rowid, title, body) VALUES (new.id, new.title || ' ' || new.section, new.body); END")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TABLE kb_fts")
    op.drop_table("kb_document")
