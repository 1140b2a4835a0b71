"""`/create-service` end to end: signed Slack requests to the running bot, the modal's views as
Slack would send them back, a real run of a template (the embedded git host), and the progress
message posted and edited in the fake Slack."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.scaffolder.form import ENTITY_OPTIONS, Draft
from commands.create_service import FORM, OPEN, PICK, PREVIEW, RETRY, REVIEW, Drafts, FormExpired
from tests.fakes.slack import SlackFake
from tests.fakes.slack_requests import block_actions_body, event_body, view_submission_body
from tests.harness import Bot, start_bot, stop_bot
from tests.test_scaffolder_form import fill

ADA, GRACE, BOSS = "U0ADA0001", "U0GRA0003", "U0BOSS001"
TEMPLATE = """
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: python-service
  title: Python service
  description: A Python web service with a catalog entry
spec:
  owner: group:default/platform-team
  type: service
  parameters:
    - title: About the service
      required: [name, owner]
      properties:
        name:
          title: Name
          type: string
          ui:field: EntityNamePicker
        description:
          title: Description
          type: string
        owner:
          title: Owner
          type: string
          ui:field: OwnerPicker
          ui:options:
            catalogFilter:
              kind: Group
    - title: Repository
      required: [repoUrl]
      properties:
        repoUrl:
          title: Repository
          type: string
          ui:field: RepoUrlPicker
          ui:options:
            allowedHosts: [github.com]
  steps:
    - id: fetch
      name: Render the skeleton
      action: fetch:template
      input:
        url: ./skeleton
        values:
          name: ${{ parameters.name }}
          owner: ${{ parameters.owner }}
          description: ${{ parameters.description }}
    - id: publish
      name: Create the repository
      action: publish:github
      input:
        repoUrl: ${{ parameters.repoUrl }}
        description: ${{ parameters.description }}
        topics: [python]
    - id: register
      name: Register in the catalog
      action: catalog:register
      input:
        repoContentsUrl: ${{ steps.publish.output.repoContentsUrl }}
        catalogInfoPath: /catalog-info.yaml
  output:
    links:
      - title: Repository
        url: ${{ steps.publish.output.remoteUrl }}
      - title: Open in catalog
        icon: catalog
        entityRef: ${{ steps.register.output.entityRef }}
    text:
      - title: Next
        content: "**Clone it** and push your first change."
"""
CATALOG_INFO = """apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: ${{ values.name }}
  description: ${{ values.description }}
spec:
  type: service
  lifecycle: experimental
  owner: ${{ values.owner }}
"""
BROKEN = """
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: broken-service
  title: Broken service
spec:
  type: service
  parameters:
    - title: About
      required: [owner]
      properties:
        owner: {title: Owner, type: string, ui:field: OwnerPicker}
  steps:
    - id: fetch
      name: Fetch what is not there
      action: fetch:plain
      input:
        url: ./missing
"""


@pytest.fixture
async def bot(tmp_path: Path):
    templates = tmp_path / "templates"
    (templates / "python-service" / "skeleton").mkdir(parents=True)
    (templates / "python-service" / "template.yaml").write_text(TEMPLATE)
    (templates / "python-service" / "skeleton" / "catalog-info.yaml").write_text(CATALOG_INFO)
    (templates / "python-service" / "skeleton" / "README.md").write_text("# ${{ values.name }}\n")
    (templates / "broken-service").mkdir()
    (templates / "broken-service" / "template.yaml").write_text(BROKEN)
    async with SlackFake() as slack:
        slack.add_user(ADA, email="ada.lovelace@acme.example")
        slack.add_user(GRACE, email="grace.hopper@acme.example")
        running = await start_bot(tmp_path, slack, PAVEDROAD_TEMPLATES=str(templates), PAVEDROAD_PLATFORM_ADMINS=BOSS)
        yield running
        await stop_bot(running)


def json_of(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


async def submit(bot: Bot, view: dict[str, Any], view_id: str, answers: dict[str, Any], user: str = ADA) -> dict[str, Any]:
    """Submit a view filled with `answers`; returns Slack's reading of the acknowledgement."""
    body = view_submission_body(view["callback_id"], fill(view, answers)["values"], user_id=user,
                                private_metadata=view.get("private_metadata", ""), view_id=view_id)
    status, text = await bot.post(body)
    assert status == 200, text
    return json.loads(text) if text else {}


async def open_form(bot: Bot, user: str = ADA, template: str = "Python service") -> tuple[str, dict[str, Any]]:
    """`/create-service`, pick the template: the view id and the form's first screen."""
    before = len(bot.slack.calls("views.open"))
    status, _, _ = await bot.command("/create-service", "", user=user)
    assert status == 200
    await bot.slack.wait_for_call("views.open", lambda _: len(bot.slack.calls("views.open")) > before)
    opened, view_id = json_of(bot.slack.calls("views.open")[-1]["view"]), list(bot.slack.views)[-1]
    assert opened["callback_id"] == PICK
    answer = await submit(bot, opened, view_id, {"template": template}, user)
    assert answer["response_action"] == "update"
    return view_id, answer["view"]


