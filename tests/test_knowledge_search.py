"""Full-text search on both engines: SQLite FTS5 and PostgreSQL tsvector, through one interface."""
from __future__ import annotations

from bot.db import Database
from bot.knowledge.search import Document, KnowledgeBase, significant_terms

DOCS = [
    Document("faq:postgres", "faq", "How do I get a Postgres database?", "Ask for a managed PostgreSQL instance through the "
             "golden path; the platform team provisions it with backups and a read replica.", url="https://docs/faq/postgres"),
    Document("faq:preview", "faq", "How do I get a preview environment?", "Run /env create with your service; it lives three days."),
    Document("runbook:payment-service#high-latency", "runbook", "Payment Service", "Latency is usually downstream: check the "
             "PSP connector and the database connection pool.", entity_ref="component:default/payment-service", section="High latency"),
    Document("runbook:payment-service#failed-payments", "runbook", "Payment Service", "A spike of declines: check fraud scoring.",
             entity_ref="component:default/payment-service", section="Failed payments spike"),
]


async def test_search_ranks_and_filters_on_both_engines(database_url):
    db = Database(database_url)
    await db.migrate()
    kb = KnowledgeBase(db)
    await kb.put(DOCS)
    hits = await kb.search("how can I get a postgres database for my service?")
    assert hits[0].key == "faq:postgres" and round(hits[0].coverage, 2) == 0.67    # postgres, database; not service
    assert "managed PostgreSQL instance" in hits[0].snippet
    latency = await kb.search("payment latency high", entity_ref="component:default/payment-service")
    assert latency[0].section == "High latency"
    assert [h.key for h in await kb.search("preview environment", kinds=["runbook"])] == []
    assert await kb.search("the and of") == []
    unrelated = await kb.search("kafka consumer lag rebalancing")
    assert unrelated == [] or unrelated[0].coverage < 0.5
    await kb.replace("runbook:payment-service", [DOCS[2]])                  # the page lost a section
    assert await kb.search("declines fraud") == []
    await kb.put([Document("faq:postgres", "faq", "How do I get a Postgres database?", "Now self-service: /create-service.")])
    assert (await kb.search("backups replica")) == []                        # updated in place, index follows
    await db.close()


def test_significant_terms():
    assert significant_terms("How do I get a Postgres DB, please?") == ["postgres", "db"]
