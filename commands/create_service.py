"""`/create-service`: golden paths from Slack. Pick a software template, fill in the form built
from its parameters, review and preview it, create it; a progress message follows the run live
and offers a retry when it fails.

The modal is one view that each submit replaces (`response_action: update`): the template
picker, the form's screens (`bot.scaffolder.form`), the review, then the outcome. Its id is the
run's idempotency key, so a Slack retry or a double submit starts one run.
"""
from __future__ import annotations

import json
import shlex
from collections import OrderedDict
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.catalog.refs import short_ref
from bot.knowledge.markdown import to_mrkdwn
from bot.ownership import team
from bot.scaffolder import form, parameters
from bot.scaffolder.form import Draft, plain
from bot.scaffolder.model import DryRun, Run, ScaffolderError, StepRecord, Template, ValidationErrors
from bot.services import Services
from commands.common import clip, escape, guarded, link, log, query_text

HELP = [("/create-service [TEMPLATE]", "a new service from a software template: a form, a preview, live progress"),
        ("/create-service TEMPLATE name=VALUE ...", "the same without the form, e.g. from the shell")]
PICK, FORM, REVIEW = "create_service_pick", "create_service_form", "create_service_review"
OPEN, PREVIEW, RETRY = "create_service_open", "create_service_preview", "create_service_retry"
TEMPLATE_BLOCK = "template"
METADATA_LIMIT = 3000
MAX_SECTION = 2900
STEP_ICONS = {"pending": ":white_circle:", "running": ":hourglass_flowing_sand:", "done": ":white_check_mark:",
              "failed": ":x:", "skipped": ":fast_forward:"}
NO_TEMPLATES = ("There are no software templates yet: add `kind: Template` entities to the catalog, "
                "or set PAVEDROAD_TEMPLATES.")
RUN_STATES = {"pending": "waiting to start", "running": "in progress", "done": "done", "failed": "failed"}


class FormExpired(Exception):
    """The form's state was kept in memory by a process that has since restarted."""


class Drafts:
    """Form state too big for `private_metadata` (3,000 characters), kept here by view id (a view
    keeps its id through `response_action: update`); the most recent `capacity` forms are kept."""

    def __init__(self, capacity: int = 500) -> None:
        self.capacity = capacity
        self._kept: OrderedDict[str, str] = OrderedDict()

    def metadata(self, draft: Draft, view_id: str) -> str:
        encoded = draft.encode()
        if len(encoded) <= METADATA_LIMIT:
            return encoded
        self._kept[view_id] = encoded
        self._kept.move_to_end(view_id)
        while len(self._kept) > self.capacity:
            self._kept.popitem(last=False)
        return json.dumps({"kept": view_id})

    def load(self, metadata: str) -> Draft:
        kept = json.loads(metadata or "{}").get("kept")
        if kept is None:
            return Draft.decode(metadata)
        if kept not in self._kept:
            raise FormExpired(kept)
        return Draft.decode(self._kept[kept])


# -- views --------------------------------------------------------------------------------------

def modal(title: str, blocks: list[dict[str, Any]], *, callback_id: str = "", submit: str = "",
          metadata: str = "", close: str = "Close") -> dict[str, Any]:
    view: dict[str, Any] = {"type": "modal", "title": plain(title, 24), "close": plain(close), "blocks": blocks[:100]}
    if callback_id:
        view["callback_id"] = callback_id
    if submit:
        view["submit"] = plain(submit)
    if metadata:
        view["private_metadata"] = metadata
    return view


def text_section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION)}}


def code_section(title: str, code: str) -> dict[str, Any]:
    """A title over a code block, the code cut so the block's closing fence stays in."""
    return text_section(f"{title}\n```{clip(escape(code), MAX_SECTION - len(title) - 8)}```")


def message_view(title: str, text: str) -> dict[str, Any]:
    return modal(title, [text_section(text)])


def pick_view(templates: list[Template]) -> dict[str, Any]:
    """Choose a template: radio buttons with descriptions for a few, a select for many."""
    options = [{"text": plain(t.title, 75), "value": t.ref} for t in templates[:100]]
    if len(options) <= 10:
        for option, template in zip(options, templates):
            if template.description:
                option["description"] = plain(template.description, 75)
        element: dict[str, Any] = {"type": "radio_buttons", "action_id": form.VALUE, "options": options}
    else:
        element = {"type": "static_select", "action_id": form.VALUE, "options": options,
                   "placeholder": plain("Choose a template")}
    block = {"type": "input", "block_id": TEMPLATE_BLOCK, "label": plain("Template"), "element": element}
    return modal("Create a service", [block], callback_id=PICK, submit="Next", close="Cancel")


