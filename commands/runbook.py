"""`/runbook SERVICE [what is wrong]` and `/docs QUERY`: a service's runbook (or the section that
matches best) and a search of every indexed runbook, docs page, FAQ and accepted answer."""
from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.catalog.entity import Entity
from bot.catalog.index import CatalogIndex
from bot.catalog.refs import short_ref
from bot.knowledge.markdown import render, split_sections
from bot.knowledge.search import Hit
from bot.knowledge.sources import runbook_link
from bot.services import Services
from commands.common import clip, escape, guarded, link, query_text

HELP = [
    ("/runbook SERVICE [symptom]", "a service's runbook, or the section about a symptom (`/runbook payment-service high latency`)"),
    ("/docs QUERY", "search every runbook, docs page, FAQ and accepted answer"),
]


def split_query(index: CatalogIndex, text: str) -> tuple[Entity | None, str, tuple[str, ...]]:
    """The longest leading words that name an entity, and the rest as what to look for."""
    words = text.split()
    suggestions: tuple[str, ...] = ()
    for cut in range(len(words), 0, -1):
        found = index.find(" ".join(words[:cut]))
        if found.entity is not None:
            return found.entity, " ".join(words[cut:]), ()
        suggestions = found.suggestions
    return None, "", suggestions


def hit_blocks(hits: list[Hit], query: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": f"*Results for* _{escape(clip(query, 100))}_"}}]
    for hit in hits:
        title = f"{hit.title} — {hit.section}" if hit.section and hit.section != hit.title else hit.title
        owner = f" · `{short_ref(hit.entity_ref)}`" if hit.entity_ref else ""
        heading = link(hit.url, title) if hit.url else f"*{escape(title)}*"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": clip(
            f"{heading}{owner} · {hit.kind}\n{escape(hit.snippet)}", 3000)}})
    return blocks


def register(app: AsyncApp, services: Services) -> None:
    catalog, knowledge = services.catalog, services.knowledge

    async def acknowledge(ack: AsyncAck, command: dict[str, Any]) -> None:
        if query_text(command.get("text")):
            await ack()
        else:
            await ack(text=f"Usage: `{command.get('command', '/runbook')} ...`: " + " · ".join(f"`{u}`: {t}" for u, t in HELP))

    async def show(respond: AsyncRespond, entity: Entity, start: int = 0, replace: bool = False) -> None:
        page = await knowledge.runbook(entity)
        if page is None:
            found = runbook_link(entity)
            text = (f"The runbook of *{escape(entity.display_name)}* is {link(found[1], found[0])} (I can't read it from here)."
                    if found else f"*{escape(entity.display_name)}* has no runbook yet. Add a `metadata.links` entry with "
                    "`type: runbook`, or a `pavedroad.dev/runbook` annotation with its path in the repository.")
            await respond(response_type="ephemeral", text=text)
            return
        rendered = render(page.markdown, title=page.title, source_url=page.url, start=start)
        blocks = rendered.blocks
        if rendered.next_start is not None:
            blocks.append({"type": "actions", "block_id": "runbook_more", "elements": [{
                "type": "button", "action_id": "runbook_more", "value": f"{entity.key}|{rendered.next_start}",
                "text": {"type": "plain_text", "text": "Show more"}}]})
        await respond(response_type="ephemeral", replace_original=replace, text=rendered.text, blocks=blocks)

    @guarded
    async def runbook(command: dict[str, Any], respond: AsyncRespond) -> None:
        entity, symptom, suggestions = split_query(catalog.index, query_text(command.get("text")))
        if entity is None:
            hint = f" Did you mean {', '.join(f'`{s}`' for s in suggestions)}?" if suggestions else ""
            await respond(response_type="ephemeral", text=f"I couldn't find that service in the catalog.{hint}")
            return
        if symptom:
            hits = await knowledge.search(symptom, limit=1, kinds=["runbook"], entity_ref=entity.key)
            page = await knowledge.runbook(entity) if hits else None
            if page is not None:
                section = next((s for s in split_sections(page.markdown) if s.title == hits[0].section), None)
                if section is not None:
                    markdown = f"{'#' * section.level} {section.title}\n\n{section.body}"
                    url = f"{page.url}#{section.anchor}" if page.url else ""
                    rendered = render(markdown, title=f"{page.title}: {section.title}", source_url=url)
                    await respond(response_type="ephemeral", text=rendered.text, blocks=rendered.blocks)
                    return
        await show(respond, entity)

    @guarded
    async def more(action: dict[str, Any], respond: AsyncRespond) -> None:
        key, _, start = str(action.get("value", "")).rpartition("|")
        entity = catalog.index.entities.get(key)
        if entity is None or not start.isdigit():
            await respond(response_type="ephemeral", replace_original=False, text="That runbook is no longer in the catalog.")
            return
        await show(respond, entity, int(start))

    @guarded
    async def docs(command: dict[str, Any], respond: AsyncRespond) -> None:
        query = query_text(command.get("text"))
        hits = await knowledge.search(query, limit=5)
        if not hits:
            await respond(response_type="ephemeral", text=f"Nothing in the runbooks, docs or FAQ matches _{escape(clip(query, 100))}_. "
                          "Try other words, or ask in office hours.")
            return
        await respond(response_type="ephemeral", text=f"{len(hits)} result(s)", blocks=hit_blocks(hits, query))

    async def ack_action(ack: AsyncAck) -> None:
        await ack()

    app.command("/runbook")(ack=acknowledge, lazy=[runbook])
    app.command("/docs")(ack=acknowledge, lazy=[docs])
    app.action("runbook_more")(ack=ack_action, lazy=[more])
