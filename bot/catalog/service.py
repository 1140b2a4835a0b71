"""The catalog as the bot serves it: loaded from files and a Backstage instance, recorded in the
database, answered from an in-memory index that a refresh swaps atomically.
"""
from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import sys
import time
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

import orjson
from sqlalchemy import delete, insert, select

from bot.catalog.entity import Entity, Problem, Reference, validate
from bot.catalog.index import CatalogIndex
from bot.catalog.loader import CatalogLoader, LoadResult, Source
from bot.db import Database
from bot.models import CatalogEntity, CatalogSource
from integrations.backstage import BackstageClient
from integrations.errors import IntegrationError

log = logging.getLogger(__name__)
INSERT_BATCH = 5_000
RESTORE_BATCH = 2_000
REGISTERED = "registered:"  # sources added by `register` (the scaffolder), kept across refreshes


@dataclass(frozen=True)
class RefreshReport:
    entities: int
    changed_sources: int
    removed_sources: int
    problems: int
    seconds: float


def _problems_json(problems: Sequence[Problem]) -> str:
    return orjson.dumps([[p.source, p.line, p.message, p.entity] for p in problems]).decode()


def _batches(items: Iterable[Entity], size: int) -> Iterator[list[Entity]]:
    batch: list[Entity] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _entity_from_row(key: str, source_key: str, kind: str, line: int, body: str, refs: str) -> Entity:
    metadata = orjson.loads(body).get("metadata") or {}
    return Entity(
        key=sys.intern(key), kind=kind, namespace=sys.intern((metadata.get("namespace") or "default").lower()),
        name=metadata.get("name", ""), title=metadata.get("title") or "", source=sys.intern(source_key), line=line,
        body=body.encode(), refs=tuple(Reference(f, r, sys.intern(t), n) for f, r, t, n in orjson.loads(refs)),
    )


