"""Knowledge-base search latency at 10,000 documents, on SQLite FTS5 (and PostgreSQL when given).

Generates section-sized documents (runbook sections and FAQ pages, 40-300 words, seeded) from a
platform-engineering vocabulary with a Zipf-like word frequency, so common words ("service",
"database", "error") have long posting lists as in real runbooks; stores them with
`KnowledgeBase.put` on a fresh database migrated by `Database.migrate` (PostgreSQL: then `VACUUM ANALYZE`,
as autovacuum does after a bulk load); then times 1,000
`KnowledgeBase.search(question, limit=3)` calls, one at a time, with natural-language questions
(5-12 significant words after stopwords). A call is timed end to end as the bot makes it: session,
term statistics (cached in memory, see `bot/knowledge/search.py`), SQL with bm25/ts_rank ranking,
snippet and coverage. Then 100 more searches, each right after the statistics were dropped (as
after a write), timed apart; the CPU time of this process per search; and, untimed, how close the
answers are to the exhaustive ranking: the same engine ranking every document that matches any
significant word (the search before candidate narrowing).

    .venv/bin/python bench/search.py [--documents 10000] [--queries 1000] [--postgres URL]

`--postgres URL`: a server the bench may create a database on; it creates `bench_search_<random>`
there, and drops it at the end. Without it, SQLite only (a file in a temp dir, as in production).

Goal (issue): p99 ≤ 20 ms per search.
"""
from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import asynccontextmanager
from itertools import accumulate
from pathlib import Path
from typing import AsyncIterator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench.common import Goal, latency_line, latency_ms, report  # noqa: E402
from bot.db import Database  # noqa: E402
from bot.knowledge.search import Candidates, Document, KnowledgeBase, _fts5_query, _tsquery, significant_terms  # noqa: E402

SEED = 20240611
GOAL_P99_MS = 20

PREFIXES = """payment order ledger refund checkout cart inventory search catalog pricing promotion tax shipping warehouse
invoice billing auth identity session profile notification email sms push recommendation review rating media image upload
report analytics event audit fraud risk loyalty wishlist subscription merchant partner supplier feed export import
scheduler gateway edge config feature""".split()
SUFFIXES = "service worker api consumer importer proxy job connector".split()
NOUNS = """database postgres redis kafka topic queue partition pod deployment namespace node ingress certificate dns vault
secret token key cache replica connection pool transaction lock index migration schema backup snapshot volume disk memory
cpu thread heap latency throughput timeout retry circuit breaker alert dashboard metric log trace span rollout release
deploy pipeline runner build image registry helm chart terraform module bucket cdn autoscaler quota limit request rate
error exception crash restart probe healthcheck readiness liveness webhook callback endpoint grpc http status tls oauth
jwt jwks login password captcha sso pagerduty incident oncall escalation runbook postmortem slo budget customer order
payment refund invoice price discount stock reservation warehouse shipment carrier label feed import export report job
cronjob schedule window maintenance banner flag override routing provider psp issuer decline capture authorisation
session cookie header payload response client server proxy gateway edge region zone failover primary standby lag
replication vacuum bloat query plan cursor batch offset consumer producer broker leader election quorum""".split()
VERBS = """check restart scale drain evict flush rotate revoke patch apply rollback pause resume page escalate investigate
monitor warm reconcile reindex replay purge throttle disable enable inspect verify compare export upgrade downgrade
terminate kill promote demote migrate rebuild refresh retry tail grep open""".split()
ADJECTIVES = """slow stuck stale failing flaky high low missing broken duplicate expired degraded saturated idle long-running
noisy intermittent unavailable unhealthy pending throttled corrupted delayed lagging cold hot""".split()
SECTIONS = """Overview|Symptoms|Dashboards|High latency|Error rate spike|Database connection exhaustion|Consumer lag|
Certificate expiry|Disk full|Memory leak|Pod crash loop|Cache stampede|Stale data after an import|Failed deploys|
Rate limiting|Queue backlog|Replication lag|Slow queries|Lock contention|Token validation errors|DNS resolution failures|
Third-party outage|Failover|Backups and restore|Escalation|Feature flags|Scaling|Maintenance window""".replace("\n", "").split("|")
FILLER = """the a an of to in on for with if when then and or but is are be it this that you your we our not no
before after while until so as at by from""".split()
ALERTS = "HighLatency ErrorRate LagHigh QueueBacklog CertExpiry DiskFull PodRestarts CacheHitRatioLow".split()
SYLLABLES = """ka lo ri ven tor mal sen dra qui bel nox fen har iso lum pra zet cor vin tal rho sky mor pel dun
gra fio nel sar tek wel zan brio cas dex""".split()
TAIL_WORDS = 6_000  # codenames, exception names, table and metric names: the long tail of real runbooks
TAIL_SHARE = 0.5    # share of noun, verb and adjective slots filled from the tail
ZIPF = 0.6          # word weight 1 / rank**ZIPF in each pool: the commonest noun is in ~half the documents


