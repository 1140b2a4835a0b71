"""The knowledge base kept in step with the catalog: every runbook and TechDocs page, split into
sections, and the FAQ folder, indexed for search; accepted office-hours answers join them."""
from __future__ import annotations

import asyncio
import logging
from typing import Sequence

from bot.catalog.entity import Entity
from bot.catalog.service import CatalogService
from bot.knowledge.markdown import split_sections
from bot.knowledge.search import Document, Hit, KnowledgeBase
from bot.knowledge.sources import RUNBOOK, TECHDOCS_REF, DocSources, Page, faq_pages, runbook_link

log = logging.getLogger(__name__)
PARALLEL_READS = 8


def _documents(kind: str, entity: Entity, page: Page) -> list[Document]:
    return [Document(key=f"{kind}:{entity.key}#{number:03d}-{section.anchor}", kind=kind, entity_ref=entity.key,
                     title=page.title, section=section.title, body=section.body,
                     url=f"{page.url}#{section.anchor}" if page.url else "", version=page.version)
            for number, section in enumerate(split_sections(page.markdown))]


class Knowledge:
    def __init__(self, kb: KnowledgeBase, sources: DocSources, catalog: CatalogService, faq_dir: str) -> None:
        self.kb = kb
        self.sources = sources
        self.catalog = catalog
        self.faq_dir = faq_dir

    async def reindex(self) -> int:
        """Read every FAQ, runbook and docs page again (unchanged pages cost a 304 or nothing) and
        index what changed. Returns how many pages were (re)indexed."""
        faq = [Document(f"faq:{slug}", "faq", page.title, page.markdown + ("\n\nTags: " + ", ".join(tags) if tags else ""),
                        version=page.version) for slug, page, tags in await asyncio.to_thread(faq_pages, self.faq_dir)]
        await self.kb.replace("faq:", faq)
        limit = asyncio.Semaphore(PARALLEL_READS)
        entities = [e for e in self.catalog.index.entities.values()
                    if e.annotations.get(RUNBOOK) or e.annotations.get(TECHDOCS_REF) or runbook_link(e)]
        counts = await asyncio.gather(*(self._reindex_entity(entity, limit) for entity in entities))
        return len(faq) + sum(counts)

    async def _reindex_entity(self, entity: Entity, limit: asyncio.Semaphore) -> int:
        async with limit:
            try:
                runbook = await self.sources.runbook(entity)
                docs = await self.sources.techdocs(entity)
            except Exception:  # one unreadable page must not stop the others
                log.exception("could not read the docs of %s", entity.key)
                return 0
        changed = 0
        for kind, pages in (("runbook", [runbook] if runbook else []), ("docs", docs)):
            prefix = f"{kind}:{entity.key}#"
            documents = [d for page in pages for d in _documents(kind, entity, page)]
            known = await self.kb.versions(prefix)
            if {d.key: d.version for d in documents} != known:
                await self.kb.replace(prefix, documents)
                changed += len(pages)
        return changed

    async def runbook(self, entity: Entity) -> Page | None:
        return await self.sources.runbook(entity)

    async def search(self, question: str, limit: int = 3, kinds: Sequence[str] = (), entity_ref: str = "") -> list[Hit]:
        return await self.kb.search(question, limit, kinds, entity_ref)

    async def save_answer(self, key: str, question: str, answer: str, url: str) -> None:
        await self.kb.put([Document(f"answer:{key}", "answer", question[:300], answer, url=url)])
