"""App Home: what the bot can do and how big the catalog is, published when a user opens it."""
from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.services import Services
from bot.models import Environment
from commands import create_service, dora, env, office_hours, platform, runbook, whoowns
from commands.common import escape

HELP: list[tuple[str, str]] = []
FEATURES = (whoowns, create_service, env, runbook, office_hours, platform, dora)


def home_view(entities: int, problems: int, environments: list[Environment]) -> dict[str, Any]:
    commands = "\n".join(f"• `{usage}`: {escape(text)}" for capability in FEATURES for usage, text in capability.HELP)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "pavedroad: your platform, in Slack"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*What you can ask*\n{commands}"}},
        {"type": "actions", "elements": [{"type": "button", "action_id": create_service.OPEN, "style": "primary",
                                          "text": {"type": "plain_text", "text": "Create a service"}}]},
        {"type": "header", "text": {"type": "plain_text", "text": "Your environments"}},
    ]
    for environment in environments[:20]:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": env.env_line(environment)}})
        blocks.append({"type": "actions", "elements": env.env_buttons(environment)})
    if not environments:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "None yet: `/env create` makes one."}})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"The catalog holds {entities:,} entities"
                   + (f"; {problems:,} problem(s) are waiting for the platform team." if problems else ".")}]})
    return {"type": "home", "blocks": blocks}


def register(app: AsyncApp, services: Services) -> None:
    async def publish_home(event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("tab") != "home":
            return
        index = services.catalog.index
        environments = await services.environments.visible_to(await services.people.whois(event["user"]))
        await client.views_publish(user_id=event["user"], view=home_view(len(index.entities), len(index.problems), environments))

    app.event("app_home_opened")(publish_home)