class Vocabulary:
    """Word pools with Zipf-like weights (the first words of each pool are the most frequent)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.services = [f"{p}-{s}" for p in PREFIXES for s in SUFFIXES]
        rng.shuffle(self.services)
        tail: set[str] = set()
        while len(tail) < TAIL_WORDS:
            word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3)))
            tail.add(word if rng.random() < 0.7 else word.capitalize() + rng.choice(("Exception", "Error", "Timeout", "Total")))
        self.pools = {"noun": NOUNS[:], "verb": VERBS[:], "adj": ADJECTIVES[:], "svc": self.services, "tail": sorted(tail)}
        for pool in self.pools.values():
            rng.shuffle(pool)
        self.page: list[str] = []  # the service of the page being written, then its dependencies
        self.weights = {name: list(accumulate(1 / (rank + 1) ** ZIPF for rank in range(len(pool))))
                        for name, pool in self.pools.items()}

    def pick(self, pool: str) -> str:
        if pool in ("noun", "verb", "adj") and self.rng.random() < TAIL_SHARE:
            pool = "tail"
        if pool == "svc" and self.page:  # a runbook names its own service and a few dependencies
            return self.page[0] if self.rng.random() < 0.6 else self.rng.choice(self.page[1:])
        return self.rng.choices(self.pools[pool], cum_weights=self.weights[pool])[0]

    def fill(self, template: str) -> str:
        out = template
        while "{" in out:
            start = out.index("{")
            end = out.index("}", start)
            name = out[start + 1:end]
            value = {"n": lambda: str(self.rng.choice((2, 5, 10, 15, 30, 60))),
                     "code": lambda: self.rng.choice(("500", "502", "503", "429", "409", "401")),
                     "alert": lambda: self.rng.choice(ALERTS),
                     "filler": lambda: self.rng.choice(FILLER)}.get(name, lambda: self.pick(name))()
            out = out[:start] + value + out[end + 1:]
        return out


SENTENCES = [
    "{verb} the {noun} of {svc} before you {verb} the {noun}.",
    "If the {noun} is {adj}, {verb} {svc} and watch the {noun} {noun} panel.",
    "Alert `{svc}{alert}`: {noun} {adj} for {n} minutes.",
    "`{svc}` calls `{svc}` for every {noun}, so a {adj} {noun} there shows up here as {noun} errors.",
    "Do not {verb} the {noun} to fix this; {verb} the {noun} instead and tell the owning team.",
    "Most {noun} incidents start with a {adj} {noun} in {svc} or its {noun}.",
    "```sh\nkubectl -n {noun} {verb} deploy/{svc}\nkubectl -n {noun} logs deploy/{svc} --since={n}m | grep {noun}\n```",
    "Customers report {code} responses and {adj} {noun} when the {noun} is {adj}.",
    "The {noun} {noun} keeps {n} {noun} per pod; total {noun} across all pods must stay under the {noun} limit.",
    "Ask in the team channel of {svc} when the {noun} stays {adj} for more than {n} minutes.",
    "| {noun} | {n} minutes | {verb} the {noun} |",
    "Check the {noun} dashboard first: {noun}, {noun} and {noun} by {noun}.",
]
FAQ_TITLES = ["How do I {verb} a {noun}?", "Who do I ask about {adj} {noun}?", "How do I get a {noun} for {svc}?",
              "What is the {noun} {noun} policy?"]
QUESTIONS = [
    "how do I {verb} the {noun} for {svc}?",
    "{svc} {noun} is {adj} since the last deploy, what should I check?",
    "why does {svc} return {code} errors when the {noun} is {adj}?",
    "who do I ask about {adj} {noun} in {svc}?",
    "we see {adj} {noun} and {noun} {noun} on {svc}, is there a runbook for that?",
    "is there a way to {verb} the {noun} without a {noun} {noun}?",
    "{svc} pods keep restarting with {noun} {noun} errors after the {noun} {noun}, any idea?",
    "what's the right way to {verb} a {adj} {noun} in {noun} without breaking {svc} and {svc}?",
    "getting {code} from {svc} and the {noun} {noun} looks {adj}, who owns this?",
    "how long should the {noun} {noun} be kept for {svc} {noun}?",
]


def documents(count: int, seed: int = SEED) -> list[Document]:
    """`count` documents: 90% runbook sections (a page of 6-10 sections per service), 10% FAQ pages."""
    rng = random.Random(seed)
    vocab = Vocabulary(rng)
    docs: list[Document] = []

    def body(sentences: int) -> str:
        return "\n\n".join(vocab.fill(rng.choice(SENTENCES)) for _ in range(sentences))

    faq = count // 10
    page = 0
    while len(docs) < count - faq:
        service = vocab.services[page % len(vocab.services)] + ("" if page < len(vocab.services) else f"-{page}")
        sections = rng.sample(SECTIONS, rng.randint(6, 10))
        vocab.page = [service] + [vocab.pick("svc") for _ in range(rng.randint(2, 5))]
        for number, section in enumerate(sections):
            if len(docs) >= count - faq:
                break
            anchor = section.lower().replace(" ", "-")
            docs.append(Document(f"runbook:component:default/{service}#{number:03d}-{anchor}", "runbook",
                                 f"{service} runbook", body(rng.randint(3, 14)),
                                 entity_ref=f"component:default/{service}", section=section,
                                 url=f"https://git.example/{service}/runbook.md#{anchor}", version="v1"))
        page += 1
    vocab.page = []
    for number in range(faq):
        title = vocab.fill(rng.choice(FAQ_TITLES))
        docs.append(Document(f"faq:bench-{number:05d}", "faq", title, f"# {title}\n\n{body(rng.randint(4, 16))}", version="v1"))
    return docs


def questions(count: int, seed: int = SEED + 1) -> list[str]:
    rng = random.Random(seed)
    vocab = Vocabulary(random.Random(SEED))  # the documents' word ranks: the same words are common in both
    vocab.rng = rng
    return [vocab.fill(rng.choice(QUESTIONS)) for _ in range(count)]


@asynccontextmanager
async def postgres_database(server_url: str) -> AsyncIterator[str]:
    """A new database on the server, dropped afterwards."""
    name = f"bench_search_{uuid.uuid4().hex[:10]}"
    plain = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
    admin = await asyncpg.connect(plain)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        admin = await asyncpg.connect(plain)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def matched_counts(db: Database, kb: KnowledgeBase, asked: list[str]) -> tuple[list[int], list[int]]:
    """How many documents each question matches with all its words OR-ed (what the engine ranked
    before the narrowing), and how many the planned candidates are (what it ranks now). Not timed."""
    counts, candidates = [], []
    async with db.session() as session:
        for question in asked:
            terms = significant_terms(question)
            plan = await kb.plan(question)
            if db.is_sqlite:
                query = text("SELECT count(*) FROM kb_fts WHERE kb_fts MATCH :m")
                counts.append((await session.exec(query, params={"m": _fts5_query(Candidates((tuple(terms),)))})).scalar_one())
                union = " OR ".join(f"({_fts5_query(c)})" for c in plan.candidates)
                candidates.append((await session.exec(query, params={"m": union})).scalar_one())
            else:
                query = text("SELECT count(*) FROM kb_document WHERE search @@ to_tsquery('english', :q)")
                counts.append((await session.exec(query, params={"q": " | ".join(terms)})).scalar_one())
                candidates.append((await session.exec(query, params={"q": _tsquery(plan.candidates)})).scalar_one())
    return counts, candidates


async def exhaustive_top(db: Database, question: str, limit: int = 3) -> list[str]:
    """The engine's top `limit` over every document matching any significant word: the reference."""
    terms = significant_terms(question)
    async with db.session() as session:
        if db.is_sqlite:
            query = text("SELECT d.key FROM kb_fts JOIN kb_document d ON d.id = kb_fts.rowid WHERE kb_fts MATCH :m "
                         "ORDER BY bm25(kb_fts, 5.0, 1.0), d.id LIMIT :limit")
            params = {"m": _fts5_query(Candidates((tuple(terms),))), "limit": limit}
        else:
            query = text("SELECT key FROM kb_document, to_tsquery('english', :q) AS q WHERE search @@ q "
                         "ORDER BY ts_rank(search, q) DESC, id LIMIT :limit")
            params = {"q": " | ".join(terms), "limit": limit}
        return list((await session.exec(query, params=params)).scalars())


