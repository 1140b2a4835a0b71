"""The knowledge base's documents and search, with the database's own full-text engine:
SQLite FTS5 ranked by bm25, PostgreSQL `tsvector` ranked by `ts_rank`. One interface, two
engines; no ranking of our own. Questions are natural language, so any significant word may
match (OR); `coverage` says how many of them the document matched, for "is this a good answer".
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Iterable, Sequence

from sqlalchemy import bindparam, delete, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.db import Database
from bot.models import KnowledgeDocument

MAX_TERMS = 12
STOPWORDS = frozenset("""a about above after again all am an and any are as at be because been before being below between
both but by can could did do does doing down during each few for from further get got had has have having he her here
hers him his how i if in into is it its just me more most my no nor not now of off on once only or other our out over own
please same she should so some such than that the their them then there these they this those through to too under
until up very was we were what when where which while who whom why will with would you your yours""".split())


@dataclass(frozen=True)
class Document:
    key: str
    kind: str
    title: str
    body: str
    entity_ref: str = ""
    section: str = ""
    url: str = ""
    version: str = ""


@dataclass(frozen=True)
class Hit:
    key: str
    kind: str
    entity_ref: str
    title: str
    section: str
    url: str
    snippet: str
    coverage: float


def significant_terms(question: str) -> list[str]:
    words = re.findall(r"[a-z0-9]+", question.lower())
    return list(dict.fromkeys(w for w in words if w not in STOPWORDS and len(w) > 1))[:MAX_TERMS]


def _covered(terms: Sequence[str], marked: str) -> int:
    """How many query terms FTS5 marked in the document (compared on their first five letters,
    since the engine matched stems)."""
    found = {m.lower() for m in re.findall("\x01([^\x02]*)\x02", marked)}
    return sum(1 for t in terms if any(f[:5] == t[:5] for f in found))


class KnowledgeBase:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def put(self, documents: Iterable[Document]) -> None:
        """Insert or update documents by key."""
        rows = [{**doc.__dict__, "updated_at": time.time()} for doc in documents]
        if not rows:
            return
        dialect_insert = sqlite_insert if self.db.is_sqlite else pg_insert
        statement = dialect_insert(KnowledgeDocument)
        statement = statement.on_conflict_do_update(index_elements=["key"], set_={
            name: statement.excluded[name] for name in ("kind", "entity_ref", "title", "section", "url", "body", "version", "updated_at")})
        async with self.db.session() as session:
            for start in range(0, len(rows), 500):
                await session.exec(statement, params=rows[start:start + 500])
            await session.commit()

    async def replace(self, prefix: str, documents: Sequence[Document]) -> None:
        """Make the documents whose keys start with `prefix` exactly these (a page that lost a section loses it here)."""
        keep = {d.key for d in documents}
        async with self.db.session() as session:
            stale = [k for k in (await session.exec(select(KnowledgeDocument.key).where(KnowledgeDocument.key.startswith(prefix)))).scalars()
                     if k not in keep]
            for start in range(0, len(stale), 500):
                await session.exec(delete(KnowledgeDocument).where(KnowledgeDocument.key.in_(stale[start:start + 500])))
            await session.commit()
        await self.put(documents)

    async def versions(self, prefix: str) -> dict[str, str]:
        async with self.db.session() as session:
            rows = await session.exec(select(KnowledgeDocument.key, KnowledgeDocument.version)
                                      .where(KnowledgeDocument.key.startswith(prefix)))
            return dict(rows.all())

    async def search(self, question: str, limit: int = 3, kinds: Sequence[str] = (), entity_ref: str = "") -> list[Hit]:
        terms = significant_terms(question)
        if not terms:
            return []
        async with self.db.session() as session:
            if self.db.is_sqlite:
                return await self._sqlite(session, terms, limit, kinds, entity_ref)
            return await self._postgres(session, terms, limit, kinds, entity_ref)

    @staticmethod
    def _filters(kinds: Sequence[str], entity_ref: str, prefix: str) -> tuple[str, dict[str, object]]:
        sql, params = "", {}
        if kinds:
            sql += f" AND {prefix}kind IN :kinds"
            params["kinds"] = list(kinds)
        if entity_ref:
            sql += f" AND {prefix}entity_ref = :entity_ref"
            params["entity_ref"] = entity_ref
        return sql, params

    async def _sqlite(self, session, terms, limit, kinds, entity_ref) -> list[Hit]:
        where, params = self._filters(kinds, entity_ref, "d.")
        query = text(
            "SELECT d.key, d.kind, d.entity_ref, d.title, d.section, d.url, "
            "snippet(kb_fts, 1, '*', '*', '…', 24) AS snippet, "
            "highlight(kb_fts, 0, char(1), char(2)) || ' ' || highlight(kb_fts, 1, char(1), char(2)) AS marked "
            "FROM kb_fts JOIN kb_document d ON d.id = kb_fts.rowid "
            f"WHERE kb_fts MATCH :match{where} ORDER BY bm25(kb_fts, 5.0, 1.0) LIMIT :limit")
        if kinds:
            query = query.bindparams(bindparam("kinds", expanding=True))
        rows = (await session.exec(query, params={"match": " OR ".join(f'"{t}"' for t in terms), "limit": limit, **params})).all()
        return [Hit(r.key, r.kind, r.entity_ref, r.title, r.section, r.url, r.snippet, _covered(terms, r.marked) / len(terms))
                for r in rows]

    async def _postgres(self, session, terms, limit, kinds, entity_ref) -> list[Hit]:
        where, params = self._filters(kinds, entity_ref, "")
        query = text(
            "SELECT key, kind, entity_ref, title, section, url, "
            "ts_headline('english', body, q, 'MaxWords=30, MinWords=12, StartSel=*, StopSel=*, MaxFragments=1') AS snippet, "
            "(SELECT count(*) FROM unnest(CAST(:terms AS text[])) AS t(term) "
            " WHERE search @@ plainto_tsquery('english', t.term)) AS matched "
            "FROM kb_document, to_tsquery('english', :tsquery) AS q "
            f"WHERE search @@ q{where} ORDER BY ts_rank(search, q) DESC, id LIMIT :limit")
        if kinds:
            query = query.bindparams(bindparam("kinds", expanding=True))
        rows = (await session.exec(query, params={"terms": terms, "tsquery": " | ".join(terms), "limit": limit, **params})).all()
        return [Hit(r.key, r.kind, r.entity_ref, r.title, r.section, r.url, r.snippet, r.matched / len(terms)) for r in rows]
