"""Time from a question in an office-hours channel to the bot's answer in its thread.

The real server (`bot.server.start`, SQLite, the demo catalog, runbooks and FAQ indexed) with a
SlackFake that notes when each `chat.postMessage` arrives. Each question is a signed Events API
`message` event (top-level, unique `event_id` and `ts`), timed from sending the request to the
threaded `chat.postMessage` (`thread_ts` == the question's ts) reaching the fake. Questions are
the labelled set of tests/data/retrieval/questions.yaml, round robin.

The bot posts at most one message a second per channel (`Pacer`), so the latency phases give
every question its own channel (the first message of a channel is never paced):

1. one at a time: `--total` questions, each waits for its answer (the floor);
2. `--concurrency` at a time: `--total` more questions, fresh channels;
3. pacing: `--burst` questions at once into C0QA alone; the n-th answer waits ~n-1 seconds.

    .venv/bin/python bench/office_hours_latency.py [--total 100] [--concurrency 10] [--burst 5] [--documents 0]
                                                   [--postgres URL]

`--documents N` adds N synthetic documents (bench/search.py's generator) to the knowledge base
first, to see the same path over a larger one. `--postgres URL` runs the bot on PostgreSQL instead
of SQLite (a database `bench_search_<random>` is created on that server and dropped afterwards).

Goal: none set by the issue; the search itself aims at p99 ≤ 20 ms (bench/search.py).
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml  # noqa: E402
from aiohttp import web  # noqa: E402

from bench.common import (ROOT, bot_settings, client, latency_line, latency_ms, report, run_load,  # noqa: E402
                          start_bot, tally_logs)
from bot.config import DEMO_CATALOG  # noqa: E402
from tests.fakes.slack import SlackFake  # noqa: E402
from tests.fakes.slack_requests import event_body, sign  # noqa: E402
from tests.harness import SIGNING_SECRET  # noqa: E402

QA = "C0QA"
ASKER = "U0GRA0003"
QUESTIONS = ROOT / "tests" / "data" / "retrieval" / "questions.yaml"
ANSWER_TIMEOUT = 30.0


class ThreadTimedSlackFake(SlackFake):
    """SlackFake that notes when a threaded chat.postMessage arrives, by (channel, thread_ts)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.posted_at: dict[tuple[str, str], float] = {}
        self.posted: dict[tuple[str, str], dict[str, Any]] = {}
        self._waiting: dict[tuple[str, str], asyncio.Event] = {}

    def expect(self, channel: str, ts: str) -> None:
        self._waiting[(channel, ts)] = asyncio.Event()

    def _dispatch(self, method: str, args: dict[str, Any], request: web.Request) -> dict[str, Any]:
        arrived = time.perf_counter()
        answer = super()._dispatch(method, args, request)
        if method == "chat.postMessage" and args.get("thread_ts"):
            key = (answer.get("channel", args.get("channel", "")), str(args["thread_ts"]))
            self.posted_at.setdefault(key, arrived)
            self.posted.setdefault(key, args)
            if key in self._waiting:
                self._waiting[key].set()
        return answer

    async def answer(self, channel: str, ts: str, timeout: float) -> tuple[float, dict[str, Any]]:
        await asyncio.wait_for(self._waiting[(channel, ts)].wait(), timeout)
        return self.posted_at[(channel, ts)], self.posted[(channel, ts)]


class Asker:
    """Sends questions as signed `message` events and waits for their threaded answers."""

    def __init__(self, slack: ThreadTimedSlackFake, bot_url: str, questions: list[str]) -> None:
        self.slack = slack
        self.url = f"{bot_url}/slack/events"
        self.questions = itertools.cycle(questions)
        self.http = client(64)
        self.sequence = itertools.count(1)
        self.base = int(time.time())
        self.acks: list[float] = []
        self.answered = 0   # answers with knowledge-base hits (the rest: "no good answer")

    async def ask(self, channel: str) -> float:
        """Seconds from sending the event to the threaded answer arriving at the fake."""
        number = next(self.sequence)
        ts = f"{self.base}.{number:06d}"
        text = next(self.questions)
        self.slack.add_message(channel, text, user=ASKER, ts=ts)
        event = {"type": "message", "channel": channel, "user": ASKER, "text": text, "ts": ts, "event_ts": ts,
                 "channel_type": "channel"}
        body = event_body(event, event_id=f"EvOH{number:08d}")
        self.slack.expect(channel, ts)
        sent = time.perf_counter()
        async with self.http.post(self.url, data=body, headers=sign(body, SIGNING_SECRET)) as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status} for {ts}")
        self.acks.append(time.perf_counter() - sent)
        arrived, args = await self.slack.answer(channel, ts, ANSWER_TIMEOUT)
        self.answered += "oh_answered" in json.dumps(args.get("blocks") or "")
        return arrived - sent


