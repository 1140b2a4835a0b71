"""Runbooks, docs search and office hours end to end: signed Slack requests and Events API
deliveries to the running bot; GitHub's contents API from a local test server."""
from __future__ import annotations

import asyncio
import json
import textwrap
import time
from datetime import datetime, timezone

import pytest

from bot.officehours import permalink
from commands.office_hours import post_digest_if_due
from tests.conftest import DEMO_CATALOG
from tests.fakes.github import GitHubFake
from tests.fakes.slack import SlackFake
from tests.fakes.slack_requests import event_body
from tests.harness import Bot, start_bot, stop_bot

QA, PLATFORM_GROUP = "C0QA", "S0PLATFORM"
ALAN, ADA, GRACE = "U0ALA0010", "U0ADA0001", "U0GRA0003"   # Alan is in the platform group
MKDOCS = "site_name: Orders\nnav:\n  - Home: index.md\n  - Operations:\n      - Deploying: ops/deploy.md\n"
EXTRA = textwrap.dedent("""
    apiVersion: backstage.io/v1alpha1
    kind: Component
    metadata:
      name: orders-api
      annotations:
        github.com/project-slug: acme/orders
        backstage.io/techdocs-ref: dir:.
        pavedroad.dev/runbook: docs/runbook.md
    spec: {type: service, lifecycle: production, owner: payments-team}
    ---
    apiVersion: backstage.io/v1alpha1
    kind: Component
    metadata:
      name: billing-api
      links:
        - {title: Runbook, url: "https://github.com/acme/billing/blob/main/RUNBOOK.md"}
    spec: {type: service, lifecycle: production, owner: payments-team}
    ---
    apiVersion: backstage.io/v1alpha1
    kind: Component
    metadata:
      name: wiki-api
      links:
        - {title: On-call runbook, url: "https://wiki.acme.example/wiki-api"}
    spec: {type: service, lifecycle: production, owner: payments-team}
    """)


@pytest.fixture
async def bot(tmp_path):
    (tmp_path / "extra.yaml").write_text(EXTRA)
    async with SlackFake() as slack, GitHubFake() as github:
        slack.add_usergroup(PLATFORM_GROUP, "platform-oncall", [ALAN])
        github.add_repo("acme/orders", files={
            "mkdocs.yml": MKDOCS, "docs/index.md": "# Orders API\n\nThe orders API keeps every order and its state machine.\n",
            "docs/ops/deploy.md": "# Deploying\n\nMerge to main; Argo CD syncs the orders namespace.\n",
            "docs/runbook.md": "# Orders runbook\n\n## Stuck orders\n\nRestart the outbox relay: `kubectl -n orders rollout restart deploy/outbox`.\n"
                               "\n## Slow queries\n\nCheck the orders-db dashboard for lock waits.\n"})
        github.add_repo("acme/billing", files={"RUNBOOK.md": "# Billing runbook\n\n## Invoices not sent\n\nRetry the mailer job.\n"})
        running = await start_bot(tmp_path, slack, PAVEDROAD_CATALOG=f"{DEMO_CATALOG},{tmp_path / 'extra.yaml'}",
                                  GITHUB_API_URL=github.url, GITHUB_TOKEN=github.token,
                                  PAVEDROAD_OFFICE_HOURS_CHANNELS=QA, PAVEDROAD_OFFICE_HOURS_GROUP=PLATFORM_GROUP,
                                  PAVEDROAD_OFFICE_HOURS_DIGEST="mon 09:00")
        running.github = github
        await running.server.services.knowledge.reindex()   # as the first refresh does; waits for every page
        yield running
        await stop_bot(running)


async def command(bot: Bot, name: str, text: str, user: str = ADA) -> dict:
    status, body, url = await bot.command(name, text, user=user)
    assert status == 200, body
    return await bot.reply(url, timeout=10)


def text_of(payload: dict) -> str:
    return json.dumps(payload.get("blocks") or payload.get("text"), ensure_ascii=False)


