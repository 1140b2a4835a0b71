"""`/env`: self-service environments. Create (modal or one line), list, show, extend, destroy;
approvals in the platform channel; warnings and reports from the reaper."""
from __future__ import annotations

import shlex
from typing import Any, Awaitable, Callable, Sequence

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.catalog.refs import short_ref
from bot.config import Settings
from bot.environments.rules import NAME_RULE, PURPOSES, Refused, check_name
from bot.models import Environment
from bot.ownership import Team
from bot.people import Person
from bot.services import Services
from commands.common import escape, guarded, link, log, query_text

HELP = [
    ("/env create [SERVICE]", "a preview, staging or load-test namespace (a form, or --purpose --size --ttl --name)"),
    ("/env list | show NAME", "your and your teams' environments"),
    ("/env extend NAME 2d", "give an environment more time (7 days at most in all)"),
    ("/env destroy NAME", "delete an environment now"),
]
USAGE = ("Usage: `/env create [SERVICE] [--purpose preview|staging|load-test] [--size small] [--ttl 3d] [--name NAME]`, "
         "`/env list`, `/env show NAME`, `/env extend NAME 2d`, `/env destroy NAME`.")
TTL_CHOICES = ("1d", "2d", "3d", "5d", "7d")
SERVICE_PICKER = "env_service"


def when(moment: float) -> str:
    """A time every reader sees in their own time zone."""
    return f"<!date^{int(moment)}^{{date_short_pretty}} at {{time}}|{moment:.0f}>"


def parse_create(text: str) -> dict[str, str]:
    """`payment-service --ttl 3d --size small` → {"service": ..., "ttl": ..., "size": ...}."""
    try:
        words = shlex.split(text)
    except ValueError:
        raise Refused("I could not read that (an unclosed quote?). " + USAGE) from None
    values: dict[str, str] = {}
    rest: list[str] = []
    while words:
        word = words.pop(0)
        if word.startswith("--"):
            option = word[2:]
            if option not in ("purpose", "size", "ttl", "name") or not words:
                raise Refused(f"`{word[:30]}` needs a value and must be one of --purpose, --size, --ttl, --name. " + USAGE)
            values[option] = words.pop(0)
        else:
            rest.append(word)
    if rest:
        values["service"] = " ".join(rest)
    return values


def env_blocks(env: Environment, settings: Settings, made: Sequence[str] = (), intro: str = "") -> list[dict[str, Any]]:
    context = f"--context {settings.kube_context} " if settings.kube_context else ""
    pending = env.status == "pending_merge"
    status = {"ready": ":large_green_circle: ready", "awaiting_approval": ":hourglass: waiting for a platform admin's approval",
              "provisioning": ":gear: being created", "pending_merge": ":twisted_rightwards_arrows: proposed in an infra pull request",
              "failed": ":red_circle: failed", "destroyed": ":wastebasket: destroyed",
              "denied": ":no_entry: denied"}.get(env.status, env.status)
    fields = [f"*Service*\n`{short_ref(env.service_ref)}`", f"*Owner*\n`{short_ref(env.owner_ref)}`",
              f"*Purpose · size*\n{env.purpose} · {env.size}", f"*Status*\n{status}",
              f"*Expires*\n{when(env.expires_at)}", f"*Requested by*\n<@{env.requester}>"]
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": f"Environment {env.name}"}}]
    if intro:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": intro}})
    blocks.append({"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]})
    if pending:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": (
            f"A pull request on the infrastructure repository adds it: {pull_request(env.detail)}. The environment appears "
            "once the pull request is merged and the infra pipeline applies it.")}})
    if made:
        done = "In the pull request" if pending else "Created"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"{done}: " + ", ".join(escape(m) for m in made)}]})
    if env.status in ("ready", "pending_merge"):
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"{'Once applied, use' if pending else 'Use'} it: "
                                                                             f"`kubectl {context}--namespace {env.name} get pods`"}})
    if env.status in ("failed", "destroyed") and env.detail:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": escape(env.detail)}]})
    if env.status in ("ready", "awaiting_approval", "provisioning", "pending_merge"):
        blocks.append({"type": "actions", "block_id": "env_actions", "elements": env_buttons(env)})
    return blocks


