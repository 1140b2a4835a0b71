"""The knowledge base kept in step with the catalog: every runbook and TechDocs page, split into
sections, and the FAQ folder, indexed for search; accepted office-hours answers join them.

A pass (`reindex`) reads the docs of the entities whose catalog entry changed since the last pass
(new ones too; removed ones lose their documents); a full pass, first and then every
`full_pass_seconds`, reads every entity's again, asking GitHub conditionally (see `sources`). A
fixed number of workers share the entities, each reading one entity and writing its documents at a
time, so neither GitHub nor the database pool sees more than `workers` requests at once. An entity
that fails is logged and read again `RETRY_SECONDS` later; GitHub's rate limit pauses every worker
until it lifts. A pass may be cancelled at any time: its database calls still run to their end.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Awaitable, Mapping, Sequence, TypeVar

from sqlalchemy import select

from bot.catalog.entity import Entity
from bot.catalog.service import CatalogService
from bot.knowledge.markdown import split_sections
from bot.knowledge.search import Document, Hit, KnowledgeBase
from bot.knowledge.sources import Commits, DocSources, Page, faq_pages, has_docs
from bot.models import KnowledgeDocument
from bot.observability import metrics as observe
from integrations.errors import IntegrationError
from integrations.github import RateLimited

log = logging.getLogger(__name__)
WORKERS = 8
RETRY_SECONDS = 600  # an entity that failed is read again by the first pass after this
LOGGED_FAILURES = 20  # per pass; its summary counts the rest
PAGE_KINDS = ("runbook", "docs")
T = TypeVar("T")
Work = tuple[str, Entity | None]
"""An entity's key and the entity; None when it left the catalog (its pages go)."""


@dataclass
class _Pass:
    """What the workers of one pass share."""

    todo: deque[Work]
    stored: set[str]  # entities that had pages when the pass began
    commits: Commits = field(default_factory=dict)
    pages: int = 0
    failed: int = 0
    outside: dict[str, list[str]] = field(default_factory=dict)  # an outside system's failure → entities it hit


def _documents(kind: str, entity: Entity, page: Page) -> list[Document]:
    return [Document(key=f"{kind}:{entity.key}#{number:03d}-{section.anchor}", kind=kind, entity_ref=entity.key,
                     title=page.title, section=section.title, body=section.body,
                     url=f"{page.url}#{section.anchor}" if page.url else "", version=page.version)
            for number, section in enumerate(split_sections(page.markdown))]


