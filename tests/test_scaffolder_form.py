"""Template parameters as Slack modals: the real Backstage templates (tests/data/backstage-templates)
and the demo ones (examples/templates) become valid views, a filled view reads back as the values Backstage's form would send, and
errors land on the block that caused them."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.catalog.index import CatalogIndex
from bot.catalog.loader import CatalogLoader, parse_documents
from bot.scaffolder import form
from bot.scaffolder.model import Template
from bot.scaffolder.parameters import validate
from bot.scaffolder.template import parse, read_file
from tests.conftest import DEMO_CATALOG, ROOT

TEMPLATES = Path(__file__).resolve().parent / "data" / "backstage-templates"
ALL = sorted(TEMPLATES.glob("*/template.yaml")) + sorted((ROOT / "examples" / "templates").glob("*/template.yaml"))
INPUT_TYPES = {"plain_text_input", "static_select", "external_select", "multi_static_select", "checkboxes",
               "radio_buttons", "number_input"}


@pytest.fixture(scope="module")
def catalog() -> CatalogIndex:
    result = CatalogLoader(5_000_000).load([str(DEMO_CATALOG)])
    return CatalogIndex.build([e for s in result.sources.values() for e in s.entities])


def load(name: str) -> Template:
    return read_file(TEMPLATES / name / "template.yaml")[0]


def template_of(*pages: dict[str, Any]) -> Template:
    return parse({"apiVersion": "scaffolder.backstage.io/v1beta3", "kind": "Template", "metadata": {"name": "t", "title": "Test"},
                  "spec": {"type": "service", "parameters": list(pages), "steps": [{"id": "log", "action": "debug:log"}]}}, "t")


def fill(view: dict[str, Any], answers: dict[str, Any]) -> dict[str, Any]:
    """The `state` Slack sends for a view: `answers` by block id (text, option labels, True/False),
    initial values elsewhere, as a person leaving them untouched would."""
    values: dict[str, Any] = {}
    for block in view["blocks"]:
        if block["type"] != "input":
            continue
        element, answer = block["element"], answers.get(block["block_id"])
        values[block["block_id"]] = {element["action_id"]: _element_state(element, answer)}
    return {"values": values}


def _element_state(element: dict[str, Any], answer: Any) -> dict[str, Any]:
    kind = element["type"]
    options = element.get("options") or []

    def by_label(label: Any) -> dict[str, Any]:
        return next(o for o in options if o["text"]["text"] == label or o["value"] == label)

    if kind in ("plain_text_input", "number_input"):
        return {"type": kind, "value": answer if answer is not None else element.get("initial_value")}
    if kind in ("static_select", "radio_buttons", "external_select"):
        chosen = (answer if isinstance(answer, dict) else by_label(answer)) if answer is not None else element.get("initial_option")
        return {"type": kind, "selected_option": chosen}
    if kind == "checkboxes":
        chosen = options if answer is True else [] if answer is False else element.get("initial_options", [])
        return {"type": kind, "selected_options": chosen}
    chosen = [by_label(a) for a in answer] if answer is not None else element.get("initial_options", [])
    return {"type": kind, "selected_options": chosen}


def walk(template: Template, catalog: CatalogIndex, answers: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every view of the form, filled with `answers`; returns the views and the values."""
    draft, views = form.Draft(template.ref), []
    while (screen := form.next_screen(template, draft.values, draft.asked)) is not None:
        view = form.screen_view(template, screen, catalog, "create_service_form", draft.encode())
        views.append(view)
        state = fill(view, answers)
        draft.values = form.merge(draft.values, form.values_from_state(state, screen))
        draft.asked += [f.key for f in screen.fields]
        assert len(views) < 20, "the form does not end"
    return views, draft.values