async def test_runbook_from_disk_with_the_section_that_matches(bot: Bot):
    whole = await command(bot, "/runbook", "payment-service")
    assert whole["blocks"][0]["text"]["text"] == "Payment Service runbook"
    assert "Showing sections 1–" in text_of(whole) and whole["blocks"][-1]["elements"][0]["action_id"] == "runbook_more"
    section = await command(bot, "/runbook", "payment-service high latency")
    assert section["blocks"][0]["text"]["text"] == "Payment Service runbook: High latency"
    assert "PSP_ROUTING_OVERRIDE" in text_of(section)
    start = whole["blocks"][-1]["elements"][0]["value"]
    url = bot.slack.response_url()
    from tests.fakes.slack_requests import block_actions_body
    await bot.post(block_actions_body("runbook_more", start, user_id=ADA, response_url=url, block_id="runbook_more"))
    more = await bot.reply(url)
    assert more["blocks"][0]["text"]["text"] == "Payment Service runbook" and "Showing sections" in text_of(more)
    assert more["blocks"][1] != whole["blocks"][1]


async def test_runbook_from_the_repository_annotation_and_a_github_link(bot: Bot):
    orders = await command(bot, "/runbook", "orders-api stuck orders")
    assert orders["blocks"][0]["text"]["text"] == "Orders runbook: Stuck orders" and "outbox" in text_of(orders)
    assert "https://github.com/acme/orders/blob/main/docs/runbook.md#stuck-orders" in text_of(orders)
    billing = await command(bot, "/runbook", "billing-api")
    assert billing["blocks"][0]["text"]["text"] == "Billing runbook" and "Retry the mailer job" in text_of(billing)
    wiki = await command(bot, "/runbook", "wiki-api")
    assert "<https://wiki.acme.example/wiki-api|On-call runbook> (I can't read it from here)" in wiki["text"]
    nothing = await command(bot, "/runbook", "legacy-billing")
    assert "has no runbook yet" in nothing["text"]
    typo = await command(bot, "/runbook", "paymnt-servce")
    assert "Did you mean `payment-service`" in typo["text"]


async def test_docs_search_covers_techdocs_runbooks_and_faq(bot: Bot):
    deploying = await command(bot, "/docs", "how is orders deployed with argo")
    assert "Deploying" in text_of(deploying) and "`orders-api`" in text_of(deploying)
    postgres = await command(bot, "/docs", "postgres database for my team")
    assert "How do I get a Postgres database?" in text_of(postgres)
    assert "Nothing in the runbooks" in (await command(bot, "/docs", "quantum entanglement"))["text"]


async def ask(bot: Bot, text: str, ts: str, user: str = GRACE, channel: str = QA, **extra) -> int:
    event = {"type": "message", "channel": channel, "user": user, "text": text, "ts": ts, "channel_type": "channel", **extra}
    bot.slack.add_message(channel, text, user=user, ts=ts)
    status, _ = await bot.post(event_body(event, event_id=f"Ev{ts.replace('.', '')}"))
    return status


async def thread_reply(bot: Bot, ts: str) -> dict:
    return await bot.slack.wait_for_call("chat.postMessage", lambda a: a.get("thread_ts") == ts, timeout=10)


async def test_a_question_gets_answers_in_its_thread_and_buttons(bot: Bot):
    assert await ask(bot, "How can I get a postgres database for my team?", "1700000001.000100") == 200
    reply = await thread_reply(bot, "1700000001.000100")
    blocks = json.dumps(reply["blocks"])
    assert "How do I get a Postgres database?" in blocks
    assert "oh_answered" in blocks and "oh_help" in blocks


async def test_no_good_match_tags_the_platform_team(bot: Bot):
    await ask(bot, "Does anyone know a good ramen place near the office?", "1700000002.000100")
    reply = await thread_reply(bot, "1700000002.000100")
    assert f"<!subteam^{PLATFORM_GROUP}>" in json.dumps(reply["blocks"])
    questions = await command(bot, "/officehours", "open")
    assert "ramen place" in questions["text"]


async def test_the_bot_never_answers_bots_replies_edits_or_twice(bot: Bot):
    await ask(bot, "postgres database please", "1700000003.000100", bot_id="B0OTHER")
    await ask(bot, "postgres database please", "1700000004.000100", thread_ts="1700000001.000100")
    await ask(bot, "postgres database please", "1700000005.000100", subtype="message_changed")
    await ask(bot, "postgres database please", "1700000006.000100", channel="C0RANDOM")
    body = event_body({"type": "message", "channel": QA, "user": GRACE, "text": "How do I get a preview environment?",
                       "ts": "1700000007.000100"}, event_id="Ev0DUP")
    assert (await bot.post(body))[0] == 200
    assert (await bot.post(body, {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}))[0] == 200
    await thread_reply(bot, "1700000007.000100")
    await asyncio.sleep(0.5)
    replies = [a for a in bot.slack.calls("chat.postMessage") if a.get("thread_ts")]
    assert [a["thread_ts"] for a in replies] == ["1700000007.000100"]