async def wait_for_knowledge(server, timeout: float = 120) -> None:
    """The first refresh indexes runbooks and FAQ after the catalog is loaded; wait for both."""
    deadline = time.monotonic() + timeout
    while not await server.services.knowledge.search("postgres database", limit=1):
        if time.monotonic() > deadline:
            raise TimeoutError("the knowledge base was not indexed")
        await asyncio.sleep(0.1)


async def main(total: int, concurrency: int, burst: int, documents: int, postgres: str | None) -> None:
    if postgres:
        from bench.search import postgres_database
        async with postgres_database(postgres) as url:
            await measure(total, concurrency, burst, documents, url)
    else:
        await measure(total, concurrency, burst, documents, "")


async def measure(total: int, concurrency: int, burst: int, documents: int, database_url: str) -> None:
    logs = tally_logs()
    questions = [q["question"] for q in yaml.safe_load(QUESTIONS.read_text())["questions"]]
    channels = [QA] + [f"C0QA{n:04d}" for n in range(1, 2 * total + 1)]
    async with ThreadTimedSlackFake() as slack:
        with tempfile.TemporaryDirectory(prefix="bench-office-hours-") as tmp:
            settings = bot_settings(Path(tmp), slack.url, [DEMO_CATALOG],
                                    PAVEDROAD_OFFICE_HOURS_CHANNELS=",".join(channels),
                                    PAVEDROAD_OFFICE_HOURS_DIGEST="off",
                                    **({"DATABASE_URL": database_url} if database_url else {}))
            server, load_s = await start_bot(settings)
            try:
                await wait_for_knowledge(server)
                if documents:
                    from bench.search import documents as synthetic
                    await server.services.knowledge.kb.put(synthetic(documents))
                print(f"bot up in {load_s:.1f} s on {'PostgreSQL' if database_url else 'SQLite'}; knowledge base: demo runbooks and FAQ"
                      f"{f' + {documents:,} synthetic documents' if documents else ''}; "
                      f"{len(channels)} office-hours channels; {len(questions)} distinct questions")
                asker = Asker(slack, server.url, questions)
                for n in range(3):  # warm-up (connections, first queries); not measured
                    await asker.ask(channels[-1 - n])
                asker.acks.clear()
                asker.answered = 0

                fresh = iter(channels[1:])
                sequential = [await asker.ask(next(fresh)) for _ in range(total)]
                print(latency_line("one at a time, own channel", sequential))
                load = await run_load(total, concurrency, lambda _: asker.ask(next(fresh)),
                                      request_timeout=ANSWER_TIMEOUT + 5)
                print(latency_line(f"{concurrency} at a time, own channel", load.latencies)
                      + f"  ({load.rate:.1f}/s, {len(load.errors)} errors)")
                for error in sorted(set(load.errors))[:5]:
                    print(f"  error: {error}")
                acks = list(asker.acks)
                print(latency_line("HTTP ack of the event", acks))
                measured = len(sequential) + len(load.latencies)
                print(f"answers with knowledge-base hits: {asker.answered}/{measured} "
                      f"(the rest: \"I couldn't find a good answer\")")

                paced = await asyncio.gather(*(asker.ask(QA) for _ in range(burst)))
                print(f"pacing, {burst} questions at once into {QA}: answers after "
                      + ", ".join(f"{s:.2f}" for s in sorted(paced)) + " s")
            finally:
                await server.stop()
    seq, con = latency_ms(sequential), latency_ms(load.latencies)
    report("office_hours_latency", {
        "database": "postgresql" if database_url else "sqlite", "documents_extra": documents, "total": total, "concurrency": concurrency,
        "sequential": {k: round(v, 2) for k, v in seq.items()}, "concurrent": {k: round(v, 2) for k, v in con.items()},
        "ack": {k: round(v, 2) for k, v in latency_ms(acks).items()}, "errors": len(load.errors),
        "answered_share": round(asker.answered / max(1, measured), 3), "paced_s": [round(s, 2) for s in sorted(paced)],
    }, logs=logs)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total", type=int, default=100, help="questions per latency phase")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--burst", type=int, default=5, help="questions sent at once into one channel (pacing)")
    parser.add_argument("--documents", type=int, default=0, help="synthetic documents added to the knowledge base")
    parser.add_argument("--postgres", metavar="URL", help="PostgreSQL server to run the bot on instead of SQLite")
    parser.add_argument("--entities", type=int, help="accepted for bench/run_all.py; unused")
    args = parser.parse_args()
    asyncio.run(main(args.total, args.concurrency, args.burst, args.documents, args.postgres))
