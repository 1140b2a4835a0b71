"""`/platform`: the platform team's own figures (`stats`, with a trend chart uploaded to Slack),
service scorecards per team (`scorecard`), developer NPS (`feedback` opens a 0–10 modal;
`comments` shows what people wrote, to platform admins), and the periodic NPS survey DM
(`post_survey_if_due`, a background job like the office-hours digest)."""
from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.catalog.refs import short_ref
from bot.metrics.charts import line_chart
from bot.metrics.delivery_data import KEEP_DAYS
from bot.metrics.dora import CiRate
from bot.metrics.platform import DAY, BadWindow, PlatformFigures, PlatformMetrics, active_users, parse_window
from bot.metrics.scorecard import TeamScorecard, all_scorecards, find_team, load_checks, owning_teams, team_scorecard
from bot.services import Services
from commands.common import clip, escape, guarded, log, query_text, upload_png

HELP = [
    ("/platform stats [30d]", "the platform's own figures over a window (golden paths, environments, office hours, "
                              "catalog coverage, NPS) with a trend chart"),
    ("/platform scorecard [TEAM]", "catalog checks for each service of a team, worst gaps first (all teams without TEAM)"),
    ("/platform feedback", "tell the platform team how it is going: 0–10 and a comment"),
]
USAGE = ("Usage: `/platform stats [7d|30d|90d]`, `/platform scorecard [TEAM]`, `/platform feedback`, "
         "`/platform comments [30d]` (platform admins).")
VERBS = ("stats", "scorecard", "feedback", "comments", "help")
FEEDBACK_VIEW = "platform_feedback"
FEEDBACK_BUTTON = "platform_feedback_open"
NO_DATA = "_no data_"
MAX_COMPONENTS = 15


def duration(seconds: float | None) -> str:
    """`95` → `1m 35s`, `7200` → `2h 0m`; no data for None."""
    if seconds is None:
        return NO_DATA
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60}s"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600}h"


def count(value: int | None) -> str:
    return NO_DATA if value is None else f"{value:,}"


def share(value: float | None) -> str:
    return NO_DATA if value is None else f"{100 * value:.0f}%"


def stats_lines(figures: PlatformFigures) -> list[str]:
    """One line per figure, each with its window; "no data" where nothing was recorded."""
    window = figures.window.label
    golden, envs, office, coverage, nps, adoption = (figures.golden_path, figures.environments, figures.office_hours,
                                                     figures.coverage, figures.nps, figures.adoption)

    def line(title: str, when: str, figure: str | None) -> str:
        return f"*{title}* ({when}): {NO_DATA if figure is None else figure}"

    people = "person" if nps.responses == 1 else "people"
    return [
        line("Services created through golden paths", window, None if golden.created is None else (
            f"{golden.created:,} · time to create: median {duration(golden.median_seconds)}, "
            f"p90 {duration(golden.p90_seconds)} · failed runs: {golden.failed:,}")),
        line("Environments", window, None if envs.created is None else (
            f"{envs.created:,} created · {envs.expired:,} expired · {envs.active:,} active at the end of the window")),
        line("Office-hours questions", window, None if office.questions is None else (
            f"{office.questions:,} · self-served by the bot: {office.self_served:,} ({share(office.self_served_rate)})")),
        line("Catalog coverage", "now", None if coverage.share is None else (
            f"{share(coverage.share)} of components have an owner found in the catalog "
            f"({coverage.with_resolvable_owner:,} of {coverage.components:,})")),
        line("People using pavedroad", window, None if adoption is None else (
            f"{adoption.people:,} · {adoption.actions:,} commands, buttons and forms · most used: "
            + ", ".join(f"`{escape(action)}` {uses:,}" for action, uses in adoption.top))),
        line("Developer NPS", window, f"{NO_DATA} · `/platform feedback` to give yours" if nps.score is None else (
            f"{nps.score:+.0f} from {nps.responses:,} {people} (promoters {nps.promoters}, "
            f"passives {nps.passives}, detractors {nps.detractors})")),
    ]


