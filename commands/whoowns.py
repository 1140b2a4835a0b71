"""`/whoowns NAME`: who owns a thing and everything an on-call engineer needs about it, in one
message; buttons to page on-call, share the answer in the channel and list dependencies.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.catalog.entity import Entity
from bot.catalog.index import CatalogIndex
from bot.catalog.refs import short_ref
from bot.ownership import Answer, Team
from bot.paging import PagingError
from bot.services import Services
from commands.common import clip, escape, guarded, link, query_text

HELP = [
    ("/whoowns NAME", "owner, on-call, runbook, dependencies and health of a service (name, title or kind:namespace/name)"),
]
USAGE = ("Tell me what to look up: `/whoowns payment-service`, `/whoowns Payment Service` or "
         "`/whoowns component:default/payment-service`.")
DEPENDENCY_LIMIT = 8


def _when(moment: datetime | None) -> str:
    """A time Slack shows in each reader's own time zone."""
    if moment is None:
        return "until further notice"
    return f"until <!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{moment:%Y-%m-%d %H:%M} UTC>"


def _team_line(team: Team) -> str:
    parts = [f"*{escape(team.name)}*"]
    if team.channel_id:
        parts.append(f"<#{team.channel_id}>")
    elif team.channel_name:
        parts.append(f"#{escape(team.channel_name)}")
    elif team.email:
        parts.append(link(f"mailto:{team.email}", team.email))
    return " · ".join(parts)


def _names(keys: list[str], limit: int = DEPENDENCY_LIMIT, label: Callable[[str], str] = short_ref) -> str:
    shown = ", ".join(f"`{escape(label(k))}`" for k in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "") if keys else "none"


def _oncall_text(answer: Answer) -> str:
    if "on-call" in answer.missing:
        return f"_unavailable: {escape(answer.missing['on-call'])}_"
    if not answer.oncall_people:
        return "_nobody is on call on this escalation policy_"
    lines = []
    for person in answer.oncall_people:
        who = f"<@{person.slack_id}>" if person.slack_id else escape(person.name)
        lines.append(f"L{person.level} {who} {_when(person.until)}")
    return "\n".join(lines)


def _policy(answer: Answer) -> str:
    if answer.oncall is None or not answer.oncall.escalation_policy:
        return ""
    return f" ({link(answer.oncall.service_url, answer.oncall.escalation_policy)})"


def _incidents_text(answer: Answer) -> str:
    if answer.oncall is None:
        return ""
    if not answer.oncall.incidents:
        return "none open"
    return "\n".join(f"{link(i.url, f'#{i.number}')} {escape(clip(i.title, 80))} ({i.status}, {i.urgency} urgency)"
                     for i in answer.oncall.incidents)


def _health_text(answer: Answer) -> str:
    if "health" in answer.missing:
        return f"_unavailable: {escape(answer.missing['health'])}_"
    health = answer.health
    if health is None or not health.deployments and not health.pods:
        return "_no deployments or pods match in Kubernetes_"
    ready = sum(d.ready for d in health.deployments)
    desired = sum(d.desired for d in health.deployments)
    icon = ":large_green_circle:" if health.healthy else ":red_circle:"
    text = f"{icon} {ready}/{desired} replicas ready in {len(health.deployments)} deployment(s)"
    if health.pods_not_ready:
        text += f"\n{len(health.pods_not_ready)} pod(s) not ready: {_names(list(health.pods_not_ready), 3, label=str)}"
    text += f"\n{health.restarts} restart(s) in all; {health.recent_restarts} container(s) restarted in the last hour"
    return text