def env_buttons(env: Environment) -> list[dict[str, Any]]:
    return [
        {"type": "button", "action_id": "env_extend", "value": env.name, "text": {"type": "plain_text", "text": "Extend 1 day"}},
        {"type": "button", "action_id": "env_destroy", "value": env.name, "style": "danger",
         "text": {"type": "plain_text", "text": "Destroy now"},
         "confirm": {"title": {"type": "plain_text", "text": "Destroy environment?"},
                     "text": {"type": "mrkdwn", "text": f"This deletes namespace `{env.name}` and everything in it."},
                     "confirm": {"type": "plain_text", "text": "Destroy"}, "deny": {"type": "plain_text", "text": "Keep it"},
                     "style": "danger"}},
    ]


def pull_request(url: str) -> str:
    """A pull request's address as a link (the local git host's `file:` address as text)."""
    return link(url, url)


def env_line(env: Environment) -> str:
    pull = f" ({pull_request(env.detail)})" if env.status == "pending_merge" else ""
    return f"`{env.name}` · {env.purpose} · {env.size} · {env.status.replace('_', ' ')}{pull} · expires {when(env.expires_at)}"


def extended_text(env: Environment) -> str:
    change = f" Its expires-at annotation changes through {pull_request(env.detail)}." if env.status == "pending_merge" else ""
    return f"`{env.name}` now expires {when(env.expires_at)}.{change}"


def removal(env: Environment, settings: Settings) -> str:
    """Through an infrastructure repository, what destroying proposed: the pull request that removes it."""
    return f" {escape(env.detail)}." if settings.env_provisioning == "pull-request" and env.detail else ""


def create_modal(settings: Settings, service: str = "") -> dict[str, Any]:
    def options(values: Sequence[str]) -> list[dict[str, Any]]:
        return [{"text": {"type": "plain_text", "text": v}, "value": v} for v in values]

    def select(block_id: str, label: str, values: Sequence[str], initial: str) -> dict[str, Any]:
        return {"type": "input", "block_id": block_id, "label": {"type": "plain_text", "text": label},
                "element": {"type": "static_select", "action_id": "value", "options": options(values),
                            "initial_option": options([initial])[0]}}

    sizes = list(settings.env_sizes)
    approval = f" ({', '.join(settings.env_approval_sizes)} need approval)" if settings.env_approval_sizes else ""
    service_element: dict[str, Any] = {"type": "external_select", "action_id": SERVICE_PICKER, "min_query_length": 1,
                                       "placeholder": {"type": "plain_text", "text": "Search the catalog"}}
    if service:
        service_element["initial_option"] = {"text": {"type": "plain_text", "text": service[:75]}, "value": service[:150]}
    return {
        "type": "modal", "callback_id": "env_create", "title": {"type": "plain_text", "text": "New environment"},
        "submit": {"type": "plain_text", "text": "Create"}, "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "input", "block_id": "service", "label": {"type": "plain_text", "text": "Service"}, "element": service_element},
            select("purpose", "Purpose", PURPOSES, PURPOSES[0]),
            select("size", f"Size{approval}", sizes, sizes[0]),
            select("ttl", "Time to live", TTL_CHOICES, f"{settings.env_default_ttl_hours / 24:g}d"
                   if f"{settings.env_default_ttl_hours / 24:g}d" in TTL_CHOICES else TTL_CHOICES[0]),
            {"type": "input", "block_id": "name", "optional": True, "label": {"type": "plain_text", "text": "Name (optional)"},
             "hint": {"type": "plain_text", "text": "Lower-case letters, digits and dashes; by default service and purpose."},
             "element": {"type": "plain_text_input", "action_id": "value", "max_length": 63}},
        ],
    }


def submitted(view: dict[str, Any]) -> dict[str, str]:
    values: dict[str, str] = {}
    for block_id, actions in (view.get("state") or {}).get("values", {}).items():
        element = next(iter(actions.values()), {})
        chosen = element.get("selected_option") or {}
        values[block_id] = chosen.get("value") or element.get("value") or ""
    return values


