"""Office hours in Slack: answer new questions in the Q&A channels (and mentions anywhere) in a
thread from the knowledge base, learn accepted answers (a ✅ reaction or the "Save as answer"
shortcut by the platform team), `/officehours open|stats`, and the weekly digest."""
from __future__ import annotations

import asyncio
import re
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.knowledge.search import Hit
from bot.officehours import Stats, permalink
from bot.services import Services
from commands.common import clip, escape, guarded, link, log, query_text

HELP = [
    ("/officehours open", "questions nobody has answered yet, oldest first"),
    ("/officehours stats [30d]", "questions, self-served rate and time to an answer"),
]
ACCEPT_REACTIONS = ("white_check_mark", "heavy_check_mark")
MENTION = re.compile(r"<@[A-Z0-9]+>")


class Pacer:
    """At most one message a second per channel, as Slack asks of apps."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._next: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def wait(self, channel: str) -> None:
        async with self._locks.setdefault(channel, asyncio.Lock()):
            delay = self._next.get(channel, 0.0) - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._next[channel] = time.monotonic() + self.interval


def age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return "just now"


def answer_blocks(hits: list[Hit], channel: str, ts: str, group: str) -> list[dict[str, Any]]:
    if not hits:
        who = f"<!subteam^{group}>" if group else "The platform team"
        return [{"type": "section", "text": {"type": "mrkdwn", "text":
                 f"I couldn't find a good answer in the runbooks, docs or FAQ. {who}, can you help?"}}]
    lines = []
    for hit in hits:
        title = f"{hit.title} — {hit.section}" if hit.section and hit.section != hit.title else hit.title
        label = "asked and answered before" if hit.kind == "answer" else hit.kind
        lines.append(f"• {link(hit.url, title) if hit.url else '*' + escape(title) + '*'} ({label})\n  {escape(clip(hit.snippet, 280))}")
    value = f"{channel}|{ts}"
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": clip("This might answer it:\n" + "\n".join(lines), 3000)}},
        {"type": "actions", "block_id": "oh_feedback", "elements": [
            {"type": "button", "action_id": "oh_answered", "value": value, "style": "primary",
             "text": {"type": "plain_text", "text": "This answered it"}},
            {"type": "button", "action_id": "oh_help", "value": value, "text": {"type": "plain_text", "text": "Still need help"}}]},
    ]


def stats_text(stats: Stats, title: str) -> str:
    rate = f"{stats.self_served_rate:.0%}" if stats.self_served_rate is not None else "no questions yet"
    median = age(stats.median_seconds_to_answer) if stats.median_seconds_to_answer is not None else "no answers yet"
    topics = ", ".join(f"{t} ({n})" for t, n in stats.topics) or "none yet"
    return (f"*{title}*\n• {stats.questions} question(s): {stats.self_served} answered by the bot, "
            f"{stats.answered_by_people} by people, {stats.still_open} still open\n• Self-served: {rate}\n"
            f"• Median time to an answer: {median}\n• Top topics: {topics}")


def register(app: AsyncApp, services: Services) -> None:
    office_hours, settings = services.office_hours, services.settings
    channels = set(settings.office_hours_channels)
    pacer = Pacer()
    team_cache: dict[str, tuple[set[str], float]] = {}

    async def platform_team(client: AsyncWebClient, user: str) -> bool:
        """Members of the office-hours user group, and the platform admins."""
        if services.policy.is_admin(await services.people.whois(user)):
            return True
        group = settings.office_hours_group
        if not group:
            return False
        members, fetched = team_cache.get(group, (set(), 0.0))
        if time.monotonic() - fetched > 300:
            try:
                members = set((await client.usergroups_users_list(usergroup=group)).get("users") or [])
                team_cache[group] = (members, time.monotonic())
            except SlackApiError as exc:
                log.warning("could not read user group %s: %s", group, exc.response.get("error"))
        return user in members

    async def reply(client: AsyncWebClient, channel: str, ts: str, user: str, text: str) -> None:
        asked = await office_hours.ask(channel, ts, user, text)
        if not asked.first_time:
            return  # Slack delivered the same message again
        await pacer.wait(channel)
        await client.chat_postMessage(channel=channel, thread_ts=ts, text="Here is what I found",
                                      blocks=answer_blocks(asked.answers, channel, ts, settings.office_hours_group))

    async def on_message(event: dict[str, Any], client: AsyncWebClient, context: dict[str, Any]) -> None:
        """New top-level questions in the Q&A channels only: never bots, edits, deletions or replies."""
        if (event.get("channel") not in channels or event.get("subtype") or event.get("bot_id")
                or event.get("thread_ts") not in (None, event.get("ts")) or not (event.get("text") or "").strip()):
            return
        if f"<@{context.get('bot_user_id')}>" in event["text"]:
            return  # the app_mention event answers it
        await reply(client, event["channel"], event["ts"], event.get("user", ""), event["text"])

    async def on_mention(event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("bot_id") or event.get("subtype"):
            return
        question = MENTION.sub("", event.get("text") or "").strip()
        if question:
            await reply(client, event["channel"], event.get("thread_ts") or event["ts"], event.get("user", ""), question)

    async def accept_from_thread(client: AsyncWebClient, channel: str, answer_ts: str, by: str) -> bool:
        thread = (await client.conversations_replies(channel=channel, ts=answer_ts, limit=200)).get("messages") or []
        answer = next((m for m in thread if m.get("ts") == answer_ts), None)
        parent_ts = (answer or {}).get("thread_ts")
        question = next((m for m in thread if m.get("ts") == parent_ts), None)
        if answer is None or question is None or parent_ts == answer_ts or not (answer.get("text") or "").strip():
            return False  # not a reply in a thread (a reaction on the question itself is not an answer)
        await office_hours.accept(channel, question["ts"], question.get("text", ""), answer["text"], by)
        return True

    async def on_reaction(event: dict[str, Any], client: AsyncWebClient) -> None:
        item = event.get("item") or {}
        if (event.get("reaction") not in ACCEPT_REACTIONS or item.get("type") != "message"
                or item.get("channel") not in channels or not await platform_team(client, event.get("user", ""))):
            return
        await accept_from_thread(client, item["channel"], item["ts"], event["user"])

    async def ack_only(ack: AsyncAck) -> None:
        await ack()

    @guarded
    async def save_as_answer(body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
        user, channel, message = body["user"]["id"], body["channel"]["id"], body.get("message") or {}
        if not await platform_team(client, user):
            text = "Only the platform team can save answers."
        elif await accept_from_thread(client, channel, message.get("ts", ""), user):
            text = "Saved: the next person who asks this gets that answer."
        else:
            text = "Use this on a reply in a question's thread (not on the question itself)."
        await respond(response_type="ephemeral", text=text)

    @guarded
    async def answered(action: dict[str, Any], body: dict[str, Any], respond: AsyncRespond) -> None:
        channel, _, ts = str(action.get("value", "")).partition("|")
        await office_hours.self_served(channel, ts, body["user"]["id"])
        await respond(response_type="ephemeral", replace_original=False, text="Glad it helped. Marked as answered.")

    @guarded
    async def need_help(action: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
        channel, _, ts = str(action.get("value", "")).partition("|")
        who = f"<!subteam^{settings.office_hours_group}>" if settings.office_hours_group else "Platform team"
        await pacer.wait(channel)
        await client.chat_postMessage(channel=channel, thread_ts=ts, text=f"{who}, this one still needs a person.")
        await respond(response_type="ephemeral", replace_original=False, text="I've asked the platform team to step in.")

    async def acknowledge(ack: AsyncAck, command: dict[str, Any]) -> None:
        verb = query_text(command.get("text")).split(" ")[0]
        await ack() if verb in ("open", "stats") else await ack(text="Usage: " + " · ".join(f"`{u}`: {t}" for u, t in HELP))

    @guarded
    async def officehours(command: dict[str, Any], respond: AsyncRespond) -> None:
        verb, _, rest = query_text(command.get("text")).partition(" ")
        now = time.time()
        if verb == "open":
            questions = await office_hours.still_open()
            lines = [f"• {link(permalink(q.channel, q.ts), clip(q.text, 80))} by <@{q.user}>, asked {age(now - q.asked_at)} ago"
                     for q in questions]
            await respond(response_type="ephemeral", text="\n".join(lines) or "No open questions. :tada:")
        else:
            days = int(match.group(1)) if (match := re.fullmatch(r"(\d{1,3})d", rest.strip())) else 30
            stats = await office_hours.stats(days)
            await respond(response_type="ephemeral", text=stats_text(stats, f"Office hours, last {days} days"))

    app.event("message")(on_message)
    app.event("app_mention")(on_mention)
    app.event("reaction_added")(on_reaction)
    app.shortcut("save_as_answer")(ack=ack_only, lazy=[save_as_answer])
    app.action("oh_answered")(ack=ack_only, lazy=[answered])
    app.action("oh_help")(ack=ack_only, lazy=[need_help])
    app.command("/officehours")(ack=acknowledge, lazy=[officehours])


async def post_digest_if_due(client: AsyncWebClient, services: Services, now: float | None = None) -> bool:
    """The weekly digest, once per week across replicas, at the day and time of the settings."""
    settings = services.settings
    if settings.office_hours_digest is None or not settings.office_hours_channels:
        return False
    moment = datetime.fromtimestamp(time.time() if now is None else now, timezone.utc)
    weekday, hour, minute = settings.office_hours_digest
    if moment.weekday() != weekday or (moment.hour, moment.minute) < (hour, minute):
        return False
    year, week, _ = moment.isocalendar()
    if not await services.leases.acquire(f"digest:{year}-W{week:02d}", uuid.uuid4().hex, 8 * 86400, moment.timestamp()):
        return False  # posted already this week
    stats = await services.office_hours.stats(7, moment.timestamp())
    still_open = await services.office_hours.still_open(5)
    text = stats_text(stats, "Office hours this week")
    if still_open:
        text += "\n*Still open*\n" + "\n".join(f"• {link(permalink(q.channel, q.ts), clip(q.text, 80))}" for q in still_open)
    for channel in settings.office_hours_channels:
        await client.chat_postMessage(channel=channel, text=text)
    return True