def stats_blocks(label: str, lines: list[str]) -> list[dict[str, Any]]:
    return [
        {"type": "header", "text": {"type": "plain_text", "text": f"Platform figures, {label}"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": clip("\n".join(f"• {line}" for line in lines), 3000)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": (
            "From what pavedroad recorded: golden-path runs, environments, office-hours questions, feedback, "
            "and the GitHub Actions runs it collects. Definitions: docs/platform-metrics.md.")}]},
    ]


def scorecard_blocks(card: TeamScorecard, titles: dict[str, str]) -> list[dict[str, Any]]:
    team = short_ref(card.team)
    if card.score is None:
        return [{"type": "section", "text": {"type": "mrkdwn", "text": f"`{escape(team)}` owns no components."}}]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": clip(f"Scorecard: {team}", 150)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": (
            f"*Score {100 * card.score:.0f}%* over {len(card.components)} component(s).")}},
    ]
    if card.gaps:
        gaps = "\n".join(f"• *{escape(titles.get(g.check.id, g.check.id))}*: missing on {len(g.failing)} "
                         f"({escape(clip(', '.join(g.failing), 300))})" for g in card.gaps[:8])
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": clip(f"*Worst gaps*\n{gaps}", 2900)}})
    else:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "Every check passes. :tada:"}})
    lines = [f"• `{escape(c.name)}` {100 * c.score:.0f}%" + (f": missing {escape(', '.join(c.failed))}" if c.failed else "")
             for c in card.components[:MAX_COMPONENTS]]
    if len(card.components) > MAX_COMPONENTS:
        lines.append(f"… and {len(card.components) - MAX_COMPONENTS} more")
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": clip("*By component, worst first*\n" + "\n".join(lines), 2900)}})
    return blocks


def overview_blocks(cards: list[TeamScorecard], titles: dict[str, str]) -> list[dict[str, Any]]:
    if not cards:
        return [{"type": "section", "text": {"type": "mrkdwn", "text": "No component in the catalog names an owner."}}]
    lines = []
    for card in cards[:40]:
        worst = f"; worst gap: {escape(titles.get(card.gaps[0].check.id, card.gaps[0].check.id))}" if card.gaps else ""
        score = f"{100 * card.score:.0f}%" if card.score is not None else NO_DATA
        lines.append(f"• `{escape(short_ref(card.team))}` {score} ({len(card.components)} components){worst}")
    return [{"type": "header", "text": {"type": "plain_text", "text": "Scorecards by team, worst first"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": clip("\n".join(lines), 2900)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "`/platform scorecard TEAM` for a team's details."}]}]


def feedback_modal(source: str = "command") -> dict[str, Any]:
    options = [{"text": {"type": "plain_text", "text": str(n) + {0: " (not at all likely)", 10: " (extremely likely)"}.get(n, "")},
                "value": str(n)} for n in range(11)]
    return {
        "type": "modal", "callback_id": FEEDBACK_VIEW, "private_metadata": source,
        "title": {"type": "plain_text", "text": "Platform feedback"},
        "submit": {"type": "plain_text", "text": "Send"}, "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "input", "block_id": "score", "label": {"type": "plain_text", "text": (
                "How likely are you to recommend our platform to a colleague?")},
             "element": {"type": "static_select", "action_id": "value", "options": options,
                         "placeholder": {"type": "plain_text", "text": "0 to 10"}}},
            {"type": "input", "block_id": "comment", "optional": True,
             "label": {"type": "plain_text", "text": "What is the main reason? What should we improve?"},
             "element": {"type": "plain_text_input", "action_id": "value", "multiline": True, "max_length": 3000}},
        ],
    }


def feedback_values(view: dict[str, Any]) -> tuple[int | None, str]:
    values = (view.get("state") or {}).get("values") or {}
    chosen = ((values.get("score") or {}).get("value") or {}).get("selected_option") or {}
    raw = str(chosen.get("value", ""))
    score = int(raw) if raw.isdigit() and 0 <= int(raw) <= 10 else None
    comment = str(((values.get("comment") or {}).get("value") or {}).get("value") or "")
    return score, comment