class SlackNotifier:
    """Posts what happens to environments: to the requester, the owner channel, the platform channel."""

    def __init__(self, client: AsyncWebClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings

    async def _post(self, channel: str, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        try:
            await self.client.chat_postMessage(channel=channel, text=text, blocks=blocks)
        except (SlackApiError, OSError, TimeoutError) as exc:
            log.warning("could not post to %s: %s", channel, exc.__class__.__name__)

    async def _requester_and_team(self, env: Environment, owner: Team | None, text: str, blocks: list[dict[str, Any]]) -> None:
        await self._post(env.requester, text, blocks)
        channel = owner.channel_id or (f"#{owner.channel_name}" if owner.channel_name else "") if owner else ""
        if channel:
            await self._post(channel, text, blocks)

    async def approval_needed(self, env: Environment, owner: Team | None) -> None:
        if not self.settings.platform_channel:
            await self._post(env.requester, f"`{env.name}` needs a platform admin's approval, but no platform channel "
                                            "is set (PAVEDROAD_PLATFORM_CHANNEL): ask the platform team.")
            return
        await self._post(self.settings.platform_channel, f"<@{env.requester}> asks for a {env.size} environment `{env.name}`", [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"<@{env.requester}> asks for a *{env.size}* {env.purpose} "
                                                                   f"environment `{env.name}` for `{short_ref(env.service_ref)}`, "
                                                                   f"until {when(env.expires_at)}."}},
            {"type": "actions", "block_id": "env_approval", "elements": [
                {"type": "button", "action_id": "env_approve", "value": env.name, "style": "primary",
                 "text": {"type": "plain_text", "text": "Approve"}},
                {"type": "button", "action_id": "env_deny", "value": env.name, "style": "danger",
                 "text": {"type": "plain_text", "text": "Deny"}}]},
        ])

    async def decided(self, env: Environment, owner: Team | None, approved: bool, by: str, made: Sequence[str]) -> None:
        if approved and env.status == "ready":
            intro = f"<@{by}> approved your environment; it is ready."
        elif approved and env.status == "pending_merge":
            intro = f"<@{by}> approved your environment; a pull request proposes it: {pull_request(env.detail)}"
        elif approved:
            intro = f"<@{by}> approved your environment, but it could not be created: {escape(env.detail)}"
        else:
            intro = f"<@{by}> denied your environment `{env.name}`."
        await self._post(env.requester, intro, env_blocks(env, self.settings, made, intro))

    async def expiring(self, env: Environment, owner: Team | None) -> None:
        intro = f":hourglass_flowing_sand: Environment `{env.name}` expires {when(env.expires_at)} and will then be destroyed."
        await self._requester_and_team(env, owner, intro, env_blocks(env, self.settings, intro=intro))

    async def destroyed(self, env: Environment, owner: Team | None, by: str) -> None:
        who = "it expired" if by == "reaper" else f"<@{by}> destroyed it"
        intro = f":wastebasket: Environment `{env.name}` is gone: {who}.{removal(env, self.settings)}"
        await self._requester_and_team(env, owner, intro, [{"type": "section", "text": {"type": "mrkdwn", "text": intro}}])


