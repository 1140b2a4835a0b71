"""Retrieval quality of the knowledge base on a labelled question set, on both engines.

The knowledge base is built the way the product builds it (`Knowledge.reindex()` over the demo
catalog's runbooks and the FAQ folder); every question of tests/data/retrieval/questions.yaml is
asked twice: the raw search (top 3) and what office hours would post (`OfficeHours.ask`, hits with
`coverage >= GOOD_COVERAGE`). Figures, averaged over the questions that have relevant documents:

- precision@3: relevant results among those returned (at most 3) / number returned. A question
  with nothing returned scores 0 (the bot had an answer and did not give it). With one relevant
  document and three results the best possible is 1/3, so the ceiling is printed too;
- hit-rate@3: share of questions with at least one relevant document among them;
- and, for the questions nothing answers, the share for which office hours posts nothing.

Run with `-s` to see the figures and the misses. The floors are what both engines measured, less
a small margin; a change in ranking, coverage or the documents that loses answers fails here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import yaml
from sqlalchemy import select

from bot.catalog.loader import CatalogLoader
from bot.catalog.service import CatalogService
from bot.db import Database
from bot.knowledge.search import KnowledgeBase
from bot.knowledge.service import Knowledge
from bot.knowledge.sources import DocSources
from bot.models import KnowledgeDocument
from bot.officehours import GOOD_COVERAGE, OfficeHours
from tests.conftest import DEMO_CATALOG, ROOT

QUESTIONS_FILE = Path(__file__).resolve().parent / "data" / "retrieval" / "questions.yaml"
FAQ_DIR = ROOT / "examples" / "faq"
TOP = 3

# Floors, the same on both engines. Measured (34 answerable + 6 no-answer questions):
#   SQLite      search: precision@3 0.373 (= ceiling), hit-rate@3 1.000; posted: precision@3 0.775,
#               hit-rate@3 0.941 (2 misses), no-answer empty 4/6
#   PostgreSQL  search: precision@3 0.373 (= ceiling), hit-rate@3 1.000; posted: precision@3 0.735,
#               hit-rate@3 0.971 (1 miss), no-answer empty 4/6
# A floor allows about two more misses (or one more false answer) than measured, no more.
FLOORS = {"raw_hit": 0.94, "raw_precision": 0.34, "shown_hit": 0.88, "shown_precision": 0.65, "rejected": 0.5}


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    relevant: frozenset[str]


@dataclass(frozen=True)
class Scores:
    precision: float        # mean precision@3 over answerable questions (0 when nothing returned)
    hit_rate: float         # share of answerable questions with a relevant result in the top 3
    ceiling: float          # best precision@3 achievable with these labels, had every question 3 results
    rejected: float         # share of no-answer questions with no result at all
    answerable: int
    unanswerable: int
    misses: list[str]       # answerable questions without a relevant result, with what came back
    false_answers: list[str]  # no-answer questions that got results


def load_questions(path: Path = QUESTIONS_FILE) -> list[Question]:
    raw = yaml.safe_load(path.read_text())["questions"]
    return [Question(q["id"], q["question"], frozenset(q["relevant"] or ())) for q in raw]


def score(questions: Sequence[Question], results: dict[str, list[str]]) -> Scores:
    """`results` maps a question id to the keys returned, best first."""
    answerable = [q for q in questions if q.relevant]
    unanswerable = [q for q in questions if not q.relevant]
    precisions, hits, misses = [], 0, []
    for q in answerable:
        top = results[q.id][:TOP]
        found = sum(1 for key in top if key in q.relevant)
        precisions.append(found / len(top) if top else 0.0)
        hits += found > 0
        if not found:
            misses.append(f"{q.id}: {q.text!r} -> {top}")
    rejected = [q for q in unanswerable if not results[q.id]]
    false_answers = [f"{q.id}: {q.text!r} -> {results[q.id][:TOP]}" for q in unanswerable if results[q.id]]
    return Scores(
        precision=sum(precisions) / len(answerable) if answerable else 0.0,
        hit_rate=hits / len(answerable) if answerable else 0.0,
        ceiling=sum(min(len(q.relevant), TOP) / TOP for q in answerable) / len(answerable) if answerable else 0.0,
        rejected=len(rejected) / len(unanswerable) if unanswerable else 1.0,
        answerable=len(answerable), unanswerable=len(unanswerable), misses=misses, false_answers=false_answers)


async def build_knowledge(database_url: str) -> tuple[Database, Knowledge]:
    """The knowledge base as the product builds it from the demo catalog and the FAQ folder."""
    db = Database(database_url)
    await db.migrate()
    catalog = CatalogService(db, [str(DEMO_CATALOG)], CatalogLoader(5_000_000))
    await catalog.refresh()
    knowledge = Knowledge(KnowledgeBase(db), DocSources(None), catalog, str(FAQ_DIR))
    await knowledge.reindex()
    return db, knowledge


def test_scoring_arithmetic():
    questions = [Question("a", "", frozenset({"x"})), Question("b", "", frozenset({"y", "z"})),
                 Question("c", "", frozenset({"w"})), Question("n", "", frozenset())]
    s = score(questions, {"a": ["x", "q", "r"], "b": ["z"], "c": [], "n": ["q"]})
    assert (round(s.precision, 4), round(s.hit_rate, 4), s.rejected) == (round((1 / 3 + 1 + 0) / 3, 4), round(2 / 3, 4), 0.0)
    assert round(s.ceiling, 4) == round((1 / 3 + 2 / 3 + 1 / 3) / 3, 4)
    assert len(s.misses) == 1 and s.misses[0].startswith("c:") and s.false_answers[0].startswith("n:")


async def test_retrieval_quality(database_url):
    engine = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    questions = load_questions()
    assert len({q.id for q in questions}) == len(questions), "question ids must be unique"
    db, knowledge = await build_knowledge(database_url)
    try:
        async with db.session() as session:
            keys = set((await session.exec(select(KnowledgeDocument.key))).scalars())
        unknown = sorted(k for q in questions for k in q.relevant if k not in keys)
        assert not unknown, f"labelled keys not in the reindexed knowledge base (a section was renamed?): {unknown}"

        office_hours = OfficeHours(db, knowledge)
        raw, shown = {}, {}
        for number, q in enumerate(questions):
            raw[q.id] = [h.key for h in await knowledge.search(q.text, limit=TOP)]
            asked = await office_hours.ask("C0QA", f"1700000000.{number:06d}", "U0ADA0001", q.text)
            shown[q.id] = [h.key for h in asked.answers]
    finally:
        await db.close()

    raw_scores, shown_scores = score(questions, raw), score(questions, shown)
    print(f"\n[{engine}] {len(keys)} documents, {raw_scores.answerable} answerable + {raw_scores.unanswerable} no-answer questions, "
          f"GOOD_COVERAGE={GOOD_COVERAGE}")
    print(f"[{engine}] search top {TOP}:          precision@3={raw_scores.precision:.3f} (ceiling {raw_scores.ceiling:.3f})  "
          f"hit-rate@3={raw_scores.hit_rate:.3f}")
    print(f"[{engine}] posted (coverage filter): precision@3={shown_scores.precision:.3f}  hit-rate@3={shown_scores.hit_rate:.3f}  "
          f"no-answer correctly empty={shown_scores.rejected:.3f} "
          f"({round(shown_scores.rejected * shown_scores.unanswerable)}/{shown_scores.unanswerable})")
    for line in shown_scores.misses:
        print(f"[{engine}]   miss (posted): {line}")
    for line in shown_scores.false_answers:
        print(f"[{engine}]   answered a no-answer question: {line}")

    floors = FLOORS
    figures = {"raw_hit": raw_scores.hit_rate, "raw_precision": raw_scores.precision, "shown_hit": shown_scores.hit_rate,
               "shown_precision": shown_scores.precision, "rejected": shown_scores.rejected}
    below = {name: round(value, 3) for name, value in figures.items() if value < floors[name]}
    assert not below, (f"retrieval quality on {engine} below the floors {floors}: {below}\n"
                       f"misses: {shown_scores.misses}\nfalse answers: {shown_scores.false_answers}")