def inputs(views: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {b["block_id"]: b for v in views for b in v["blocks"] if b["type"] == "input"}


@pytest.mark.parametrize("path", ALL, ids=[f"{p.parent.parent.name}/{p.parent.name}" for p in ALL])
def test_every_real_template_becomes_valid_views(path: Path, catalog: CatalogIndex):
    template = read_file(path)[0]
    views, _ = walk(template, catalog, {})
    assert len(views) == len(template.parameters)
    blocks = inputs(views)
    for view in views:
        assert view["type"] == "modal" and len(view["blocks"]) <= form.MAX_BLOCKS
        assert len(view["title"]["text"]) <= 24 and len(view["private_metadata"]) <= 3000
        assert sum(1 for b in view["blocks"] if b.get("element", {}).get("focus_on_load")) <= 1
        ids = [b["block_id"] for b in view["blocks"] if "block_id" in b]
        assert len(ids) == len(set(ids))
    for block in blocks.values():
        assert block["element"]["type"] in INPUT_TYPES and len(block["label"]["text"]) <= 2000
    for page in template.parameters:
        for name in page.get("required") or []:
            schema = page["properties"][name]
            ids = [f"{name}:owner", f"{name}:repo"] if schema.get("ui:field") == "RepoUrlPicker" else [name]
            for block_id in ids:
                assert blocks[block_id]["optional"] is (schema.get("type") == "boolean"), block_id


def test_pickers_become_the_right_inputs(catalog: CatalogIndex):
    views, _ = walk(load("create-react-app"), catalog, {})
    blocks = inputs(views)
    name = blocks["component_id"]
    assert name["element"]["type"] == "plain_text_input" and name["element"]["max_length"] == 63
    assert name["hint"]["text"] == "Unique name of the component"
    owner = blocks["owner"]["element"]
    assert owner["type"] == "static_select"
    assert {o["value"] for o in owner["options"]} == set(catalog.keys_of_kind("Group"))
    assert "Payments (payments-team)" in [o["text"]["text"] for o in owner["options"]]
    assert "repoUrl:host" not in blocks                                      # one allowed host: nothing to choose
    assert blocks["repoUrl:owner"]["element"]["type"] == blocks["repoUrl:repo"]["element"]["type"] == "plain_text_input"

    rails = inputs(walk(load("rails-demo"), catalog, {})[0])
    assert {o["value"] for o in rails["system"]["element"]["options"]} == set(catalog.keys_of_kind("System"))
    assert rails["dryRun"]["element"]["type"] == "checkboxes" and "initial_options" not in rails["dryRun"]["element"]
    assert rails["railsArguments.webpacker"]["element"]["type"] == "static_select"
    assert rails["railsArguments.webpacker"]["label"]["text"] == "arguments to run the rails new command › webpacker"
    assert rails["railsArguments.template"]["element"]["initial_value"] == "./rails-template-file.rb"

    hosts = inputs(walk(load("clean-architecture-app"), catalog, {})[0])["repoUrl:host"]["element"]
    assert [o["value"] for o in hosts["options"]] == ["github.com", "dev.azure.com"]

    demo = inputs(walk(load("conditional-output-demo"), catalog, {})[0])
    assert demo["enableCI"]["element"]["initial_option"]["text"]["text"] == "Yes"
    assert demo["showDetails"]["element"]["initial_options"][0]["value"] == "true"


def test_filled_views_read_back_as_backstage_values(catalog: CatalogIndex):
    answers = {"component_id": "payments-ui", "description": "The shop's payment pages", "owner": "Payments (payments-team)",
               "repoUrl:owner": "acme", "repoUrl:repo": "payments-ui"}
    _, values = walk(load("create-react-app"), catalog, answers)
    assert values == {"component_id": "payments-ui", "description": "The shop's payment pages",
                      "owner": "group:default/payments-team", "repoUrl": "github.com?owner=acme&repo=payments-ui"}
    assert validate(load("create-react-app"), values) == {}

    _, rails = walk(load("rails-demo"), catalog, {"name": "shop", "owner": "Payments (payments-team)", "repoUrl:owner": "acme",
                                                  "repoUrl:repo": "shop", "railsArguments.database": "postgresql",
                                                  "railsArguments.api": True})
    assert rails["dryRun"] is False and "system" not in rails                    # empty optional inputs are left out
    assert rails["railsArguments"] == {"minimal": False, "skipBundle": False, "skipWebpackInstall": False, "api": True,
                                       "template": "./rails-template-file.rb", "database": "postgresql"}

    _, demo = walk(load("conditional-output-demo"), catalog, {"name": "x", "enableCI": "No", "showDetails": False})
    assert demo == {"name": "x", "enableCI": "No", "showDetails": False}


def test_errors_are_keyed_by_block_id(catalog: CatalogIndex):
    template = load("create-react-app")
    screen = form.next_screen(template, {}, [])
    view = form.screen_view(template, screen, catalog, "cb", "")
    values = form.values_from_state(fill(view, {"component_id": "Not a name!", "description": "", "owner": None}), screen)
    errors = form.screen_errors(screen, values, validate(template, values))
    assert set(errors) == {"component_id", "owner"}
    assert errors["owner"] == "Required."
    assert "63" in errors["component_id"]

    location = form.next_screen(template, {"component_id": "x"}, ["component_id", "description", "owner"])
    view = form.screen_view(template, location, catalog, "cb", "")
    only_repo = form.values_from_state(fill(view, {"repoUrl:repo": "x"}), location)
    assert form.screen_errors(location, only_repo, validate(template, only_repo)) == {"repoUrl:owner": "Required."}
    none = form.values_from_state(fill(view, {}), location)
    assert form.screen_errors(location, none, validate(template, none)) == {"repoUrl:owner": "Required."}


def test_schema_rules_and_custom_messages():
    template = template_of({
        "title": "Fill in some steps", "required": ["name", "size"],
        "properties": {"name": {"title": "Name", "type": "string", "maxLength": 8,
                                "pattern": "^([a-zA-Z][a-zA-Z0-9]*)(-[a-zA-Z0-9]+)*$"},
                       "size": {"title": "Size", "type": "integer", "minimum": 1, "maximum": 5, "default": 2},
                       "repo": {"title": "Repo", "type": "string", "ui:field": "RepoUrlPicker",
                                "ui:options": {"allowedHosts": ["github.com"], "allowedOwners": ["acme", "acme-labs"]}}},
        "errorMessage": {"properties": {"name": "1-8 alphanumeric tokens (first starts with letter) delimited by -"}},
    })
    screen = form.next_screen(template, {}, [])
    view = form.screen_view(template, screen, CatalogIndex(), "cb", "")
    blocks = inputs([view])
    assert blocks["size"]["element"] == {"type": "number_input", "action_id": "value", "is_decimal_allowed": False,
                                         "initial_value": "2", "min_value": "1", "max_value": "5"}
    assert [o["value"] for o in blocks["repo:owner"]["element"]["options"]] == ["acme", "acme-labs"]
    values = form.values_from_state(fill(view, {"name": "9lives-and-more", "size": "9", "repo:owner": "acme",
                                                "repo:repo": "x y"}), screen)
    assert values == {"name": "9lives-and-more", "size": 9, "repo": "github.com?owner=acme&repo=x+y"}
    errors = form.screen_errors(screen, values, validate(template, values))
    assert errors["name"] == "1-8 alphanumeric tokens (first starts with letter) delimited by -"
    assert set(errors) == {"name", "size", "repo:repo"}


def test_dependencies_and_conditions_reveal_fields_on_the_next_view(catalog: CatalogIndex):
    template = template_of({
        "title": "Fill in some steps", "ui:order": ["includeName", "lastName", "kind", "*"],
        "properties": {"includeName": {"title": "Include Name?", "type": "boolean", "default": True},
                       "kind": {"title": "Kind", "type": "string", "enum": ["service", "library"],
                                "enumNames": ["A service", "A library"]}},
        "required": ["kind"],
        "dependencies": {
            "includeName": {"allOf": [{"if": {"properties": {"includeName": {"const": True}}},
                                       "then": {"properties": {"lastName": {"title": "Last Name", "type": "string"}},
                                                "required": ["lastName"]}}]},
            "kind": {"oneOf": [{"properties": {"kind": {"enum": ["service"]}, "port": {"title": "Port", "type": "integer"}},
                                "required": ["port"]},
                               {"properties": {"kind": {"enum": ["library"]},
                                               "languages": {"title": "Languages", "type": "array", "uniqueItems": True,
                                                             "items": {"type": "string", "enum": ["go", "python", "java"]}}}}]}},
    })
    views, values = walk(template, catalog, {"kind": "A service", "lastName": "Lovelace", "port": "8080"})
    assert [sorted(inputs([v])) for v in views] == [["includeName", "kind"], ["lastName", "port"]]
    assert inputs(views[1:])["lastName"]["optional"] is False
    assert values == {"includeName": True, "kind": "service", "lastName": "Lovelace", "port": 8080}

    views, values = walk(template, catalog, {"includeName": False, "kind": "A library", "languages": ["go", "python"]})
    assert [sorted(inputs([v])) for v in views] == [["includeName", "kind"], ["languages"]]
    assert inputs(views)["languages"]["element"]["type"] == "multi_static_select"
    assert values == {"includeName": False, "kind": "library", "languages": ["go", "python"]}


def test_an_if_then_on_the_page_waits_for_its_answer(catalog: CatalogIndex):
    template = template_of({
        "properties": {"public": {"title": "Public?", "type": "boolean", "ui:widget": "radio"},
                       "notes": {"type": "null", "description": "**Read this** first."}},
        "if": {"properties": {"public": {"const": True}}, "required": ["public"]},
        "then": {"properties": {"licence": {"title": "Licence", "type": "string", "enum": ["MIT", "Apache-2.0"]}},
                 "required": ["licence"]},
    })
    views, values = walk(template, catalog, {"public": "Yes", "licence": "MIT"})
    assert views[0]["blocks"][3] == {"type": "section", "block_id": "notes", "text": {"type": "mrkdwn", "text": "**Read this** first."}}
    assert inputs(views[:1])["public"]["element"]["type"] == "radio_buttons"
    assert values == {"public": True, "licence": "MIT"}
    assert len(walk(template, catalog, {"public": "No"})[0]) == 1


def test_more_fields_than_one_view_holds_are_split():
    many = {f"field{i:03d}": {"title": f"Field {i}", "type": "string"} for i in range(150)}
    many["repoUrl"] = {"type": "string", "ui:field": "RepoUrlPicker", "ui:options": {"allowedHosts": ["github.com", "gitlab.com"]}}
    template = template_of({"title": "Everything", "properties": many, "required": ["field149"]})
    views, values = walk(template, CatalogIndex(), {"field149": "last", "repoUrl:owner": "acme", "repoUrl:repo": "x"})
    assert [len(v["blocks"]) for v in views] == [100, 57]          # 98 fields, then 52 and the 3 of the location
    assert values == {"field149": "last", "repoUrl": "github.com?owner=acme&repo=x"}


def test_large_catalogs_use_a_searchable_picker():
    docs = "\n---\n".join(yaml.safe_dump({"apiVersion": "backstage.io/v1alpha1", "kind": "System",
                                          "metadata": {"name": f"system-{i:03d}"}, "spec": {"owner": "team"}}) for i in range(150))
    entities, _ = parse_documents(docs.encode(), "systems.yaml")
    index = CatalogIndex.build(entities)
    picker = template_of({"properties": {"system": {"type": "string", "ui:field": "EntityPicker", "default": "system-007",
                                                    "ui:options": {"catalogFilter": {"kind": "System"}}}}})
    screen = form.next_screen(picker, {}, [])
    element = inputs([form.screen_view(picker, screen, index, "cb", "")])["system"]["element"]
    assert element["type"] == "external_select" and element["action_id"] == form.ENTITY_OPTIONS
    assert element["initial_option"]["value"] == "system:default/system-007"
    field = form.find_field(picker, "system")
    assert [ref for ref, _ in form.entity_choices(index, field, "system-14")][:2] == ["system:default/system-140", "system:default/system-141"]


def test_catalog_filters(catalog: CatalogIndex):
    def offered(options: dict[str, Any]) -> set[str]:
        template = template_of({"properties": {"who": {"type": "string", "ui:field": "OwnerPicker", "ui:options": options}}})
        return {ref for ref, _ in form.entity_choices(catalog, form.find_field(template, "who"))}

    groups, users = set(catalog.keys_of_kind("Group")), set(catalog.keys_of_kind("User"))
    assert offered({}) == groups | users
    assert offered({"catalogFilter": {"kind": "Group", "spec.type": "organization"}}) == {"group:default/engineering"}
    with_channel = offered({"catalogFilter": [{"kind": ["Group"], "metadata.annotations.slack.com/channel-id": {"exists": True}}]})
    assert "group:default/payments-team" in with_channel and "group:default/catalog-team" not in with_channel


def test_the_draft_fits_in_private_metadata_and_round_trips():
    draft = form.Draft("template:default/x", {"name": "ü" * 10, "nested": {"a": [1, 2]}}, ["name", "nested.a"])
    assert form.Draft.decode(draft.encode()) == draft
    assert form.Draft.decode("") == form.Draft("")


def test_summary_shows_labels_and_masks_secrets():
    template = template_of({"properties": {
        "kind": {"title": "Kind", "type": "string", "enum": ["svc"], "enumNames": ["A service"]},
        "token": {"title": "Token", "type": "string", "ui:widget": "password"},
        "tags": {"title": "Tags", "type": "array", "items": {"type": "string"}},
        "repoUrl": {"title": "Repository", "type": "string", "ui:field": "RepoUrlPicker"}}})
    values = {"kind": "svc", "token": "s3cret", "tags": ["a", "b"], "repoUrl": "github.com?owner=acme&repo=x"}
    assert form.summary(template, values, list(values)) == [("Kind", "A service"), ("Token", "••••••"), ("Tags", "a, b"),
                                                            ("Repository", "github.com/acme/x")]