async def fill_to_review(bot: Bot, view_id: str, view: dict[str, Any], user: str = ADA, name: str = "pay-ledger",
                         owner: str = "Payments (payments-team)") -> dict[str, Any]:
    assert view["callback_id"] == FORM
    answer = await submit(bot, view, view_id, {"name": name, "description": "The ledger", "owner": owner}, user)
    location = answer["view"]
    assert [b["block_id"] for b in location["blocks"] if b["type"] == "input"] == ["repoUrl:owner", "repoUrl:repo"]
    review = (await submit(bot, location, view_id, {"repoUrl:owner": "acme", "repoUrl:repo": name}, user))["view"]
    assert review["callback_id"] == REVIEW
    return review


async def progress(bot: Bot, user: str, state: str, timeout: float = 20, channel: str = "") -> dict[str, Any]:
    """The progress message in `user`'s DM (or in `channel`) once it shows `state`."""
    channel = channel or f"D{user[1:]}"
    async def shown() -> dict[str, Any] | None:
        for (where, _), message in bot.slack.messages.items():
            if where == channel and message.get("text", "").endswith(f": {state}"):
                return message
        return None
    deadline = asyncio.get_running_loop().time() + timeout
    while (message := await shown()) is None:
        assert asyncio.get_running_loop().time() < deadline, f"no {state} progress message for {user}"
        await asyncio.sleep(0.05)
    return message


async def test_from_the_command_to_a_created_service(bot: Bot):
    view_id, screen = await open_form(bot)
    assert screen["title"]["text"] == "Python service"
    owner = next(b for b in screen["blocks"] if b.get("block_id") == "owner")["element"]
    assert "Payments (payments-team)" in [o["text"]["text"] for o in owner["options"]]
    refused = await submit(bot, screen, view_id, {"name": "Pay Ledger!", "owner": "Payments (payments-team)"})
    assert refused["response_action"] == "errors" and set(refused["errors"]) == {"name"}
    taken = await submit(bot, screen, view_id, {"name": "payment-service", "owner": "Payments (payments-team)"})
    assert "already has a component named payment-service" in taken["errors"]["name"]
    suggestion = {"type": "block_suggestion", "action_id": ENTITY_OPTIONS, "block_id": "owner", "value": "pay",
                  "user": {"id": ADA}, "team": {"id": "T0FAKE"}, "api_app_id": "A0FAKE", "view": {**screen, "id": view_id}}
    status, body = await bot.post(urlencode({"payload": json.dumps(suggestion)}).encode())
    assert status == 200 and [o["value"] for o in json.loads(body)["options"]] == ["group:default/payments-team"]

    review = await fill_to_review(bot, view_id, screen)
    shown = json.dumps(review["blocks"])
    assert "pay-ledger" in shown and "github.com/acme/pay-ledger" in shown and "group:default/payments-team" in shown
    answer = await submit(bot, review, view_id, {})
    assert answer["response_action"] == "update" and "Starting" in json.dumps(answer["view"])

    started = await bot.slack.wait_for_call("views.update", lambda a: a["view_id"] == view_id, timeout=10)
    assert "has started" in json.dumps(started["view"])
    done = await progress(bot, ADA, "done")
    text = json.dumps(done["blocks"])
    for step in ("Render the skeleton", "Create the repository", "Register in the catalog"):
        assert f"*{step}* (done)" in text
    assert "Repository" in text and "component:default/pay-ledger" in text and "*Clone it*" in text
    assert done.get("edited"), "the first message is edited, not a new one posted"
    await progress(bot, ADA, "done", channel="C0PAYMENTS1")  # the team's copy is edited right after the DM
    assert [a["channel"] for a in bot.slack.calls("chat.postMessage")] == [ADA, "C0PAYMENTS1"]
    assert [m["text"] for (channel, _), m in bot.slack.messages.items() if channel == "C0PAYMENTS1"] == ["Python service: done"]
    assert bot.server.services.catalog.index.entities.get("component:default/pay-ledger") is not None


async def test_a_double_submit_starts_one_run(bot: Bot):
    view_id, screen = await open_form(bot)
    review = await fill_to_review(bot, view_id, screen, name="twice")
    body = view_submission_body(REVIEW, {}, user_id=ADA, private_metadata=review["private_metadata"], view_id=view_id)
    results = await asyncio.gather(bot.post(body), bot.post(body))
    assert [status for status, _ in results] == [200, 200]
    await progress(bot, ADA, "done")
    await asyncio.sleep(0.3)
    assert len([a for a in bot.slack.calls("chat.postMessage") if a["channel"] == ADA]) == 1