def review_view(template: Template, draft: Draft, metadata: str) -> dict[str, Any]:
    """Every answer, a Preview button, and Create."""
    shown = form.summary(template, draft.values, draft.asked)
    fields = [{"type": "mrkdwn", "text": clip(f"*{escape(label)}*\n{escape(value)}", 2000)} for label, value in shown]
    blocks: list[dict[str, Any]] = [{"type": "header", "text": plain(f"Review: {template.title}", 150)}]
    blocks += [{"type": "section", "fields": fields[i:i + 10]} for i in range(0, len(fields), 10)]
    steps = ", ".join(str(step["name"]) for step in template.steps)
    blocks.append({"type": "context", "elements": [plain(f"Create runs: {steps}")]})
    blocks.append({"type": "actions", "block_id": "review_actions", "elements": [
        {"type": "button", "action_id": PREVIEW, "text": plain("Preview"), "value": "preview"}]})
    return modal(template.title, blocks, callback_id=REVIEW, submit="Create", metadata=metadata, close="Cancel")


def preview_view(template: Template, dry: DryRun) -> dict[str, Any]:
    """What a run would do, with nothing changed: each step's resolved input, then the files."""
    blocks: list[dict[str, Any]] = [text_section(f"*{escape(template.title)}*: a dry run, nothing was created.")]
    if dry.error:
        blocks.append(text_section(f":warning: A real run would stop here: {escape(dry.error)}"))
    for number, (step_id, action, resolved) in enumerate(dry.steps, 1):
        shown = json.dumps(resolved, indent=1, ensure_ascii=False, default=str)
        blocks.append(code_section(f"*{number}. {escape(clip(step_id, 100))}* `{escape(action)}`", shown))
    listing = "\n".join(f"`{escape(path)}` ({len(content):,} bytes)" for path, content in sorted(dry.files.items()))
    blocks.append(text_section(f"*Files ({len(dry.files)})*\n{listing or 'none'}"))
    for path, content in sorted(dry.files.items()):
        if len(blocks) >= 98:
            break
        text = _text_of(content)
        if text is not None:
            blocks.append(code_section(f"`{escape(clip(path, 200))}`", text))
    if dry.log:
        blocks.append({"type": "context", "elements": [plain(clip("\n".join(dry.log[-20:]), 2000))]})
    return modal("Preview", blocks)


def _text_of(content: bytes) -> str | None:
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if text.strip() and "\x00" not in text else None


def progress_message(run: Run, title: str) -> tuple[str, list[dict[str, Any]]]:
    """The live message of a run: each step with its state, then the template's output."""
    state = RUN_STATES[run.state]
    owner = f" · owner `{short_ref(run.owner)}`" if run.owner else ""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": plain(f"{title}: {state}", 150)},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"Requested by <@{run.requester}>{owner} · run `{run.id}`"}]},
    ]
    blocks += [text_section(chunk) for chunk in _chunks([_step_line(step) for step in run.steps])[:40]]
    if run.state == "done":
        links = " · ".join(_link(label, url) for label, url in run.output_links)
        if links:
            blocks.append(text_section(f"*Links*: {links}"))
        if run.output_text:
            blocks.append(text_section(to_mrkdwn(run.output_text)))
        if run.seconds is not None:
            blocks.append({"type": "context", "elements": [plain(f"Done in {run.seconds:.1f} s.")]})
    if run.state == "failed":
        if not any(step.state == "failed" for step in run.steps):
            blocks.append(text_section(f":warning: {escape(run.error) or 'The run stopped.'}"))
        blocks.append({"type": "actions", "block_id": "run_actions", "elements": [
            {"type": "button", "action_id": RETRY, "value": run.id, "style": "primary", "text": plain("Retry"),
             "confirm": {"title": plain("Retry this run?"), "text": plain("It resumes from the step that failed."),
                         "confirm": plain("Retry"), "deny": plain("Not now")}}]})
    return f"{title}: {state}", blocks