async def run(engine: str, url: str, docs: list[Document], asked: list[str]) -> dict:
    db = Database(url)
    await db.migrate()
    kb = KnowledgeBase(db)
    started = time.perf_counter()
    await kb.put(docs)
    load_s = time.perf_counter() - started
    if not db.is_sqlite:  # what autovacuum does after a bulk load: statistics, visibility map, GIN pending list
        async with db.engine.connect() as connection:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("VACUUM ANALYZE kb_document"))
    for question in asked[:20]:  # warm-up: connections, caches; not measured
        await kb.search(question, limit=3)
    latencies, cpu, results, good, returned = [], [], [], 0, []
    for question in asked:
        c0, t0 = time.process_time(), time.perf_counter()
        hits = await kb.search(question, limit=3)
        latencies.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        results.append(len(hits))
        returned.append([h.key for h in hits])
        good += bool(hits) and hits[0].coverage >= 0.5
    after_write = []
    for question in asked[:100]:  # the statistics dropped before each, as a write does
        kb._changed()
        t0 = time.perf_counter()
        await kb.search(question, limit=3)
        after_write.append(time.perf_counter() - t0)
    counts, candidates = await matched_counts(db, kb, asked)
    found, reference_size, same_top = 0, 0, 0
    for question, keys in zip(asked, returned):
        reference = await exhaustive_top(db, question)
        found += len(set(reference) & set(keys))
        reference_size += len(reference)
        same_top += bool(reference) and bool(keys) and reference[0] == keys[0]
    await db.close()
    stats = latency_ms(latencies)
    agreement = found / reference_size if reference_size else 1.0
    print(f"[{engine}] stored {len(docs):,} documents in {load_s:.1f} s; {len(asked):,} searches, "
          f"matched documents per question (all words OR-ed): median {statistics.median(counts):,.0f}, max {max(counts):,}; "
          f"ranked (planned candidates): median {statistics.median(candidates):,.0f}, "
          f"p99 {sorted(candidates)[int(len(candidates) * 0.99)]:,}, max {max(candidates):,}")
    print(f"[{engine}] mean results {statistics.mean(results):.2f}, top hit coverage ≥ 0.5 for {good / len(asked):.0%}; "
          f"vs. the exhaustive ranking: {agreement:.1%} of its top 3 returned, same top hit for {same_top / len(asked):.1%}")
    print(latency_line(f"[{engine}] search (limit 3)", latencies))
    for label, low, high in (("< 25%", 0, 0.25), ("25-75%", 0.25, 0.75), ("≥ 75%", 0.75, 1.01)):
        bucket = [s for s, c in zip(latencies, counts) if low <= c / len(docs) < high]
        if bucket:
            print(latency_line(f"[{engine}]   matching {label} of docs", bucket))
    print(latency_line(f"[{engine}] right after a write", after_write))
    # CPU time of this process (all its threads) during each search: on SQLite that includes the engine
    # (aiosqlite's thread), so it shows the work done whatever else the machine runs; on PostgreSQL it
    # is the client side only.
    print(latency_line(f"[{engine}] CPU of this process", cpu))
    return {"load_s": round(load_s, 2), "matched_median": statistics.median(counts), "matched_max": max(counts),
            "candidates_median": statistics.median(candidates), "candidates_max": max(candidates),
            "top3_agreement": round(agreement, 4), "same_top": round(same_top / len(asked), 4),
            "after_write_p99": round(latency_ms(after_write)["p99"], 3), "cpu_p50": round(latency_ms(cpu)["p50"], 3),
            "cpu_p99": round(latency_ms(cpu)["p99"], 3),
            **{k: round(v, 3) for k, v in stats.items()}}