async def test_only_members_of_the_owner_group_may_create(bot: Bot):
    view_id, screen = await open_form(bot, user=GRACE)
    review = await fill_to_review(bot, view_id, screen, user=GRACE, name="not-mine")
    await submit(bot, review, view_id, {}, user=GRACE)
    refusal = await bot.slack.wait_for_call("views.update", lambda a: a["view_id"] == view_id, timeout=10)
    assert ":no_entry:" in json.dumps(refusal["view"]) and "payments-team" in json.dumps(refusal["view"])
    assert not [a for a in bot.slack.calls("chat.postMessage") if a["channel"] == GRACE]


async def test_preview_shows_files_and_steps_and_changes_nothing(bot: Bot):
    view_id, screen = await open_form(bot)
    review = await fill_to_review(bot, view_id, screen, name="just-looking")
    status, _ = await bot.post(block_actions_body(PREVIEW, "preview", user_id=ADA, view={**review, "id": view_id},
                                                  block_id="review_actions"))
    assert status == 200
    pushed = await bot.slack.wait_for_call("views.push")
    assert "Rendering" in json.dumps(pushed["view"])
    pushed_id = next(v["id"] for v in bot.slack.views.values() if "Rendering" in json.dumps(v["blocks"]))
    preview = json.dumps((await bot.slack.wait_for_call("views.update", lambda a: a["view_id"] == pushed_id, timeout=10))["view"])
    assert "catalog-info.yaml" in preview and "README.md" in preview and "name: just-looking" in preview
    assert "publish:github" in preview and "acme" in preview
    assert bot.server.services.catalog.index.entities.get("component:default/just-looking") is None
    assert not bot.slack.calls("chat.postMessage")


async def test_a_failed_run_offers_a_retry_to_its_requester_only(bot: Bot):
    view_id, screen = await open_form(bot, template="Broken service")
    review = (await submit(bot, screen, view_id, {"owner": "Payments (payments-team)"}))["view"]
    await submit(bot, review, view_id, {})
    failed = await progress(bot, ADA, "failed")
    buttons = [e for b in failed["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [b["action_id"] for b in buttons] == [RETRY]
    run_id = buttons[0]["value"]

    url = bot.slack.response_url()
    await bot.post(block_actions_body(RETRY, run_id, user_id=GRACE, response_url=url, block_id="run_actions"))
    assert "Only <@U0ADA0001>" in (await bot.reply(url))["text"]
    edits = len(bot.slack.calls("chat.update"))
    await bot.post(block_actions_body(RETRY, run_id, user_id=ADA, response_url=bot.slack.response_url(), block_id="run_actions"))
    await bot.slack.wait_for_call("chat.update", lambda a: len(bot.slack.calls("chat.update")) > edits + 1, timeout=10)
    assert (await progress(bot, ADA, "failed"))["text"].endswith(": failed")


async def test_unknown_template_and_home_button(bot: Bot):
    status, _, url = await bot.command("/create-service", "no-such-thing")
    assert status == 200
    reply = await bot.reply(url)
    assert "no template called `no-such-thing`" in reply["text"] and "`python-service`" in reply["text"]

    await bot.command("/create-service", "python-service")
    direct = json_of((await bot.slack.wait_for_call("views.open"))["view"])
    assert direct["callback_id"] == FORM

    await bot.post(event_body({"type": "app_home_opened", "user": ADA, "tab": "home"}))
    home = json.dumps((await bot.slack.wait_for_call("views.publish"))["view"])
    assert OPEN in home
    await bot.post(block_actions_body(OPEN, "", user_id=ADA, block_id="home"))
    await bot.slack.wait_for_call("views.open", lambda a: json_of(a["view"])["callback_id"] == PICK)


async def test_values_on_the_command_line_instead_of_the_form(bot: Bot):
    status, _, url = await bot.command("/create-service", "python-service name=pay-cli owner=group:default/payments-team "
                                                          "'repoUrl=github.com?owner=acme&repo=pay-cli'")
    assert status == 200
    assert "has started" in (await bot.reply(url))["text"]
    await progress(bot, ADA, "done")
    assert bot.server.services.catalog.index.entities.get("component:default/pay-cli") is not None

    _, _, url = await bot.command("/create-service", "python-service name=Pay! owner")
    assert "`owner` is not" in (await bot.reply(url))["text"]
    _, _, url = await bot.command("/create-service", "python-service name=Pay! owner=group:default/payments-team")
    refused = (await bot.reply(url))["text"]
    assert "does not accept" in refused and "*name*" in refused and "*repoUrl*" in refused


def test_form_state_too_big_for_slack_is_kept_by_view_id():
    drafts = Drafts(capacity=2)
    small = Draft("template:default/x", {"name": "x"}, ["name"])
    assert drafts.load(drafts.metadata(small, "V1")) == small
    big = Draft("template:default/x", {"notes": "n" * 5000}, ["notes"])
    kept = drafts.metadata(big, "V2")
    assert len(kept) < 100 and drafts.load(kept) == big
    drafts.metadata(Draft("t", {"a": "a" * 4000}), "V3")
    drafts.metadata(Draft("t", {"b": "b" * 4000}), "V4")
    with pytest.raises(FormExpired):                                         # the oldest was let go
        drafts.load(kept)
