"""Office hours: questions asked in the platform Q&A channels, answered from the knowledge base
when it can, tracked until someone answers, and learned from when a platform engineer accepts
an answer. Also the figures for `/officehours stats` and the weekly digest."""
from __future__ import annotations

import statistics
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Sequence

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from bot.db import Database
from bot.knowledge.search import Hit, significant_terms
from bot.knowledge.service import Knowledge
from bot.models import Question

GOOD_COVERAGE = 0.5  # a hit must match at least half the question's significant words
WEEK = 7 * 86400


@dataclass(frozen=True)
class Asked:
    question: Question
    answers: list[Hit]
    first_time: bool


@dataclass(frozen=True)
class Stats:
    days: int
    questions: int
    self_served: int
    answered_by_people: int
    still_open: int
    median_seconds_to_answer: float | None
    topics: list[tuple[str, int]]

    @property
    def self_served_rate(self) -> float | None:
        return self.self_served / self.questions if self.questions else None


def permalink(channel: str, ts: str) -> str:
    return f"https://slack.com/archives/{channel}/p{ts.replace('.', '')}"


class OfficeHours:
    def __init__(self, db: Database, knowledge: Knowledge, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.knowledge = knowledge
        self.clock = clock

    async def ask(self, channel: str, ts: str, user: str, text: str) -> Asked:
        """Record the question (once per message, however often Slack delivers it) and find answers."""
        question = Question(channel=channel, ts=ts, user=user, text=text[:4000], asked_at=self.clock(), status="open")
        try:
            async with self.db.session() as session:
                session.add(question)
                await session.commit()
                await session.refresh(question)
            first_time = True
        except IntegrityError:
            question, first_time = await self.question(channel, ts), False
        hits = [h for h in await self.knowledge.search(text, limit=3) if h.coverage >= GOOD_COVERAGE]
        return Asked(question, hits, first_time)

    async def question(self, channel: str, ts: str) -> Question | None:
        async with self.db.session() as session:
            return (await session.exec(select(Question).where(Question.channel == channel, Question.ts == ts))).scalars().first()

    async def self_served(self, channel: str, ts: str, by: str) -> bool:
        """The bot's answer did it; True the first time only."""
        return await self._close(channel, ts, "self_served", by, "")

    async def accept(self, channel: str, ts: str, question_text: str, answer: str, by: str) -> None:
        """A platform engineer marked `answer` as the answer: it joins the knowledge base."""
        key = f"{channel}:{ts}"
        await self.knowledge.save_answer(key, question_text, answer, permalink(channel, ts))
        if await self.question(channel, ts) is None:
            await self.ask(channel, ts, "", question_text)
        await self._close(channel, ts, "answered", by, f"answer:{key}", reopen=True)

    async def _close(self, channel: str, ts: str, status: str, by: str, answer_key: str, reopen: bool = False) -> bool:
        condition = [Question.channel == channel, Question.ts == ts]
        if not reopen:
            condition.append(Question.status == "open")
        async with self.db.session() as session:
            done = await session.exec(update(Question).where(*condition).values(
                status=status, answered_at=self.clock(), answered_by=by, answer_key=answer_key))
            await session.commit()
        return bool(done.rowcount)

    async def still_open(self, limit: int = 20) -> list[Question]:
        async with self.db.session() as session:
            query = select(Question).where(Question.status == "open").order_by(Question.asked_at).limit(limit)
            return list((await session.exec(query)).scalars().all())

    async def stats(self, days: int = 30, until: float | None = None) -> Stats:
        until = self.clock() if until is None else until
        async with self.db.session() as session:
            rows: Sequence[Question] = (await session.exec(select(Question).where(
                Question.asked_at >= until - days * 86400, Question.asked_at < until))).scalars().all()
        waits = [q.answered_at - q.asked_at for q in rows if q.answered_at is not None]
        topics = Counter(term for q in rows for term in set(significant_terms(q.text)))
        return Stats(days, len(rows), sum(q.status == "self_served" for q in rows), sum(q.status == "answered" for q in rows),
                     sum(q.status == "open" for q in rows), statistics.median(waits) if waits else None,
                     topics.most_common(5))