def answer_blocks(answer: Answer, shared_by: str = "", can_page: bool = False) -> list[dict[str, Any]]:
    """The whole answer as Block Kit, pure data (tested without Slack)."""
    entity = answer.entity
    data = entity.data
    metadata, spec = data.get("metadata") or {}, data.get("spec") or {}
    kind_line = " · ".join(escape(x) for x in (entity.kind, spec.get("type"), spec.get("lifecycle")) if isinstance(x, str))
    intro = f"`{escape(entity.key)}` · {kind_line}"
    if isinstance(metadata.get("description"), str):
        intro += f"\n{escape(clip(metadata['description'].strip(), 600))}"
    where = [f"System: `{short_ref(answer.system)}`" if answer.system else "",
             f"Domain: `{short_ref(answer.domain)}`" if answer.domain else "",
             "Tags: " + ", ".join(escape(t) for t in metadata.get("tags") or [] if isinstance(t, str)) if metadata.get("tags") else ""]
    owner = _team_line(answer.owner) if answer.owner else f"_unknown: {escape(answer.owner_missing or 'no owner set')}_"
    escalation = " → ".join(_team_line(t) for t in answer.escalation) or "_no parent group_"
    links = " · ".join(link(item.url, item.title) for item in answer.links) or "none"
    fields = [
        f"*Owner*\n{owner}",
        f"*Escalation path*\n{escalation}",
        f"*On call now*{_policy(answer)}\n{_oncall_text(answer)}",
        f"*Runbook*\n{link(answer.runbook.url, answer.runbook.title)}" if answer.runbook else "*Runbook*\n_none linked_",
        f"*Links*\n{links}",
        f"*Source*\n{link(answer.repository_url, answer.repository) if answer.repository else '_no github.com/project-slug_'}" + (
            f"\nDocs: {link(answer.docs_url, 'TechDocs') if answer.docs_url else f'`{escape(answer.docs)}`'}" if answer.docs else ""),
        f"*Depends on* ({len(answer.depends_on)})\n{_names(answer.depends_on)}",
        f"*Dependents* ({len(answer.dependents)} direct, {answer.blast_radius} in all)\n{_names(answer.dependents)}",
        f"*Health*\n{_health_text(answer)}",
    ]
    if answer.oncall is not None:
        fields.insert(3, f"*Open incidents*\n{_incidents_text(answer)}")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": clip(entity.display_name, 150)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": clip(intro, 3000)}},
    ]
    if any(where):
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": clip(" · ".join(w for w in where if w), 3000)}]})
    for start in range(0, len(fields), 10):
        blocks.append({"type": "section", "fields": [{"type": "mrkdwn", "text": clip(f, 2000)} for f in fields[start:start + 10]]})
    if answer.missing:
        missing = "; ".join(f"{part}: {reason}" for part, reason in answer.missing.items())
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": clip(f":grey_question: Missing from this answer: {escape(missing)}", 3000)}]})
    if shared_by:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"Shared by <@{shared_by}>"}]})
    else:
        blocks.append({"type": "actions", "block_id": "whoowns_actions", "elements": _buttons(answer, can_page)})
    return blocks


def _buttons(answer: Answer, can_page: bool) -> list[dict[str, Any]]:
    key = answer.entity.key
    buttons = []
    if can_page:
        buttons.append({
            "type": "button", "action_id": "whoowns_page", "value": key, "style": "danger",
            "text": {"type": "plain_text", "text": "Page on-call"},
            "confirm": {"title": {"type": "plain_text", "text": "Page on-call?"},
                        "text": {"type": "mrkdwn", "text": f"This pages whoever is on call for *{escape(clip(answer.entity.display_name, 100))}* now."},
                        "confirm": {"type": "plain_text", "text": "Page"}, "deny": {"type": "plain_text", "text": "Cancel"},
                        "style": "danger"},
        })
    buttons.append({"type": "button", "action_id": "whoowns_share", "value": key, "text": {"type": "plain_text", "text": "Share in channel"}})
    buttons.append({"type": "button", "action_id": "whoowns_dependencies", "value": key, "text": {"type": "plain_text", "text": "Dependencies"}})
    return buttons


def not_found_text(query: str, suggestions: tuple[str, ...]) -> str:
    text = f"I couldn't find *{escape(clip(query, 100))}* in the catalog."
    if suggestions:
        return text + " Did you mean " + ", ".join(f"`{escape(s)}`" for s in suggestions) + "?"
    return text + (" Search by name (`payment-service`), title (`Payment Service`) or reference "
                   "(`component:default/payment-service`); names are matched in any case.")