async def _to_the_end(work: Awaitable[T]) -> T:
    """Await a database call to its end even when the pass is cancelled meanwhile (then re-raise
    the cancellation): a database call cancelled half-way can leave its connection unable to close."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise


class Knowledge:
    def __init__(self, kb: KnowledgeBase, sources: DocSources, catalog: CatalogService, faq_dir: str,
                 full_pass_seconds: float = 6 * 3600, workers: int = WORKERS) -> None:
        self.kb = kb
        self.sources = sources
        self.catalog = catalog
        self.faq_dir = faq_dir
        self.full_pass_seconds = full_pass_seconds
        self.workers = workers
        self._seen: dict[str, bytes] = {}  # entity key → its catalog entry when its pages were last in step
        self._retry_at: dict[str, float] = {}  # entity key → time.monotonic() before which a failed one waits
        self._last_full: float | None = None  # time.monotonic() at the end of the last full pass
        self._resume_at = 0.0  # time.monotonic() before which GitHub is not asked (its rate limit)
        self._lock = asyncio.Lock()

    def _full_pass_due(self) -> bool:
        return self._last_full is None or (
            self.full_pass_seconds > 0 and time.monotonic() - self._last_full >= self.full_pass_seconds)

    async def reindex(self, full: bool | None = None) -> int:
        """Bring the knowledge base in step with the FAQ folder and the catalog: a full pass when
        `full` (default: when one is due), else only the entities whose catalog entry changed.
        Passes run one at a time. Returns how many pages were (re)indexed."""
        async with self._lock:
            faq = await self._reindex_faq()
            if not self.catalog.loaded:
                return faq
            full = self._full_pass_due() if full is None else full
            entities, started = self.catalog.index.entities, time.monotonic()
            if full:
                self._retry_at.clear()
                stored = await _to_the_end(self._entities_with_pages())
                todo, self._seen = await asyncio.to_thread(self._everything, entities, stored)
            else:
                todo = await asyncio.to_thread(self._changes, entities)
                stored = await _to_the_end(self._entities_with_pages()) if todo else set()
            run = _Pass(deque(todo), stored)
            async with asyncio.TaskGroup() as workers:
                for _ in range(min(self.workers, len(todo))):
                    workers.create_task(self._work(run))
            if full:
                self._last_full = time.monotonic()
            for reason, keys in run.outside.items():
                log.warning("could not read the docs of %d entit%s (%s%s): %s", len(keys), "y" if len(keys) == 1 else "ies",
                            ", ".join(keys[:3]), ", ..." if len(keys) > 3 else "", reason)
            if todo:
                log.info("%s docs pass: %d of %d entities read, %d page(s) indexed, %d failed, in %.1fs",
                         "full" if full else "catalog-change", len(todo), len(entities), run.pages, run.failed,
                         time.monotonic() - started)
            return faq + run.pages

    async def _reindex_faq(self) -> int:
        faq = [Document(f"faq:{slug}", "faq", page.title, page.markdown + ("\n\nTags: " + ", ".join(tags) if tags else ""),
                        version=page.version) for slug, page, tags in await asyncio.to_thread(faq_pages, self.faq_dir)]
        if {d.key: d.version for d in faq} == await _to_the_end(self.kb.versions("faq:")):
            return 0
        await _to_the_end(self.kb.replace("faq:", faq))
        return len(faq)

    @staticmethod
    def _everything(entities: Mapping[str, Entity], stored: set[str]) -> tuple[list[Work], dict[str, bytes]]:
        """A full pass (in a thread: it decodes every entity): every entity with docs, and every
        other one that has pages (left the catalog or lost its docs); the rest is in step already."""
        todo: list[Work] = [(key, entity) for key, entity in entities.items() if has_docs(entity)]
        reading = {key for key, _ in todo}
        todo += [(key, entities.get(key)) for key in stored - reading]
        return todo, {key: entity.body for key, entity in entities.items() if key not in reading and key not in stored}

    def _changes(self, entities: Mapping[str, Entity]) -> list[Work]:
        """A catalog-change pass: entities new, changed or removed since they were last in step,
        but not one that failed less than `RETRY_SECONDS` ago."""
        todo: list[Work] = [(key, None) for key in self._seen.keys() - entities.keys()]
        todo += [(key, entity) for key, entity in entities.items() if self._seen.get(key) != entity.body]
        now = time.monotonic()
        return [(key, entity) for key, entity in todo if self._retry_at.get(key, 0.0) <= now]

    async def _entities_with_pages(self) -> set[str]:
        async with self.kb.db.session() as session:
            rows = await session.exec(select(KnowledgeDocument.entity_ref).distinct()
                                      .where(KnowledgeDocument.kind.in_(PAGE_KINDS)))
            return set(rows.scalars())

    async def _work(self, run: _Pass) -> None:
        """One worker: takes entities until none is left. An entity that fails is logged once and
        keeps the pages it had."""
        while run.todo:
            if (pause := self._resume_at - time.monotonic()) > 0:
                await asyncio.sleep(pause)
                continue
            key, entity = run.todo.popleft()
            try:
                pages = await self._reindex_entity(key, entity, run)
            except RateLimited as exc:
                run.todo.appendleft((key, entity))
                self._pause(exc.retry_after)
                continue
            except Exception as exc:  # one entity must not stop the others
                self._retry_at[key] = time.monotonic() + RETRY_SECONDS
                run.failed += 1
                if isinstance(exc, IntegrationError):  # told once per reason, at the end of the pass
                    run.outside.setdefault(str(exc), []).append(key)
                elif run.failed <= LOGGED_FAILURES:
                    log.warning("could not index the docs of %s", key, exc_info=True)
                continue
            run.pages += pages
            self._retry_at.pop(key, None)
            if entity is None:
                self._seen.pop(key, None)
            else:
                self._seen[key] = entity.body

    def _pause(self, seconds: float) -> None:
        now = time.monotonic()
        if now + seconds > self._resume_at:
            if self._resume_at < now:
                log.warning("GitHub rate limit: docs reading paused for %.0fs", seconds)
            self._resume_at = now + seconds

    async def _reindex_entity(self, key: str, entity: Entity | None, run: _Pass) -> int:
        """Read one entity's pages, then make its documents exactly those. Returns how many pages changed."""
        documents: dict[str, list[Document]] = {kind: [] for kind in PAGE_KINDS}
        pages = dict.fromkeys(PAGE_KINDS, 0)
        if entity is not None and has_docs(entity):
            runbook = await self.sources.runbook(entity, run.commits)
            found = {"runbook": [runbook] if runbook else [], "docs": await self.sources.techdocs(entity, run.commits)}
            documents = {kind: [d for page in p for d in _documents(kind, entity, page)] for kind, p in found.items()}
            pages = {kind: len(p) for kind, p in found.items()}
        if not any(documents.values()) and key not in run.stored:
            return 0  # it had no pages and has none: nothing to ask the database
        return await _to_the_end(self._store(key, documents, pages))

    async def _store(self, key: str, documents: dict[str, list[Document]], pages: dict[str, int]) -> int:
        changed = 0
        stored = await self._stored_versions(key)
        for kind, wanted in documents.items():
            if {d.key: d.version for d in wanted} != stored[kind]:
                await self.kb.replace(f"{kind}:{key}#", wanted)
                changed += pages[kind]
        return changed

    async def _stored_versions(self, entity_ref: str) -> dict[str, dict[str, str]]:
        """kind → {document key: version} of an entity's pages, found by the indexed `entity_ref`
        (a key prefix is a LIKE, which scans the whole table)."""
        stored: dict[str, dict[str, str]] = {kind: {} for kind in PAGE_KINDS}
        async with self.kb.db.session() as session:
            rows = await session.exec(select(KnowledgeDocument.kind, KnowledgeDocument.key, KnowledgeDocument.version)
                                      .where(KnowledgeDocument.entity_ref == entity_ref,
                                             KnowledgeDocument.kind.in_(PAGE_KINDS)))
            for kind, key, version in rows.all():
                stored[kind][key] = version
        return stored

    async def runbook(self, entity: Entity) -> Page | None:
        return await self.sources.runbook(entity)

    async def search(self, question: str, limit: int = 3, kinds: Sequence[str] = (), entity_ref: str = "") -> list[Hit]:
        return observe.knowledge_search(await self.kb.search(question, limit, kinds, entity_ref))

    async def save_answer(self, key: str, question: str, answer: str, url: str) -> None:
        await self.kb.put([Document(f"answer:{key}", "answer", question[:300], answer, url=url)])