def _step_line(step: StepRecord) -> str:
    line = f"{STEP_ICONS.get(step.state, '')} *{escape(step.name)}* ({step.state})"
    if step.links:
        line += " · " + " · ".join(_link(label, url) for label, url in step.links)
    if step.state == "failed" and step.error:
        line += f"\n>{escape(clip(step.error, 500))}"
    return line


def _link(label: str, url: str) -> str:
    """A web link, or the label and the address as text (a local repository, an entity ref)."""
    if url.lower().startswith(("https://", "http://")):
        return link(url, label)
    return f"{escape(label)}: `{escape(url)}`" if url else escape(label)


def _chunks(lines: list[str]) -> list[str]:
    """Lines joined into section texts that each fit one block."""
    chunks: list[str] = []
    for line in lines:
        if chunks and len(chunks[-1]) + len(line) + 1 <= MAX_SECTION:
            chunks[-1] += "\n" + line
        else:
            chunks.append(line)
    return chunks


# -- the live progress message ------------------------------------------------------------------

class RunProgress:
    """The scaffolder's `RunListener`: posts each run's progress message (a DM to the requester,
    and a post in the owner team's channel when it has a `slack.com/channel-id`), then edits them
    on every change. The scaffolder calls it for one run at a time, folding bursts of changes."""

    def __init__(self, client: AsyncWebClient, services: Services) -> None:
        self.client = client
        self.services = services
        self._messages: dict[str, list[tuple[str, str]]] = {}  # run id → (channel, ts) of its messages

    async def run_changed(self, run: Run) -> None:
        template = self.services.scaffolder.template(run.template_ref)
        text, blocks = progress_message(run, template.title if template else short_ref(run.template_ref))
        where = self._messages.get(run.id) or ([(run.slack_channel, run.slack_ts)] if run.slack_ts else [])
        if where:
            for channel, ts in where:
                await self._call("chat_update", channel=channel, ts=ts, text=text, blocks=blocks)
            return
        posted = await self._call("chat_postMessage", channel=run.requester, text=text, blocks=blocks)
        if posted is None:
            return  # the next change tries again
        where = [(posted["channel"], posted["ts"])]
        channel = self._team_channel(run)
        if channel and (in_team := await self._call("chat_postMessage", channel=channel, text=text, blocks=blocks)):
            where.append((in_team["channel"], in_team["ts"]))
        self._messages[run.id] = where
        await self.services.scaffolder.attach_message(run.id, posted["channel"], posted["ts"])

    def _team_channel(self, run: Run) -> str:
        entity = self.services.catalog.index.entities.get(run.owner) if run.owner else None
        return team(entity).channel_id if entity is not None else ""

    async def _call(self, method: str, **arguments: Any) -> Any:
        try:
            return await getattr(self.client, method)(**arguments)
        except (SlackApiError, OSError, TimeoutError) as exc:
            log.warning("%s to %s failed: %s", method, arguments.get("channel"), exc.__class__.__name__)
            return None


# -- the listeners ------------------------------------------------------------------------------

def typed_values(template: Template, texts: dict[str, str]) -> dict[str, Any]:
    """Each value as its parameter's JSON-schema type says; what does not convert stays text, for
    the template's own validation to name."""
    types = {name: schema.get("type") for name, schema in parameters.fields(template) if isinstance(schema, dict)}
    values: dict[str, Any] = {}
    for name, text in texts.items():
        kind = types.get(name)
        if kind == "boolean":
            values[name] = text.lower() in ("true", "yes", "y", "1", "on")
        elif kind == "array":
            values[name] = [item.strip() for item in text.split(",") if item.strip()]
        elif kind in ("integer", "number"):
            try:
                values[name] = int(text) if kind == "integer" else float(text)
            except ValueError:
                values[name] = text
        else:
            values[name] = text
    return values


