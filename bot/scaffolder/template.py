"""Reading `kind: Template` documents (scaffolder.backstage.io/v1beta3) and checking them before
anything runs: shape, step ids, known actions, parameter schemas and expression syntax."""
from __future__ import annotations

import glob
from pathlib import Path
from typing import Any, Collection, Iterable, Iterator

import yaml
from jsonschema import Draft7Validator
from jsonschema.exceptions import SchemaError

from bot.catalog.entity import NAME_RE
from bot.scaffolder.expressions import syntax_problem
from bot.scaffolder.model import Template

API_VERSION = "scaffolder.backstage.io/v1beta3"
TEMPLATE_FILES = ("template.yaml", "template.yml")


class TemplateError(ValueError):
    """A document that is not a usable template; the message says what is wrong."""


def _pages(parameters: Any) -> tuple[dict, ...]:
    if parameters is None:
        return ()
    pages = parameters if isinstance(parameters, list) else [parameters]
    if not all(isinstance(p, dict) for p in pages):
        raise TemplateError("spec.parameters must be a JSON-schema object or a list of them")
    return tuple(pages)


def _steps(steps: Any) -> tuple[dict, ...]:
    if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
        raise TemplateError("spec.steps must be a list of steps")
    found = []
    for number, step in enumerate(steps, 1):
        if not isinstance(step.get("action"), str) or not step["action"]:
            raise TemplateError(f"step {number} has no action")
        step_id = str(step.get("id") or f"step-{number}")
        found.append({**step, "id": step_id, "name": str(step.get("name") or step_id), "input": step.get("input") or {}})
    return tuple(found)


def parse(doc: Any, source: str) -> Template:
    """A Template from a YAML document; `source` is where it came from (a file path for local ones)."""
    if not isinstance(doc, dict) or doc.get("kind") != "Template":
        raise TemplateError("not a kind: Template document")
    if doc.get("apiVersion") != API_VERSION:
        raise TemplateError(f"apiVersion must be {API_VERSION} (got {doc.get('apiVersion')!r})")
    metadata, spec = doc.get("metadata"), doc.get("spec")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str) or not NAME_RE.match(metadata["name"]):
        raise TemplateError("metadata.name must be 1-63 letters and digits separated by -, _ or .")
    if not isinstance(spec, dict):
        raise TemplateError("spec is missing")
    output = spec.get("output") or {}
    if not isinstance(output, dict):
        raise TemplateError("spec.output must be a mapping with links and text")
    namespace = metadata.get("namespace") or "default"
    tags = metadata.get("tags") or []
    return Template(
        ref=f"template:{namespace}/{metadata['name']}".lower(), name=metadata["name"],
        title=str(metadata.get("title") or metadata["name"]), description=str(metadata.get("description") or ""),
        owner=str(spec.get("owner") or ""), tags=tuple(str(t) for t in tags if isinstance(tags, list)),
        parameters=_pages(spec.get("parameters")), steps=_steps(spec.get("steps")), output=output, source=source,
    )


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def problems(template: Template, actions: Collection[str]) -> list[str]:
    """Everything that would stop this template from running; empty when it can run."""
    found: list[str] = []
    seen: set[str] = set()
    for step in template.steps:
        if step["id"] in seen:
            found.append(f"step id {step['id']!r} is used twice")
        seen.add(step["id"])
        if step["action"] not in actions:
            found.append(f"step {step['id']!r}: unknown action {step['action']!r} (known: {', '.join(sorted(actions))})")
        if not isinstance(step["input"], dict):
            found.append(f"step {step['id']!r}: input must be a mapping")
        if "each" in step and not isinstance(step["each"], (str, list, dict)):
            found.append(f"step {step['id']!r}: each must be a list, a mapping or an expression")
    for number, page in enumerate(template.parameters, 1):
        if not isinstance(page.get("properties", {}), dict):
            found.append(f"parameters page {number}: properties must be a mapping")
            continue
        try:
            Draft7Validator.check_schema(page)
        except SchemaError as exc:
            found.append(f"parameters page {number}: {exc.message}")
    for item in ("links", "text"):
        entries = template.output.get(item, [])
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            found.append(f"output.{item} must be a list of mappings")
    found.extend(problem for text in _strings([list(template.steps), template.output])
                 if (problem := syntax_problem(text)) is not None)
    return found


def read_file(path: Path) -> list[Template]:
    """Every Template document in a YAML file (other kinds are ignored); raises TemplateError."""
    try:
        docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"{path}: cannot read ({exc.__class__.__name__})") from None
    except yaml.YAMLError as exc:
        raise TemplateError(f"{path}: not YAML ({str(exc).splitlines()[0]})") from None
    found = []
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") == "Template":
            try:
                found.append(parse(doc, str(path.resolve())))
            except TemplateError as exc:
                raise TemplateError(f"{path}: {exc}") from None
    return found


def template_files(patterns: Iterable[str]) -> list[Path]:
    """`template.yaml` files under the given directories, and files matching the given globs."""
    found: dict[Path, None] = {}
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            for name in TEMPLATE_FILES:
                found.update((p, None) for p in sorted(path.rglob(name)))
        else:
            found.update((Path(p), None) for p in sorted(glob.glob(pattern, recursive=True)) if Path(p).is_file())
    return list(found)