def dependencies_text(index: CatalogIndex, key: str) -> str:
    def lines(keys: list[str]) -> str:
        return "\n".join(f"• `{escape(k)}`" + ("" if k in index.entities else " _(not in the catalog)_") for k in keys) or "• none"
    direct = index.dependents(key)
    return (f"*Dependencies of `{escape(key)}`*\n*Depends on*\n{lines(index.dependencies(key))}\n"
            f"*Directly depended on by*\n{lines(direct)}\n"
            f"*Everything affected if it fails:* {index.blast_radius(key)} entities")


def register(app: AsyncApp, services: Services) -> None:
    catalog, ownership, people, paging = services.catalog, services.ownership, services.people, services.paging

    # One listener that acknowledges, then answers: the answer continues after Bolt has sent the
    # acknowledgement. Lazy listeners would deep-copy every request first, and this is the
    # command an incident brings fifty of at once.
    async def answer(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        query = query_text(command.get("text"))
        await ack(**({} if query else {"text": USAGE}))
        if query:
            await _answer(query, respond=respond)

    @guarded
    async def _answer(query: str, *, respond: AsyncRespond) -> None:
        if not catalog.loaded:
            await respond(response_type="ephemeral", text="The catalog is still loading; try again in a few seconds.")
            return
        index = catalog.index
        found = index.find(query)
        if found.entity is None:
            await respond(response_type="ephemeral", text=not_found_text(query, found.suggestions))
            return
        result = await ownership.answer(index, found.entity)
        can_page = paging.route(found.entity, index.entities.get(index.owner_of(found.entity.key))) is not None
        await respond(response_type="ephemeral", text=f"{escape(found.entity.display_name)}: owner and on-call",
                      blocks=answer_blocks(result, can_page=can_page))

    async def ack_action(ack: AsyncAck) -> None:
        await ack()

    async def _entity(action: dict[str, Any], respond: AsyncRespond) -> Entity | None:
        """The entity a button names, or None after telling the user it has gone."""
        entity = catalog.index.entities.get(str(action.get("value", "")))
        if entity is None:
            await respond(response_type="ephemeral", replace_original=False, text="That entity is no longer in the catalog.")
        return entity

    @guarded
    async def share(action: dict[str, Any], body: dict[str, Any], respond: AsyncRespond) -> None:
        entity = await _entity(action, respond)
        if entity is None:
            return
        result = await ownership.answer(catalog.index, entity)
        await respond(response_type="in_channel", replace_original=False, text=f"{escape(entity.display_name)}: owner and on-call",
                      blocks=answer_blocks(result, shared_by=body["user"]["id"]))
        await respond(delete_original=True)

    @guarded
    async def dependencies(action: dict[str, Any], respond: AsyncRespond) -> None:
        index = catalog.index
        key = str(action.get("value", ""))
        await respond(response_type="ephemeral", replace_original=False, text=clip(dependencies_text(index, key), 3000))

    @guarded
    async def page(action: dict[str, Any], body: dict[str, Any], respond: AsyncRespond) -> None:
        entity = await _entity(action, respond)
        if entity is None:
            return
        index = catalog.index
        owner = index.entities.get(index.owner_of(entity.key))
        person = await people.whois(body["user"]["id"])
        try:
            outcome = await paging.page(entity, owner, person, reason="")
        except PagingError as exc:
            await respond(response_type="ephemeral", replace_original=False, text=f":warning: Not paged: {escape(exc)}")
            return
        if not outcome.paged:
            by = f"<@{outcome.paged_by}>" if outcome.paged_by else "someone"
            await respond(response_type="ephemeral", replace_original=False,
                          text=f"On-call for *{escape(entity.display_name)}* was already paged by {by} "
                               f"<!date^{int(outcome.at)}^{{ago}}|recently>; not paging again.")
            return
        via = "PagerDuty Events API" if outcome.method == "events" else f"PagerDuty incident {escape(outcome.reference)}"
        await respond(response_type="in_channel", replace_original=False,
                      text=f":rotating_light: <@{person.slack_id}> paged on-call for *{escape(entity.display_name)}* ({via}).")

    app.command("/whoowns")(answer)
    app.action("whoowns_share")(ack=ack_action, lazy=[share])
    app.action("whoowns_dependencies")(ack=ack_action, lazy=[dependencies])
    app.action("whoowns_page")(ack=ack_action, lazy=[page])