def register(app: AsyncApp, services: Services) -> None:
    scaffolder, drafts = services.scaffolder, Drafts()
    scaffolder.listener = RunProgress(app.client, services)

    def first_view(template: Template, view_id: str = "") -> dict[str, Any]:
        return next_view(template, Draft(template.ref), view_id)

    def next_view(template: Template, draft: Draft, view_id: str) -> dict[str, Any]:
        """The form's next screen, or the review once every field has been asked."""
        screen = form.next_screen(template, draft.values, draft.asked)
        metadata = drafts.metadata(draft, view_id)
        if screen is None:
            return review_view(template, draft, metadata)
        return form.screen_view(template, screen, services.catalog.index, FORM, metadata)

    def draft_of(view: dict[str, Any]) -> tuple[Template, Draft]:
        draft = drafts.load(view.get("private_metadata", ""))
        template = scaffolder.template(draft.template)
        if template is None:
            raise FormExpired(draft.template)
        return template, draft

    async def acknowledge(ack: AsyncAck) -> None:
        await ack()

    @guarded
    async def open_form(command: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient) -> None:
        wanted = query_text(command.get("text"))
        templates = scaffolder.templates()
        if not templates:
            await respond(response_type="ephemeral", text=f":warning: {NO_TEMPLATES}")
            return
        if not wanted:
            await client.views_open(trigger_id=command["trigger_id"], view=pick_view(templates))
            return
        name, _, rest = wanted.partition(" ")
        template = scaffolder.template(name)
        if template is None:
            names = ", ".join(f"`{t.name}`" for t in templates[:20])
            await respond(response_type="ephemeral", text=f":warning: There is no template called `{escape(name[:80])}`. "
                                                           f"Templates: {names}.")
            return
        if rest.strip():
            await start_from_text(template, rest, command, respond)
            return
        await client.views_open(trigger_id=command["trigger_id"], view=first_view(template))

    async def start_from_text(template: Template, text: str, command: dict[str, Any], respond: AsyncRespond) -> None:
        """`name=value` pairs instead of the form (quote a value with spaces; lists comma-separated)."""
        try:
            pairs = [word.partition("=") for word in shlex.split(text)]
        except ValueError as exc:
            await respond(response_type="ephemeral", text=f":warning: I could not read that: {escape(exc)}.")
            return
        bad = [key for key, equals, _ in pairs if not equals or not key]
        if bad:
            await respond(response_type="ephemeral", text=f":warning: Give values as `name=value`; `{escape(bad[0][:80])}` is not.")
            return
        values = typed_values(template, {key: value for key, _, value in pairs})
        try:
            await scaffolder.start(template, values, command["user_id"], key=f"command:{command['trigger_id']}")
        except ValidationErrors as exc:
            problems = "\n".join(f"• *{escape(key)}*: {escape(message)}" for key, message in exc.errors.items())
            await respond(response_type="ephemeral", text=f":warning: The template does not accept these values:\n{problems}")
            return
        except ScaffolderError as exc:
            await respond(response_type="ephemeral", text=f":no_entry: {escape(exc)}")
            return
        await respond(response_type="ephemeral", text=f":rocket: *{escape(template.title)}* has started; "
                                                      "I'll keep you posted in a direct message, step by step.")

    @guarded
    async def open_from_home(body: dict[str, Any], client: AsyncWebClient) -> None:
        templates = scaffolder.templates()
        shown = pick_view(templates) if templates else message_view("Create a service", f":warning: {NO_TEMPLATES}")
        await client.views_open(trigger_id=body["trigger_id"], view=shown)

    async def picked(ack: AsyncAck, view: dict[str, Any]) -> None:
        element = ((view.get("state") or {}).get("values", {}).get(TEMPLATE_BLOCK) or {}).get(form.VALUE) or {}
        template = scaffolder.template(str((element.get("selected_option") or {}).get("value", "")))
        if template is None:
            await ack(response_action="errors", errors={TEMPLATE_BLOCK: "Choose a template."})
            return
        await ack(response_action="update", view=first_view(template, view["id"]))

    async def answered(ack: AsyncAck, view: dict[str, Any]) -> None:
        """A screen submitted: its errors back to the form, else the next screen (or the review)."""
        try:
            template, draft = draft_of(view)
        except FormExpired:
            await ack(response_action="update", view=message_view("Create a service", expired_text()))
            return
        screen = form.next_screen(template, draft.values, draft.asked)
        if screen is None:  # a repeated delivery of the last screen: show the review again
            await ack(response_action="update", view=next_view(template, draft, view["id"]))
            return
        values = form.merge(draft.values, form.values_from_state(view["state"], screen))
        errors = form.screen_errors(screen, values, scaffolder.validate_values(template, values))
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        draft = Draft(draft.template, values, draft.asked + [f.key for f in screen.fields])
        await ack(response_action="update", view=next_view(template, draft, view["id"]))

    async def confirm_create(ack: AsyncAck) -> None:
        await ack(response_action="update", view=message_view("Create a service", ":hourglass_flowing_sand: Starting…"))

    @guarded
    async def create(view: dict[str, Any], body: dict[str, Any], client: AsyncWebClient) -> None:
        """Start the run (the view id is its key) and say in the modal how it went: where the
        progress will be, or why it was refused."""
        user = body["user"]["id"]
        try:
            template, draft = draft_of(view)
            await scaffolder.start(template, draft.values, user, key=f"view:{view['id']}")
        except FormExpired:
            await client.views_update(view_id=view["id"], view=message_view("Create a service", expired_text()))
            return
        except ValidationErrors as exc:
            problems = "\n".join(f"• *{escape(name)}*: {escape(message)}" for name, message in exc.errors.items())
            await client.views_update(view_id=view["id"], view=message_view(
                "Create a service", f":warning: The template does not accept these values:\n{problems}"))
            return
        except ScaffolderError as exc:
            await client.views_update(view_id=view["id"], view=message_view("Create a service", f":no_entry: {escape(exc)}"))
            return
        await client.views_update(view_id=view["id"], view=message_view(template.title, (
            f":rocket: *{escape(template.title)}* has started. I'll keep you posted in a direct message "
            "from me, step by step, with the links at the end.")))

    @guarded
    async def preview(body: dict[str, Any], client: AsyncWebClient) -> None:
        """A pushed modal: at once (the trigger lasts 3 s) saying it is rendering, then the dry run."""
        pushed = await client.views_push(trigger_id=body["trigger_id"], view=message_view("Preview", ":hourglass_flowing_sand: Rendering…"))
        try:
            template, draft = draft_of(body["view"])
            shown = preview_view(template, await scaffolder.dry_run(template, draft.values, body["user"]["id"]))
        except FormExpired:
            shown = message_view("Preview", expired_text())
        except ScaffolderError as exc:
            shown = message_view("Preview", f":warning: The preview failed: {escape(exc)}")
        await client.views_update(view_id=pushed["view"]["id"], view=shown)

    @guarded
    async def retry(action: dict[str, Any], body: dict[str, Any], respond: AsyncRespond) -> None:
        user = body["user"]["id"]
        run = await scaffolder.get(str(action.get("value", "")))
        if run is None:
            await respond(response_type="ephemeral", replace_original=False, text=":warning: I no longer know this run.")
            return
        if user != run.requester and not services.policy.is_admin(await services.people.whois(user)):
            await respond(response_type="ephemeral", replace_original=False,
                          text=f":no_entry: Only <@{run.requester}>, who asked for this run, or a platform admin can retry it.")
            return
        try:
            await scaffolder.retry(run.id, user)
        except ScaffolderError as exc:
            await respond(response_type="ephemeral", replace_original=False, text=f":warning: {escape(exc)}")

    async def options(ack: AsyncAck, payload: dict[str, Any]) -> None:
        """Choices of an external select (a picker over a large catalog, or a long enum)."""
        try:
            template, _ = draft_of(payload.get("view") or {})
        except FormExpired:
            await ack(options=[])
            return
        item = form.find_field(template, str(payload.get("block_id", "")))
        query = str(payload.get("value", ""))
        if item is None:
            found: list[dict[str, Any]] = []
        elif item.kind == "enum":
            found = [o for o in form.enum_options(item.schema) if query.lower() in o["text"]["text"].lower()]
        else:
            found = [{"text": plain(label, 75), "value": ref} for ref, label in form.entity_choices(services.catalog.index, item, query)]
        await ack(options=found[:100])

    app.command("/create-service")(ack=acknowledge, lazy=[open_form])
    app.action(OPEN)(ack=acknowledge, lazy=[open_from_home])
    app.view(PICK)(picked)
    app.view(FORM)(answered)
    app.view(REVIEW)(ack=confirm_create, lazy=[create])
    app.action(PREVIEW)(ack=acknowledge, lazy=[preview])
    app.action(RETRY)(ack=acknowledge, lazy=[retry])
    app.options(form.ENTITY_OPTIONS)(options)


def expired_text() -> str:
    return ":hourglass: This form expired (the bot restarted while it was open). Please run `/create-service` again."
