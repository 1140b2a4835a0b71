"""The knowledge base's documents and search, with the database's own full-text engine:
SQLite FTS5 ranked by bm25, PostgreSQL `tsvector` ranked by `ts_rank`. One interface, two
engines; no ranking of our own. Questions are natural language, so any significant word may
match (OR); `coverage` says how many of them the document matched, for "is this a good answer".

Speed. The engines rank every document a query matches, and a question's commonest words match
most of a large knowledge base, so the OR of all of them costs in proportion to the corpus. The
candidates are therefore chosen from each term's document frequency, read from the engine and
cached in memory (see `plan_match`, `KnowledgeBase._term_stats`):

- while the terms' postings add up to at most the engine's budget (always on a small knowledge
  base), the query is the plain OR of every significant term, as before;
- otherwise terms in more than half the documents are not matched on (FTS5's bm25 gives them an
  idf of ~0), and if that is still too much work the candidates are the documents matching some
  term from each of two or more groups of the remaining terms (an AND of ORs), plus on SQLite the
  documents with one of the rarest terms (bm25 weighs rare terms most; `ts_rank` has no idf, so
  PostgreSQL spends its budget on the groups). Every candidate is still ranked by the engine on
  all its terms: PostgreSQL ranks them with `ts_rank` against the full question; on SQLite each
  candidate set is a separate FTS5 query whose bm25 counts every matched term of the set, and a
  document keeps its best score. Left out are documents whose matched terms all fall in one
  group; when the candidates give fewer than `limit` hits, the OR of the terms matched on is run.
- a search within one entity (`entity_ref`) is always the plain OR.
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from sqlalchemy import bindparam, delete, select, text

from bot.db import Database
from bot.models import KnowledgeDocument

MAX_TERMS = 12
STOPWORDS = frozenset("""a about above after again all am an and any are as at be because been before being below between
both but by can could did do does doing down during each few for from further get got had has have having he her here
hers him his how i if in into is it its just me more most my no nor not now of off on once only or other our out over own
please same she should so some such than that the their them then there these they this those through to too under
until up very was we were what when where which while who whom why will with would you your yours""".split())

COMMON_SHARE = 0.5  # a term in more than this share of the documents is not matched on (bm25 idf <= 0, clamped by FTS5)
# Per engine: how many postings one question may have the engine rank before the plan narrows the
# candidates, and how many of them the "rarest terms" candidate set may take. Measured with
# bench/search.py at 10,000 documents (bench/SEARCH.md): SQLite's bm25 costs ~3-8 us a ranked row and
# needs the rare-term set to keep bm25's top hits; PostgreSQL fetches, detoasts and ranks each candidate
# (~5-10 us a row), and its ts_rank, without idf, keeps as many top hits from the groups alone.
BUDGETS = {"sqlite": (800, 1000), "postgresql": (800, 0)}
STATS_MAX_AGE = 60.0  # seconds; this process's writes drop the statistics at once, another process's within this
STATS_MAX_TERMS = 50_000  # cached document frequencies before the cache starts afresh


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


@dataclass(frozen=True)
class Candidates:
    """Documents matching some term of each group, and none of `without`."""
    groups: tuple[tuple[str, ...], ...]
    without: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    """How one question is matched. `terms`: every significant term, as ranked (PostgreSQL),
    highlighted and counted for coverage. `candidates`: the document sets to rank; their union is
    what the engine ranks. `fallback`: OR-ed when the candidates give fewer hits than asked for;
    None when the candidates are already the plain OR."""
    terms: tuple[str, ...]
    candidates: tuple[Candidates, ...]
    fallback: tuple[str, ...] | None = None


def _union_estimate(frequencies: Sequence[int], documents: int) -> float:
    """Documents matching any of the terms, were the terms independent."""
    return documents * (1 - math.prod(1 - min(f, documents) / documents for f in frequencies))


def plan_match(terms: Sequence[str], frequency: Mapping[str, int], documents: int,
               budget: int, rare_budget: int) -> Plan:
    """Choose the candidate documents from the terms' document frequencies (see the module's doc).
    The work of a set of terms is the sum of their postings, an upper bound of what the engine ranks.
    With rare terms R and the other terms C, the sets are disjoint: R without C, R with C (bm25
    counts both), and some term of each group of C without R."""
    terms = tuple(terms)
    active = [t for t in terms if frequency.get(t, 0) > 0]
    if sum(frequency[t] for t in active) <= budget or documents <= 0:
        return Plan(terms, (Candidates((terms,)),))
    kept = [t for t in active if frequency[t] <= COMMON_SHARE * documents] or active
    if sum(frequency[t] for t in kept) <= budget:
        return Plan(terms, (Candidates((tuple(kept),)),))
    kept.sort(key=lambda t: frequency[t])
    rare: list[str] = []
    for term in kept:
        if sum(frequency[t] for t in rare) + frequency[term] > rare_budget:
            break
        rare.append(term)
    common = tuple(kept[len(rare):])
    candidates: list[Candidates] = []
    if rare:
        candidates.append(Candidates((tuple(rare),), without=common))
        if common:
            candidates.append(Candidates((tuple(rare), common)))
    if len(common) >= 2 or not rare:
        groups: list[list[str]] = []
        for count in range(2, len(common) + 1):
            groups = [[] for _ in range(count)]
            for term in sorted(common, key=lambda t: -frequency[t]):   # largest first, to the group that matches least
                min(groups, key=lambda g: _union_estimate([frequency[t] for t in g], documents)).append(term)
            both = documents * math.prod(_union_estimate([frequency[t] for t in g], documents) / documents for g in groups)
            if both <= budget:
                break
        candidates.append(Candidates(tuple(tuple(g) for g in groups) if groups else (common,), without=tuple(rare)))
    return Plan(terms, tuple(candidates), tuple(kept))


@dataclass
class _TermStats:
    """Document frequencies read from the engine, for one state of the knowledge base."""
    generation: int
    documents: int
    loaded_at: float
    frequency: dict[str, int] = field(default_factory=dict)
    common_lexemes: dict[str, float] = field(default_factory=dict)  # PostgreSQL: ANALYZE's most common lexemes
    common_loaded_at: float = 0.0    # they change only when ANALYZE runs: kept across this process's writes


def _covered(terms: Sequence[str], marked: str) -> int:
    """How many query terms FTS5 marked in the document (compared on their first five letters,
    since the engine matched stems)."""
    found = {m.lower() for m in re.findall("\x01([^\x02]*)\x02", marked)}
    return sum(1 for t in terms if any(f[:5] == t[:5] for f in found))


class KnowledgeBase:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.engine = "sqlite" if db.is_sqlite else "postgresql"
        self._stats: _TermStats | None = None
        self._generation = 0                       # bumped after each write this process commits
        self._lexemes: dict[str, tuple[str, ...]] = {}   # PostgreSQL: a term's lexemes (independent of the data)

    def _changed(self) -> None:
        self._generation += 1   # the cached statistics are of an older generation now: the next search reloads them

    async def put(self, documents: Iterable[Document]) -> None:
        """Insert or update documents by key."""
        rows = [{**doc.__dict__, "updated_at": time.time()} for doc in documents]
        if not rows:
            return
        try:
            await self.db.upsert(KnowledgeDocument, rows, ("key",), (
                "kind", "entity_ref", "title", "section", "url", "body", "version", "updated_at"))
        finally:
            self._changed()

    async def replace(self, prefix: str, documents: Sequence[Document]) -> None:
        """Make the documents whose keys start with `prefix` exactly these (a page that lost a section loses it here)."""
        keep = {d.key for d in documents}
        try:
            async with self.db.session() as session:
                stale = [k for k in (await session.exec(select(KnowledgeDocument.key).where(KnowledgeDocument.key.startswith(prefix)))).scalars()
                         if k not in keep]
                for start in range(0, len(stale), 500):
                    await session.exec(delete(KnowledgeDocument).where(KnowledgeDocument.key.in_(stale[start:start + 500])))
                await session.commit()
        finally:
            self._changed()
        await self.put(documents)

    async def versions(self, prefix: str) -> dict[str, str]:
        async with self.db.session() as session:
            rows = await session.exec(select(KnowledgeDocument.key, KnowledgeDocument.version)
                                      .where(KnowledgeDocument.key.startswith(prefix)))
            return dict(rows.all())

    async def plan(self, question: str) -> Plan | None:
        """How `search` would match the question (None: no significant words)."""
        terms = significant_terms(question)
        if not terms:
            return None
        async with self.db.session() as session:
            return await self._plan(session, terms)

    async def search(self, question: str, limit: int = 3, kinds: Sequence[str] = (), entity_ref: str = "") -> list[Hit]:
        terms = significant_terms(question)
        if not terms:
            return []
        async with self.db.session() as session:
            # One entity's pages are few: its search stays the plain OR (on PostgreSQL the entity_ref
            # index finds them; FTS5 matches over the whole index either way, as before).
            plan = Plan(tuple(terms), (Candidates((tuple(terms),)),)) if entity_ref else await self._plan(session, terms)
            run = self._sqlite if self.db.is_sqlite else self._postgres
            hits = await run(session, plan.terms, plan.candidates, limit, kinds, entity_ref)
            if plan.fallback is not None and len(hits) < limit:
                hits = await run(session, plan.terms, (Candidates((plan.fallback,)),), limit, kinds, entity_ref)
            return hits

    # -- term statistics -----------------------------------------------------------------------

    async def _plan(self, session, terms: Sequence[str]) -> Plan:
        stats = await self._term_stats(session, terms)
        budget, rare_budget = BUDGETS[self.engine]
        return plan_match(terms, stats.frequency, stats.documents, budget, rare_budget)

    async def _term_stats(self, session, terms: Sequence[str]) -> _TermStats:
        """Document count and the terms' document frequencies, from the cache or the engine. The
        frequencies and the count are reloaded after this process writes and at most STATS_MAX_AGE
        seconds after they were read; PostgreSQL's common lexemes every STATS_MAX_AGE seconds."""
        previous, generation, now = self._stats, self._generation, time.monotonic()
        stats = previous
        if stats is None or stats.generation != generation or now - stats.loaded_at > STATS_MAX_AGE \
                or len(stats.frequency) > STATS_MAX_TERMS:
            stats = _TermStats(generation, 0, now)
            stats.documents = (await session.exec(text("SELECT count(*) FROM kb_document"))).scalar_one()
            if not self.db.is_sqlite:
                if previous is not None and now - previous.common_loaded_at <= STATS_MAX_AGE:
                    stats.common_lexemes, stats.common_loaded_at = previous.common_lexemes, previous.common_loaded_at
                else:
                    stats.common_lexemes, stats.common_loaded_at = await self._common_lexemes(session), now
        missing = [t for t in terms if t not in stats.frequency]
        if missing:
            counted = await (self._sqlite_frequencies(session, missing) if self.db.is_sqlite
                             else self._postgres_frequencies(session, missing, stats))
            stats.frequency.update(counted)
        if generation == self._generation:   # not if a write committed meanwhile
            self._stats = stats
        return stats

    @staticmethod
    async def _sqlite_frequencies(session, terms: Sequence[str]) -> dict[str, int]:
        """Documents matching each term alone: FTS5 counts them from its posting lists (the term is
        stemmed as in a search, which `fts5vocab` would need done beforehand)."""
        columns = ", ".join(f"(SELECT count(*) FROM kb_fts WHERE kb_fts MATCH :t{i})" for i in range(len(terms)))
        row = (await session.exec(text(f"SELECT {columns}"), params={f"t{i}": f'"{t}"' for i, t in enumerate(terms)})).one()
        return dict(zip(terms, row))

    @staticmethod
    async def _common_lexemes(session) -> dict[str, float]:
        """PostgreSQL's own statistics: the lexemes ANALYZE found most common in `search`, and the
        share of rows holding each. Empty until the table has been analyzed."""
        row = (await session.exec(text(
            "SELECT CAST(CAST(most_common_elems AS text) AS text[]), most_common_elem_freqs FROM pg_stats "
            "WHERE schemaname = current_schema() AND tablename = 'kb_document' AND attname = 'search'"))).first()
        if row is None or row[0] is None:
            return {}
        return dict(zip(row[0], row[1]))   # the frequencies array ends with min, max and null share: zip drops them

    async def _term_lexemes(self, session, terms: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """Each term's lexemes, as PostgreSQL's english configuration makes them (cached: they do not
        depend on the documents); none for a word it treats as a stop word."""
        unknown = [t for t in terms if t not in self._lexemes]
        if unknown:
            if len(self._lexemes) > STATS_MAX_TERMS:
                self._lexemes.clear()
            rows = await session.exec(text(
                "SELECT t.term, ARRAY(SELECT lexeme FROM unnest(to_tsvector('english', t.term))) "
                "FROM unnest(CAST(:terms AS text[])) AS t(term)"), params={"terms": unknown})
            self._lexemes.update((term, tuple(lexemes)) for term, lexemes in rows)
        return {t: self._lexemes[t] for t in terms}

    async def _postgres_frequencies(self, session, terms: Sequence[str], stats: _TermStats) -> dict[str, int]:
        """A term whose lexeme ANALYZE found common: its share times the document count. Any other
        term is rarer than every common one, and counted exactly through the GIN index."""
        term_lexemes = await self._term_lexemes(session, terms)
        counted: dict[str, int] = {}
        for term in terms:
            lexemes = term_lexemes[term]
            if not lexemes:
                counted[term] = 0       # a stop word to PostgreSQL: matches nothing
            elif len(lexemes) == 1 and lexemes[0] in stats.common_lexemes:
                counted[term] = round(stats.common_lexemes[lexemes[0]] * stats.documents)
        rest = [t for t in terms if t not in counted]
        if rest:
            rows = await session.exec(text(
                "SELECT t.term, (SELECT count(*) FROM kb_document WHERE search @@ plainto_tsquery('english', t.term)) "
                "FROM unnest(CAST(:terms AS text[])) AS t(term)"), params={"terms": rest})
            counted.update(dict(rows.all()))
        return counted

    # -- queries -------------------------------------------------------------------------------

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

    async def _sqlite(self, session, terms, candidates, limit, kinds, entity_ref) -> list[Hit]:
        """Each candidate set is one FTS5 query ranked by bm25 over its terms, top `limit`; a
        document keeps its best score (were the sets to overlap, a set missing some of a document's
        terms would score it lower, never higher). Snippet, highlight (for coverage) and metadata for
        the winners only, on all terms."""
        where, params = self._filters(kinds, entity_ref, "d.")
        join = " JOIN kb_document d ON d.id = kb_fts.rowid" if where else ""
        ranked = " UNION ALL ".join(
            f"SELECT * FROM (SELECT kb_fts.rowid AS id, bm25(kb_fts, 5.0, 1.0) AS score FROM kb_fts{join} "
            f"WHERE kb_fts MATCH :m{i}{where} ORDER BY score LIMIT :limit)" for i in range(len(candidates)))
        query = text(
            f"WITH hit AS ({ranked}), best AS (SELECT id, min(score) AS score FROM hit GROUP BY id ORDER BY score, id LIMIT :limit) "
            "SELECT d.key, d.kind, d.entity_ref, d.title, d.section, d.url, "
            "snippet(kb_fts, 1, '*', '*', '…', 24) AS snippet, "
            "highlight(kb_fts, 0, char(1), char(2)) || ' ' || highlight(kb_fts, 1, char(1), char(2)) AS marked "
            "FROM best CROSS JOIN kb_fts CROSS JOIN kb_document d "
            "WHERE kb_fts MATCH :match AND kb_fts.rowid = best.id AND d.id = best.id ORDER BY best.score, best.id")
        if kinds:
            query = query.bindparams(bindparam("kinds", expanding=True))
        params.update({f"m{i}": _fts5_query(c) for i, c in enumerate(candidates)})
        rows = (await session.exec(query, params={"match": _fts5_query(Candidates((terms,))), "limit": limit, **params})).all()
        return [Hit(r.key, r.kind, r.entity_ref, r.title, r.section, r.url, r.snippet, _covered(terms, r.marked) / len(terms))
                for r in rows]

    async def _postgres(self, session, terms, candidates, limit, kinds, entity_ref) -> list[Hit]:
        """The candidates are one tsquery (the GIN index finds them); `ts_rank` ranks them against
        the full question, so a candidate scores as it would have without the narrowing. Coverage: a
        term counts when all its lexemes are in the document's tsvector (`search @@ plainto_tsquery(term)`),
        checked on the vector's lexemes, read once per hit rather than detoasted once per term."""
        where, params = self._filters(kinds, entity_ref, "")
        query = text(
            "SELECT d.key, d.kind, d.entity_ref, d.title, d.section, d.url, "
            "ts_headline('english', d.body, q, 'MaxWords=30, MinWords=12, StartSel=*, StopSel=*, MaxFragments=1') AS snippet, "
            "tsvector_to_array(d.search) AS lexemes "
            "FROM (SELECT id, ts_rank(search, q) AS score FROM kb_document, to_tsquery('english', :tsquery) AS q "
            f"      WHERE search @@ to_tsquery('english', :candidates){where} ORDER BY score DESC, id LIMIT :limit) AS best "
            "JOIN kb_document d ON d.id = best.id, to_tsquery('english', :tsquery) AS q "
            "ORDER BY best.score DESC, best.id")
        if kinds:
            query = query.bindparams(bindparam("kinds", expanding=True))
        rows = (await session.exec(query, params={"tsquery": " | ".join(terms), "candidates": _tsquery(candidates),
                                                  "limit": limit, **params})).all()
        if not rows:
            return []
        term_lexemes = await self._term_lexemes(session, terms)
        hits = []
        for r in rows:
            present = set(r.lexemes)
            matched = sum(1 for t in terms if term_lexemes[t] and present.issuperset(term_lexemes[t]))
            hits.append(Hit(r.key, r.kind, r.entity_ref, r.title, r.section, r.url, r.snippet, matched / len(terms)))
        return hits


def _fts5_query(candidates: Candidates) -> str:
    """In FTS5 syntax: `("a" OR "b") AND ("c") NOT ("d")`. Terms are [a-z0-9]+."""
    groups = [" OR ".join(f'"{t}"' for t in group) for group in candidates.groups]
    query = groups[0] if len(groups) == 1 else " AND ".join(f"({g})" for g in groups)
    if candidates.without:
        query = f"({query}) NOT (" + " OR ".join(f'"{t}"' for t in candidates.without) + ")"
    return query


def _tsquery(candidates: Sequence[Candidates]) -> str:
    """The union of the candidate sets in to_tsquery syntax: `(a | b) & (c) | (d)`. Only the union
    matters here, so exclusions are left out, and so is a set that another contains (`(R) & (C)`
    beside `(R)`)."""
    singles = [set(c.groups[0]) for c in candidates if len(c.groups) == 1]
    kept = [c for c in candidates if len(c.groups) == 1 or not any(set(g) <= s for g in c.groups for s in singles)]
    return " | ".join(" & ".join("(" + " | ".join(group) + ")" for group in c.groups) for c in kept)