class CatalogService:
    """Holds the current `CatalogIndex`; `refresh()` reloads what changed and swaps it in."""

    def __init__(self, db: Database, roots: Sequence[str], loader: CatalogLoader,
                 backstage: BackstageClient | None = None) -> None:
        self.db = db
        self.roots = list(roots)
        self.loader = loader
        self.backstage = backstage
        self.index = CatalogIndex()
        self.loaded = False
        self._sources: dict[str, Source] = {}
        self._walk_problems: list[Problem] = []
        self._lock = asyncio.Lock()

    async def restore(self) -> None:
        """Serve what the database recorded at once, before the first refresh re-reads files."""
        columns = (CatalogEntity.key, CatalogEntity.source_key, CatalogEntity.kind, CatalogEntity.line,
                   CatalogEntity.body, CatalogEntity.refs)
        async with self.db.session() as session:
            sources = (await session.exec(select(CatalogSource))).scalars().all()
            if not sources:
                return
            by_source: dict[str, list[Entity]] = {s.key: [] for s in sources}
            # Plain rows, not ORM objects, read in batches: 100k rows held at once cost hundreds of MB.
            rows = await session.stream(select(*columns).execution_options(yield_per=RESTORE_BATCH))
            async for batch in rows.partitions():
                for row in batch:
                    by_source.setdefault(row[1], []).append(_entity_from_row(*row))
        self._sources = {
            s.key: Source(s.key, s.digest, tuple(by_source[s.key]), tuple(Problem(*p) for p in orjson.loads(s.problems)))
            for s in sources
        }
        self._swap(await asyncio.to_thread(self._build_index))

    async def refresh(self) -> RefreshReport:
        """Re-read the catalog; only changed files are parsed and written; the index is swapped whole."""
        async with self._lock:
            started = time.perf_counter()
            result = await asyncio.to_thread(self.loader.load, self.roots, self._sources)
            if self.backstage is not None:
                await self._add_backstage(result)
            result.sources.update({k: s for k, s in self._sources.items() if k.startswith(REGISTERED)})
            changed = [s for key, s in result.sources.items() if self._sources.get(key) is not s]
            removed = [key for key in self._sources if key not in result.sources]
            if changed or removed:
                await self._persist(changed, removed)
            rebuild = changed or removed or not self.loaded or result.problems != self._walk_problems
            self._sources = result.sources
            self._walk_problems = result.problems
            if rebuild:
                self._swap(await asyncio.to_thread(self._build_index))
            self.loaded = True
            report = RefreshReport(len(self.index.entities), len(changed), len(removed), len(self.index.problems),
                                   time.perf_counter() - started)
            log.info("catalog refreshed: %d entities, %d file(s) changed, %d removed, %d problem(s) in %.2fs",
                     report.entities, report.changed_sources, report.removed_sources, report.problems, report.seconds)
            return report

    async def register(self, location: str, documents: Sequence[Any]) -> tuple[list[Entity], list[Problem]]:
        """Add entities now (a component just created), recorded under `location` so a refresh or a
        restart keeps them; registering the same location again replaces what it held."""
        key = REGISTERED + location
        entities, problems = [], []
        for doc in documents:
            entity, found = validate(doc, lambda _path: 0, key)
            problems.extend(found)
            if entity is not None:
                entities.append(entity)
        digest = hashlib.blake2b(orjson.dumps(list(documents), option=orjson.OPT_NON_STR_KEYS), digest_size=16).hexdigest()
        async with self._lock:
            source = Source(key, digest, tuple(entities), tuple(problems))
            await self._persist([source], [])
            self._sources = {**self._sources, key: source}
            self._swap(await asyncio.to_thread(self._build_index))
        return entities, problems

    def _swap(self, index: CatalogIndex) -> None:
        self.index = index
        self.loaded = True
        # The catalog is millions of long-lived objects without cycles: left in the collected
        # generations, every full collection walks them all (pauses of a second or more at 100k
        # entities). Frozen, they are out of its way; the old index still goes by reference count.
        gc.freeze()

    def _build_index(self) -> CatalogIndex:
        entities = (e for source in self._sources.values() for e in source.entities)
        problems = [p for source in self._sources.values() for p in source.problems] + self._walk_problems
        return CatalogIndex.build(entities, problems)

    async def _add_backstage(self, result: LoadResult) -> None:
        key = f"backstage:{self.backstage.base_url}"
        try:
            items = await self.backstage.entities()
        except IntegrationError as exc:
            if key in self._sources:
                result.sources[key] = self._sources[key]
            result.problems.append(Problem(key, 0, f"{exc.reason}; serving the last copy" if key in self._sources else exc.reason))
            return
        digest = hashlib.blake2b(orjson.dumps(items, option=orjson.OPT_NON_STR_KEYS), digest_size=16).hexdigest()
        before = self._sources.get(key)
        if before is not None and before.digest == digest:
            result.sources[key] = before
            return
        entities, problems = [], []
        for item in items:
            for name in ("relations", "status"):  # computed by Backstage; we derive our own
                item.pop(name, None)
            entity, found = validate(item, lambda _path: 0, key)
            problems.extend(found)
            if entity is not None:
                entities.append(entity)
        result.sources[key] = Source(key, digest, tuple(entities), tuple(problems))

    async def _persist(self, changed: list[Source], removed: list[str]) -> None:
        stale = [s.key for s in changed] + removed
        now = time.time()
        async with self.db.session() as session:
            for start in range(0, len(stale), 500):
                chunk = stale[start:start + 500]
                await session.exec(delete(CatalogEntity).where(CatalogEntity.source_key.in_(chunk)))
                await session.exec(delete(CatalogSource).where(CatalogSource.key.in_(chunk)))
            if changed:
                await session.exec(insert(CatalogSource), params=[
                    {"key": s.key, "digest": s.digest, "problems": _problems_json(s.problems), "loaded_at": now} for s in changed])
            # In batches, so 100k entities never sit in memory twice over as rows. The same entity
            # in two files is a reported conflict; the record keeps the one it has (from a file
            # that did not change) or else the first.
            seen: set[str] = set()
            for batch in _batches((e for s in changed for e in s.entities), INSERT_BATCH):
                fresh = []
                for entity in batch:
                    if entity.key not in seen:
                        seen.add(entity.key)
                        fresh.append(entity)
                stored = set((await session.exec(select(CatalogEntity.key).where(
                    CatalogEntity.key.in_([e.key for e in fresh])))).scalars())
                rows = [{"key": e.key, "source_key": e.source, "kind": e.kind, "line": e.line, "body": e.body.decode(),
                         "refs": orjson.dumps([[r.field, r.relation, r.target, r.line] for r in e.refs]).decode()}
                        for e in fresh if e.key not in stored]
                if rows:
                    await session.exec(insert(CatalogEntity), params=rows)
            await session.commit()


def lint(loader: CatalogLoader, paths: Sequence[str]) -> list[Problem]:
    """Every problem in the given files or directories (and what they lead to), without a database."""
    result = loader.load(paths)
    entities = [e for s in result.sources.values() for e in s.entities]
    problems = [p for s in result.sources.values() for p in s.problems] + result.problems
    return CatalogIndex.build(entities, problems).problems