def register(app: AsyncApp, services: Services) -> None:
    environments, people, settings = services.environments, services.people, services.settings

    async def acknowledge(ack: AsyncAck, command: dict[str, Any]) -> None:
        words = query_text(command.get("text")).split(" ", 1)
        if words[0] not in ("create", "list", "show", "extend", "destroy"):
            await ack(text=USAGE)
        else:
            await ack()

    @guarded
    async def answer(command: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient) -> None:
        verb, _, rest = query_text(command.get("text")).partition(" ")
        person = await people.whois(command["user_id"])
        try:
            if verb == "create":
                values = parse_create(rest)
                if "service" not in values:
                    await client.views_open(trigger_id=command["trigger_id"], view=create_modal(settings))
                    return
                env, made = await environments.request(person, values["service"], values.get("purpose", PURPOSES[0]),
                                                       values.get("size"), values.get("ttl"), values.get("name"),
                                                       request_key=f"command:{command['trigger_id']}")
                await respond(response_type="ephemeral", text=f"Environment {env.name}: {env.status}",
                              blocks=env_blocks(env, settings, made))
            elif verb == "list":
                envs = await environments.visible_to(person)
                text = "\n".join(f"• {env_line(e)}" for e in envs) or "You and your teams have no environments. `/env create` makes one."
                await respond(response_type="ephemeral", text=text)
            elif verb == "show":
                env = await environments.get(rest.strip())
                if env is None:
                    raise Refused(f"There is no environment called `{escape(rest.strip()[:80])}`.")
                await respond(response_type="ephemeral", text=f"Environment {env.name}", blocks=env_blocks(env, settings))
            elif verb == "extend":
                name, _, duration = rest.strip().partition(" ")
                env = await environments.extend(person, name, duration.strip() or "1d")
                await respond(response_type="ephemeral", text=extended_text(env))
            elif verb == "destroy":
                env = await environments.destroy(person, rest.strip())
                await respond(response_type="ephemeral", text=f"`{env.name}` is destroyed.{removal(env, settings)}")
        except Refused as exc:
            await respond(response_type="ephemeral", text=f":warning: {exc}")

    async def service_options(ack: AsyncAck, payload: dict[str, Any]) -> None:
        index = services.catalog.index
        query = str(payload.get("value", "")).lower()
        names = [e.name for e in index.entities.values() if e.kind == "Component" and query in e.name.lower()][:100]
        await ack(options=[{"text": {"type": "plain_text", "text": n[:75]}, "value": n} for n in sorted(names)])

    async def check_submission(ack: AsyncAck, view: dict[str, Any]) -> None:
        """Field errors go back to the form at once; good forms close and are created after."""
        values = submitted(view)
        errors = {}
        if services.catalog.index.find(values.get("service", "")).entity is None:
            errors["service"] = "Pick a service from the catalog."
        if values.get("name"):
            try:
                check_name(values["name"])
            except Refused:
                errors["name"] = NAME_RULE
        if errors:
            await ack(response_action="errors", errors=errors)
        else:
            await ack()

    @guarded
    async def create_from_form(view: dict[str, Any], body: dict[str, Any], client: AsyncWebClient) -> None:
        values = submitted(view)
        user = body["user"]["id"]
        person = await people.whois(user)
        try:
            env, made = await environments.request(person, values["service"], values["purpose"], values["size"], values["ttl"],
                                                   values.get("name") or None, request_key=f"view:{view['id']}")
            await client.chat_postMessage(channel=user, text=f"Environment {env.name}: {env.status}",
                                          blocks=env_blocks(env, settings, made))
        except Refused as exc:
            await client.chat_postMessage(channel=user, text=f":warning: {exc}")

    async def ack_action(ack: AsyncAck) -> None:
        await ack()

    def button(work: Callable[[Person, str], Awaitable[str]]) -> Callable[..., Awaitable[None]]:
        @guarded
        async def run(action: dict[str, Any], body: dict[str, Any], respond: AsyncRespond) -> None:
            person = await people.whois(body["user"]["id"])
            try:
                text = await work(person, str(action.get("value", "")))
            except Refused as exc:
                text = f":warning: {exc}"
            await respond(response_type="ephemeral", replace_original=False, text=text)
        run.__name__ = work.__name__
        return run

    async def extend(person: Person, name: str) -> str:
        return extended_text(await environments.extend(person, name, "1d"))

    async def destroy(person: Person, name: str) -> str:
        env = await environments.destroy(person, name)
        return f"`{env.name}` is destroyed.{removal(env, settings)}"

    async def approve(person: Person, name: str) -> str:
        env, _ = await environments.decide(person, name, approve=True)
        return f"Approved `{env.name}` for <@{env.requester}>: {env.status.replace('_', ' ')}."

    async def deny(person: Person, name: str) -> str:
        env, _ = await environments.decide(person, name, approve=False)
        return f"Denied `{env.name}`; <@{env.requester}> has been told."

    app.command("/env")(ack=acknowledge, lazy=[answer])
    app.options(SERVICE_PICKER)(service_options)
    app.view("env_create")(ack=check_submission, lazy=[create_from_form])
    for action_id, work in (("env_extend", extend), ("env_destroy", destroy), ("env_approve", approve), ("env_deny", deny)):
        app.action(action_id)(ack=ack_action, lazy=[button(work)])