def survey_blocks() -> list[dict[str, Any]]:
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": (
            "Hi! The platform team would like to know how it is going. *How likely are you to recommend our "
            "platform to a colleague?* It takes 20 seconds: a number from 0 to 10 and, if you like, why.")}},
        {"type": "actions", "block_id": "platform_survey", "elements": [
            {"type": "button", "action_id": FEEDBACK_BUTTON, "value": "survey", "style": "primary",
             "text": {"type": "plain_text", "text": "Give feedback"}}]},
    ]


async def post_survey_if_due(client: AsyncWebClient, services: Services, now: float | None = None) -> int | None:
    """The NPS survey, once per `PAVEDROAD_NPS_SURVEY_DAYS` period across replicas, as a DM to each
    person who used the bot in the last period. Returns how many were asked; None when not due."""
    days = services.settings.nps_survey_days
    if days <= 0:
        return None
    now = time.time() if now is None else now
    period = days * DAY
    if not await services.leases.acquire(f"nps-survey:{days}d:{int(now // period)}", uuid.uuid4().hex, period + DAY, now):
        return None  # sent already in this period
    users = await active_users(services.db, now - period, now)
    sent = 0
    for user in users:
        try:
            await client.chat_postMessage(channel=user, text="How likely are you to recommend our platform to a colleague?",
                                          blocks=survey_blocks())
            sent += 1
        except (SlackApiError, OSError, TimeoutError) as exc:
            log.warning("could not send the NPS survey to %s: %s", user, exc.__class__.__name__)
    await services.audit.record("pavedroad", "nps.survey", f"{len(users)} active users", "ok", f"sent to {sent}")
    return sent


def ci_success_text(total: CiRate, per_repo: dict[str, CiRate], missing: list[str], label: str) -> str:
    """The organisation's CI success rate: the total, the worst repositories, and what could not be read."""
    text = f"*CI success rate* (GitHub Actions on default branches, {label}): "
    text += f"{total.text} over {len(per_repo)} repositories" if total.rate is not None else "_no data_"
    rated = sorted((rate.rate, slug) for slug, rate in per_repo.items() if rate.rate is not None)
    if len(rated) > 1:
        text += " · lowest: " + ", ".join(f"`{escape(slug)}` {rate * 100:.0f}%" for rate, slug in rated[:3])
    if missing:
        text += f" · not read: {len(missing)} ({escape(clip(missing[0], 120))}{', ...' if len(missing) > 1 else ''})"
    return text