async def test_a_mention_anywhere_is_answered(bot: Bot):
    event = {"type": "app_mention", "channel": "C0RANDOM", "user": GRACE, "ts": "1700000008.000100",
             "text": "<@U0BOT> how do I rotate a secret in vault?"}
    await bot.post(event_body(event, event_id="Ev0MENTION"))
    reply = await thread_reply(bot, "1700000008.000100")
    assert "Vault" in json.dumps(reply["blocks"])


async def test_an_accepted_answer_answers_the_next_person(bot: Bot):
    await ask(bot, "How do we get a feature flag for the checkout experiment?", "1700000010.000100")
    await thread_reply(bot, "1700000010.000100")
    bot.slack.add_message(QA, "Use LaunchDarkly: ask in #team-checkout for a flag key.", user=ALAN,
                          ts="1700000010.000200", thread_ts="1700000010.000100")
    reaction = {"type": "reaction_added", "user": GRACE, "reaction": "white_check_mark",
                "item": {"type": "message", "channel": QA, "ts": "1700000010.000200"}}
    await bot.post(event_body(reaction, event_id="Ev0REACT1"))                   # not the platform team: ignored
    await asyncio.sleep(0.3)
    assert not await bot.server.services.knowledge.search("launchdarkly flag key", kinds=["answer"])
    await bot.post(event_body({**reaction, "user": ALAN}, event_id="Ev0REACT2"))
    deadline = time.monotonic() + 5
    while not await bot.server.services.knowledge.search("launchdarkly flag key", kinds=["answer"]):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    await ask(bot, "feature flag for a checkout experiment?", "1700000011.000100", user=ADA)
    reply = json.dumps((await thread_reply(bot, "1700000011.000100"))["blocks"])
    assert "asked and answered before" in reply and permalink(QA, "1700000010.000100") in reply, reply
    stats = (await command(bot, "/officehours", "stats"))["text"]
    assert "2 question(s): 0 answered by the bot, 1 by people, 1 still open" in stats


async def test_save_as_answer_shortcut_and_self_served(bot: Bot):
    await ask(bot, "Where do I request a DNS name?", "1700000020.000100")
    await thread_reply(bot, "1700000020.000100")
    url = bot.slack.response_url()
    from tests.fakes.slack_requests import block_actions_body
    await bot.post(block_actions_body("oh_answered", f"{QA}|1700000020.000100", user_id=GRACE, response_url=url))
    assert "Marked as answered" in (await bot.reply(url))["text"]
    bot.slack.add_message(QA, "Open a PR on acme/dns with the record.", user=ALAN, ts="1700000021.000200",
                          thread_ts="1700000021.000100")
    bot.slack.add_message(QA, "How are DNS records made?", user=GRACE, ts="1700000021.000100")
    shortcut = {"type": "message_action", "callback_id": "save_as_answer", "trigger_id": "1.2.3", "user": {"id": ALAN},
                "team": {"id": "T0FAKE"}, "channel": {"id": QA}, "api_app_id": "A0FAKE",
                "message": {"ts": "1700000021.000200", "text": "Open a PR on acme/dns with the record.", "thread_ts": "1700000021.000100"},
                "response_url": (response := bot.slack.response_url())}
    assert (await bot.post(f"payload={json.dumps(shortcut)}".encode()))[0] == 200
    assert "Saved" in (await bot.reply(response))["text"]
    stats = (await command(bot, "/officehours", "stats 7d"))["text"]
    assert "answered by the bot, 1 by people" in stats and "Self-served: 50%" in stats


async def test_weekly_digest_is_posted_once(bot: Bot):
    services = bot.server.services
    await ask(bot, "How can I get a postgres database for my team?", "1700000030.000100")
    await thread_reply(bot, "1700000030.000100")
    monday_9 = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc).timestamp()
    assert not await post_digest_if_due(services_client(bot), services, monday_9 - 60)
    assert await post_digest_if_due(services_client(bot), services, monday_9 + 30)
    assert not await post_digest_if_due(services_client(bot), services, monday_9 + 90)
    digest = await bot.slack.wait_for_call("chat.postMessage", lambda a: "Office hours this week" in a.get("text", ""))
    assert digest["channel"] == QA


def services_client(bot: Bot):
    return bot.server.app.client
