"""Parameter values against a template's JSON-schema pages and Backstage's field rules.

A form sends what the user typed; here it is completed with the schema's defaults, empty fields
are dropped (as Backstage's form does), and every rule is checked: the JSON schema of each page
(`required`, `pattern`, `minLength`, `enum`, `dependencies`, `if`...) and the `ui:field` pickers:
`EntityNamePicker` (Backstage's name rule), `RepoUrlPicker` (`allowedHosts`, `allowedOwners`,
`allowedRepos`), `OwnerPicker` and `EntityPicker` (an entity reference).
"""
from __future__ import annotations

import re
from typing import Any, Iterator

from jsonschema import Draft7Validator, ValidationError

from bot.catalog.entity import NAME_RE
from bot.catalog.refs import RefError, parse_ref
from bot.scaffolder.expressions import parse_repo_url
from bot.scaffolder.model import Template

REPO_NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
NAME_RULE = "must be 1-63 letters and digits, separated by single -, _ or ."


def fields(template: Template) -> Iterator[tuple[str, dict]]:
    """Every top-level (name, schema) of every page, dependent branches included."""
    for page in template.parameters:
        yield from (page.get("properties") or {}).items()
        for dependency in (page.get("dependencies") or {}).values():
            for branch in (dependency.get("oneOf") or [dependency]) if isinstance(dependency, dict) else []:
                yield from (branch.get("properties") or {}).items()


def field_with(template: Template, ui_field: str) -> str | None:
    return next((name for name, schema in fields(template)
                 if isinstance(schema, dict) and schema.get("ui:field") == ui_field), None)


def complete(template: Template, values: dict) -> dict:
    """Values with empty answers dropped and the schema's defaults filled in."""
    done = {k: v for k, v in values.items() if v is not None and v != "" and v != []}
    for name, schema in fields(template):
        if name not in done and isinstance(schema, dict) and "default" in schema:
            done[name] = schema["default"]
    return done


def _message(error: ValidationError) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "required":
        return "is required"
    if error.validator == "pattern":
        return schema.get("ui:help") or f"must match {error.validator_value}"
    if error.validator == "minLength":
        return f"must be at least {error.validator_value} characters"
    if error.validator == "maxLength":
        return f"must be at most {error.validator_value} characters"
    if error.validator == "enum":
        return f"must be one of {', '.join(map(str, error.validator_value))}"
    if error.validator == "type":
        kind = error.validator_value if isinstance(error.validator_value, str) else " or ".join(error.validator_value)
        return f"must be {'an' if kind[0] in 'aeiou' else 'a'} {kind}"
    return error.message


def _field_of(error: ValidationError) -> str:
    if error.validator == "required" and not error.path:
        return re.match(r"'(.*?)' is a required property", error.message).group(1)  # type: ignore[union-attr]
    return str(error.path[0]) if error.path else ""


def _picker_problem(schema: dict, value: Any) -> str | None:
    picker, options = schema.get("ui:field"), schema.get("ui:options") or {}
    if picker == "EntityNamePicker":
        if not isinstance(value, str) or not NAME_RE.match(value) or len(value) > 63:
            return NAME_RULE
    elif picker == "RepoUrlPicker":
        try:
            repo = parse_repo_url(value)
        except ValueError as exc:
            return str(exc)
        owner = repo.get("owner") or repo.get("organization") or repo.get("workspace")
        for option, actual, what in (("allowedHosts", repo["host"], "host"), ("allowedOwners", owner, "owner"),
                                     ("allowedOrganizations", repo.get("organization"), "organization"),
                                     ("allowedRepos", repo["repo"], "repository")):
            allowed = options.get(option)
            if allowed and actual is not None and actual not in allowed:
                return f"{what} {actual} is not allowed here (allowed: {', '.join(allowed)})"
        if not REPO_NAME.match(repo["repo"]) or repo["repo"] in (".", ".."):
            return "the repository name may only hold letters, digits, ., - and _"
    elif picker in ("OwnerPicker", "EntityPicker", "MyGroupsPicker"):
        default_kind = options.get("defaultKind") or ("group" if picker != "EntityPicker" else None)
        try:
            parse_ref(value, default_kind=default_kind.lower() if isinstance(default_kind, str) else None,
                      default_namespace=options.get("defaultNamespace") or "default")
        except RefError as exc:
            return str(exc)
    return None


def validate(template: Template, values: dict) -> dict[str, str]:
    """{parameter name: what is wrong}; empty when the values are acceptable."""
    errors: dict[str, str] = {}
    for page in template.parameters:
        for error in sorted(Draft7Validator(page).iter_errors(values), key=lambda e: e.path):
            errors.setdefault(_field_of(error) or "values", _message(error))
    for name, schema in fields(template):
        if name in values and name not in errors and isinstance(schema, dict):
            problem = _picker_problem(schema, values[name])
            if problem:
                errors[name] = problem
    return errors


def owner_ref(template: Template, values: dict) -> str:
    """The owner chosen in the form (the `OwnerPicker` field, else one named `owner`), as a full
    reference; "" when the template asks for none."""
    name = field_with(template, "OwnerPicker") or ("owner" if any(n == "owner" for n, _ in fields(template)) else None)
    value = values.get(name) if name else None
    if not isinstance(value, str) or not value:
        return ""
    try:
        return str(parse_ref(value, default_kind="group"))
    except RefError:
        return ""