def register(app: AsyncApp, services: Services) -> None:
    settings, people, policy = services.settings, services.people, services.policy
    metrics = PlatformMetrics(services.db, lambda: services.catalog.index, usage=services.usage)
    checks = load_checks(settings.scorecard_file)
    titles = {c.id: c.title for c in checks}

    async def acknowledge(ack: AsyncAck, command: dict[str, Any]) -> None:
        verb = query_text(command.get("text")).partition(" ")[0].lower()
        if verb in ("", "help"):
            await ack(text=USAGE + "\n" + "\n".join(f"• `{usage}`: {text}" for usage, text in HELP))
        elif verb not in VERBS:
            await ack(text=USAGE)
        else:
            await ack()

    @guarded
    async def answer(command: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient) -> None:
        verb, _, rest = query_text(command.get("text")).partition(" ")
        verb = verb.lower()
        if verb == "feedback":
            await client.views_open(trigger_id=command["trigger_id"], view=feedback_modal())
        elif verb == "stats":
            await stats(command, respond, client, rest)
        elif verb == "scorecard":
            await scorecard(respond, rest.strip())
        elif verb == "comments":
            await comments(command, respond, rest)

    async def stats(command: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient, rest: str) -> None:
        try:
            days = parse_window(rest)
        except BadWindow as exc:
            await respond(response_type="ephemeral", text=f":warning: {exc}")
            return
        figures, ci = await asyncio.gather(metrics.figures(days), services.dora.org_ci_success(days))
        ci_label = figures.window.label if days <= KEEP_DAYS else f"last {KEEP_DAYS} days; older runs are not kept"
        lines = [*stats_lines(figures), ci_success_text(*ci, label=ci_label)]
        await respond(response_type="in_channel", text="\n".join(lines), blocks=stats_blocks(figures.window.label, lines))
        png = await asyncio.to_thread(line_chart, f"Platform trends, {figures.window.label} (per week)",
                                      figures.trends, "count per week")
        where = await upload_png(client, png, channel=command.get("channel_id", ""), user=command["user_id"],
                                 filename=f"platform-stats-{days}d.png", title=f"Platform trends, {figures.window.label}",
                                 alt_text="Weekly people using the bot, services created, environments created and office-hours questions")
        if where is None:
            await respond(response_type="ephemeral", replace_original=False,
                          text="I could not upload the chart here (is the bot in this channel, with files:write?).")

    async def scorecard(respond: AsyncRespond, team_text: str) -> None:
        index = services.catalog.index
        if not team_text:
            await respond(response_type="ephemeral", text="Scorecards by team",
                          blocks=overview_blocks(all_scorecards(index, checks), titles))
            return
        team = find_team(team_text, index)
        if team is None:
            known = ", ".join(f"`{escape(short_ref(t))}`" for t in owning_teams(index)[:20]) or "none"
            await respond(response_type="ephemeral",
                          text=f"I found no team `{escape(clip(team_text, 80))}` owning components. Teams: {known}.")
            return
        card = team_scorecard(team, index, checks)
        await respond(response_type="ephemeral", text=f"Scorecard for {short_ref(team)}", blocks=scorecard_blocks(card, titles))

    async def comments(command: dict[str, Any], respond: AsyncRespond, rest: str) -> None:
        person = await people.whois(command["user_id"])
        if not policy.is_admin(person):
            await respond(response_type="ephemeral", text="Feedback comments are for platform admins (PAVEDROAD_PLATFORM_ADMINS).")
            return
        try:
            days = parse_window(rest)
        except BadWindow as exc:
            await respond(response_type="ephemeral", text=f":warning: {exc}")
            return
        rows = await metrics.feedback.comments(days)
        text = "\n".join(f"• *{r.score}* <@{r.user_id}>: {escape(clip(r.comment, 400))}" for r in rows)
        await respond(response_type="ephemeral", text=clip(f"*Feedback comments, last {days} days*\n" + text, 3000)
                      if rows else f"No feedback comments in the last {days} days.")

    async def open_from_button(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        """The survey's button: open the modal at once, while the trigger id is fresh."""
        await ack()
        await client.views_open(trigger_id=body["trigger_id"], view=feedback_modal("survey"))

    async def check_feedback(ack: AsyncAck, view: dict[str, Any]) -> None:
        score, _ = feedback_values(view)
        if score is None:
            await ack(response_action="errors", errors={"score": "Pick a number from 0 to 10."})
        else:
            await ack()

    @guarded
    async def store_feedback(view: dict[str, Any], body: dict[str, Any], client: AsyncWebClient) -> None:
        score, comment = feedback_values(view)
        if score is None:
            return
        user = body["user"]["id"]
        source = view.get("private_metadata") if view.get("private_metadata") in ("command", "survey") else "command"
        if await metrics.feedback.record(user, score, comment, key=f"view:{view['id']}", source=source):
            try:
                await client.chat_postMessage(channel=user, text=f"Thank you: your {score}/10 reached the platform team.")
            except (SlackApiError, OSError, TimeoutError) as exc:
                log.warning("could not thank %s: %s", user, exc.__class__.__name__)

    app.command("/platform")(ack=acknowledge, lazy=[answer])
    app.action(FEEDBACK_BUTTON)(open_from_button)
    app.view(FEEDBACK_VIEW)(ack=check_feedback, lazy=[store_feedback])