async def main(count: int, queries: int, postgres: str | None) -> None:
    docs = documents(count)
    asked = questions(queries)
    words = [len(d.body.split()) for d in docs]
    print(f"{len(docs):,} documents ({sum(d.kind == 'runbook' for d in docs):,} runbook sections, "
          f"{sum(d.kind == 'faq' for d in docs):,} FAQ pages), words per body: median {statistics.median(words):.0f}, "
          f"max {max(words)}; {len(asked):,} questions, e.g. {asked[0]!r}, {asked[1]!r}")
    figures, goals = {"documents": len(docs), "queries": len(asked)}, []
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        figures["sqlite"] = await run("sqlite", f"sqlite:///{tmp}/kb.db", docs, asked)
        goals.append(Goal("search p99, SQLite FTS5", figures["sqlite"]["p99"], GOAL_P99_MS, " ms"))
    if postgres:
        async with postgres_database(postgres) as url:
            figures["postgresql"] = await run("postgresql", url, docs, asked)
        goals.append(Goal("search p99, PostgreSQL", figures["postgresql"]["p99"], GOAL_P99_MS, " ms"))
    report("search", figures, goals)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--postgres", metavar="URL", help="PostgreSQL server to also measure (a database is created and dropped)")
    args = parser.parse_args()
    asyncio.run(main(args.documents, args.queries, args.postgres))
