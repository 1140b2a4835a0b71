"""`/dora SERVICE|TEAM [30d|90d]`: the four DORA metrics with their bands, the CI success rate,
and a chart of deliveries, failed deliveries and incidents per week.

Acknowledged at once; the figures come from the stored delivery events (refreshed first when
stale), and what could not be read is listed rather than shown as zero (domain:
`bot/metrics/dora_reports.py`)."""
from __future__ import annotations

import asyncio
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.metrics.charts import line_chart
from bot.metrics.dora import GITHUB_SLUG, PAGERDUTY_SERVICE, WINDOWS, Metric, Report, Target
from bot.services import Services
from commands.common import clip, escape, guarded, query_text, upload_png

USAGE = "Usage: `/dora SERVICE|TEAM [30d|90d]`, e.g. `/dora payment-service 90d` or `/dora payments-team`."
HELP = [("/dora SERVICE|TEAM [30d|90d]", "deployment frequency, lead time, change failure rate and time to restore, with DORA bands")]
BAND_EMOJI = {"elite": ":large_green_circle:", "high": ":large_blue_circle:", "medium": ":large_yellow_circle:",
              "low": ":red_circle:"}
MAX_MISSING_SHOWN = 8


def parse(text: str) -> tuple[str, int] | None:
    """(what, days) from `payment-service 90d`; None when the text is not that."""
    words = text.split()
    days = 30
    if words and words[-1].lower().rstrip("d").isdigit() and words[-1].lower().endswith("d"):
        days = int(words[-1][:-1])
        words = words[:-1]
        if days not in WINDOWS:
            return None
    return (" ".join(words), days) if words else None


def metric_line(metric: Metric) -> str:
    if not metric.has_data:
        return f"*{metric.name}*: _no data_ ({escape(metric.reason)})"
    band = f"{BAND_EMOJI.get(metric.band or '', '')} *{metric.band}*" if metric.band else ""
    note = f" · _{escape(metric.reason)}_" if metric.reason else ""
    return f"*{metric.name}*: {escape(metric.text)} {band}{note}"


def report_blocks(report: Report) -> list[dict[str, Any]]:
    target = report.target
    what = "service" if target.kind == "service" else f"team · {len(target.components)} services"
    header = (f"*DORA metrics for {escape(target.name)}* ({what}) · last {report.days} days "
              f"({report.since:%Y-%m-%d} → {report.until:%Y-%m-%d})")
    lines = [metric_line(m) for m in report.metrics]
    ci = report.ci
    if ci.rate is not None:
        lines.append(f"*CI success rate*: {escape(ci.text)}" + (f" · _{ci.excluded} cancelled/skipped runs left out_" if ci.excluded else ""))
    else:  # runs read but none finished, or GitHub not read at all (then its reason, as for the deployments)
        why = "no finished workflow runs on the default branch" if report.ci_by_repo else report.deployment_frequency.reason
        lines.append(f"*CI success rate*: _no data_ ({escape(why or 'no GitHub data')})")
    sources = sorted(set(report.sources.values()) - {"none"})
    if sources:
        read = f", read from GitHub at {report.as_of:%Y-%m-%d %H:%M} UTC" if report.as_of else ""
        lines.append(f"_Deliveries counted from {escape(' and '.join(sources))}{read}._")
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": header}},
                                    {"type": "section", "text": {"type": "mrkdwn", "text": clip("\n".join(lines), 3000)}}]
    if target.kind == "team" and len(report.ci_by_repo) > 1:
        rows = [f"`{escape(slug)}` {escape(rate.text)}" for slug, rate in sorted(
            report.ci_by_repo.items(), key=lambda kv: (kv[1].rate if kv[1].rate is not None else 2, kv[0]))[:10]]
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": clip("CI by repository (worst first): " + " · ".join(rows), 3000)}]})
    if report.missing:
        shown = report.missing[:MAX_MISSING_SHOWN]
        more = f"\n…and {len(report.missing) - len(shown)} more" if len(report.missing) > len(shown) else ""
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": clip(
            ":warning: Missing: " + "; ".join(escape(m) for m in shown) + more, 3000)}]})
    return blocks


def report_text(report: Report) -> str:
    return f"DORA metrics for {report.target.name}, last {report.days} days: " + "; ".join(
        f"{m.name} {m.text}" + (f" ({m.band})" if m.band else "") for m in report.metrics) + f"; CI success rate {report.ci.text}"


def chart_png(report: Report) -> bytes:
    series = {name: points for name, points in report.weekly.items() if points}
    return line_chart(f"{report.target.name}: per week, last {report.days} days", series, y_label="count")


async def upload_chart(client: AsyncWebClient, channel: str, user: str, png: bytes, report: Report) -> str:
    """Upload the chart to the channel (or the user's DM); "" when done, else why not."""
    where = await upload_png(client, png, channel=channel, user=user, filename=f"dora-{report.days}d.png",
                             title=f"DORA {report.target.name}, last {report.days} days",
                             alt_text="Deliveries, failed deliveries and incidents per week")
    return "" if where else "the upload failed; is the bot in this channel, with files:write?"


def register(app: AsyncApp, services: Services) -> None:
    catalog = services.catalog
    dora = services.dora

    async def acknowledge(ack: AsyncAck, command: dict[str, Any]) -> None:
        if parse(query_text(command.get("text"))) is None:
            await ack(text=USAGE)
        else:
            await ack(text=":hourglass_flowing_sand: Computing DORA metrics…")

    @guarded
    async def answer(command: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient) -> None:
        parsed = parse(query_text(command.get("text")))
        if parsed is None:
            return
        what, days = parsed
        if not catalog.loaded:
            await respond(response_type="ephemeral", text="The catalog is still loading; try again in a few seconds.")
            return
        target = dora.resolve(what)
        if not isinstance(target, Target):
            await respond(response_type="ephemeral", text=target)
            return
        if target.kind == "service" and not _has_sources(target):
            await respond(response_type="ephemeral", text=_missing_sources_text(target))
            return
        report = await dora.report(target, days)
        blocks = report_blocks(report)
        png = await asyncio.to_thread(chart_png, report) if any(report.weekly.values()) else None
        if png:
            failed = await upload_chart(client, str(command.get("channel_id", "")), str(command.get("user_id", "")),
                                        png, report)
            if failed:
                blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"The chart could not be posted here ({escape(failed)})."}]})
        await respond(response_type="ephemeral", replace_original=True, text=report_text(report), blocks=blocks)

    app.command("/dora")(ack=acknowledge, lazy=[answer])


def _has_sources(target: Target) -> bool:
    entity = target.components[0]
    return bool(entity.annotations.get(GITHUB_SLUG)) or bool(entity.annotations.get(PAGERDUTY_SERVICE))


def _missing_sources_text(target: Target) -> str:
    entity = target.components[0]
    missing = [f"`{a}` ({what})" for a, what in ((GITHUB_SLUG, "deployments, lead time, CI"),
                                                 (PAGERDUTY_SERVICE, "change failure rate, time to restore"))
               if not entity.annotations.get(a)]
    return (f"*{escape(entity.display_name)}* is missing {' and '.join(missing)} in its catalog annotations, "
            "so I can't compute its DORA metrics. Add them to its catalog-info.yaml.")
