"""`${{ }}` expressions and skeleton templating, with Backstage's semantics, in jinja2's sandbox.

Backstage renders templates with Nunjucks; jinja2 reads the same syntax once the few Nunjucks-only
operators are translated (`===`, `!==`, `null`, unquoted object keys). Semantics kept:

* a value that is one whole expression (`${{ parameters.count }}`) keeps its type; anything
  else renders to a string;
* an undefined lookup (`steps.skipped.output.url`) is empty, never an error;
* the context holds `parameters`, `steps[id].output`, `user.entity`, `each` and `secrets`;
  the Backstage filters `parseRepoUrl`, `parseEntityRef`, `pick`, `projectSlug` and `dump` sit
  beside jinja's built-ins.

Rendering is sandboxed: no attribute starting with `_` (so no `''.__class__`), no mutation of the
context, bounded `range`, `*` and `**`; a violation is an `ExpressionError`, as is any other
failure. Messages quote the template text, never the values it was rendered with. Parameter
values are data: their content is never rendered again.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any, Mapping
from urllib.parse import parse_qs

from jinja2 import ChainableUndefined, TemplateError, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from bot.scaffolder.model import ScaffolderError

MAX_RESULT = 1_000_000  # characters or items one `*`/`**` may produce
WHOLE_EXPRESSION = re.compile(r"^\s*\$\{\{((?:(?!\}\}).)*)\}\}\s*$", re.S)
NUNJUCKS_TAGS = {False: re.compile(r"(\$\{\{|\{%)(.*?)(\}\}|%\})", re.S), True: re.compile(r"(\{\{|\{%)(.*?)(\}\}|%\})", re.S)}
STRING_OR_OPERATOR = re.compile(r"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(!==|===)|([{,]\s*)([A-Za-z_$][\w$]*)(\s*:)(?!:)""")


class ExpressionError(ScaffolderError):
    """A template expression that cannot be rendered: bad syntax, a forbidden access, a failing filter."""


class _Undefined(ChainableUndefined):
    """Nunjucks' undefined: lookups on it are undefined too, and joined to a string it is empty
    (`values.destination.owner + "/" + values.destination.repo` does not fail)."""

    __slots__ = ()

    def __add__(self, other: Any) -> Any:
        return other if isinstance(other, (str, Undefined)) else self._fail_with_undefined_error()

    def __radd__(self, other: Any) -> Any:
        return other if isinstance(other, str) else self._fail_with_undefined_error()


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        raise SecurityError(f"access to {attribute!r} is not allowed in a template")

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(left, (int, float)) and isinstance(right, (int, float)) and abs(right) > 64:
            raise SecurityError("exponent too large")
        if operator == "*":
            for sequence, count in ((left, right), (right, left)):
                if isinstance(sequence, (str, list, tuple)) and isinstance(count, int) and len(sequence) * count > MAX_RESULT:
                    raise SecurityError("result too large")
        return super().call_binop(context, operator, left, right)


def _nunjucks_to_jinja(source: str, cookiecutter: bool = False) -> str:
    """`a === b` → `a == b`, `!==` → `!=`, `{ key: 1 }` → `{ "key": 1 }`, inside tags only and
    outside string literals."""
    def fix_tag(match: re.Match[str]) -> str:
        def fix_token(token: re.Match[str]) -> str:
            if token.group(1):
                return token.group(1)
            if token.group(2):
                return token.group(2)[:-1]
            return f'{token.group(3)}"{token.group(4)}"{token.group(5)}'
        return match.group(1) + STRING_OR_OPERATOR.sub(fix_token, match.group(2)) + match.group(3)
    return NUNJUCKS_TAGS[cookiecutter].sub(fix_tag, source)


def dump(value: Any, indent: int | None = None) -> str:
    """Nunjucks' `dump` (JSON.stringify): strings come out quoted, so a YAML value stays a string."""
    return json.dumps(_plain(value), indent=indent or None, ensure_ascii=False, default=str)


def parse_repo_url(url: str) -> dict[str, str]:
    """`github.com?owner=acme&repo=web` → {host, owner, repo} (and organization/workspace/project if given)."""
    if not isinstance(url, str) or "?" not in url:
        raise ValueError("a repository location looks like github.com?owner=OWNER&repo=NAME")
    host, _, query = url.partition("?")
    params = {k: v[0] for k, v in parse_qs(query).items() if v and v[0]}
    host = host.removeprefix("https://").removeprefix("http://").strip("/")
    if not host or not params.get("repo") or not (params.get("owner") or params.get("organization") or params.get("workspace")):
        raise ValueError("a repository location needs a host, an owner and a repo (host?owner=OWNER&repo=NAME)")
    return {"host": host, **{k: params[k] for k in ("owner", "organization", "workspace", "project", "repo") if k in params}}


def project_slug(url: str) -> str:
    parts = parse_repo_url(url)
    return f"{parts.get('owner') or parts.get('organization') or parts.get('workspace')}/{parts['repo']}"


def parse_entity_ref(ref: str, context: Mapping[str, str] | None = None) -> dict[str, str]:
    """Backstage's `parseEntityRef`: `[kind:][namespace/]name`, case kept, defaults from `context`."""
    context = context or {}
    if not isinstance(ref, str) or not ref.strip():
        raise ValueError("an entity reference must be a non-empty string")
    kind, sep, rest = ref.strip().partition(":")
    if not sep:
        kind, rest = context.get("defaultKind", ""), kind
    namespace, sep, name = rest.partition("/")
    if not sep:
        namespace, name = context.get("defaultNamespace", "default"), namespace
    if not kind:
        raise ValueError(f"entity reference {ref!r} has no kind")
    if not namespace or not name:
        raise ValueError(f"entity reference {ref!r} is not [kind:][namespace/]name")
    return {"kind": kind, "namespace": namespace, "name": name}


def pick(value: Any, path: str) -> Any:
    for key in str(path).split("."):
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def _plain(value: Any) -> Any:
    """The value as JSON-like data; an undefined becomes None."""
    if isinstance(value, Undefined):
        return None
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    raise ExpressionError(f"an expression produced a {type(value).__name__}, which is not data")


def _environment(start: str, end: str) -> _Sandbox:
    env = _Sandbox(variable_start_string=start, variable_end_string=end, undefined=_Undefined,
                   keep_trailing_newline=True, autoescape=False, finalize=lambda v: "" if v is None else v)
    env.filters.update(dump=dump, jsonify=dump, parseRepoUrl=parse_repo_url, projectSlug=project_slug,
                       parseEntityRef=parse_entity_ref, pick=pick)
    env.globals.update(null=None, undefined=None)
    for name in ("lipsum", "cycler", "joiner"):
        env.globals.pop(name, None)
    return env


_EXPRESSIONS = _environment("${{", "}}")
_COOKIECUTTER = _environment("{{", "}}")


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 80 else text[:77] + "..."


@lru_cache(maxsize=4096)
def _compiled(source: str, cookiecutter: bool):
    env = _COOKIECUTTER if cookiecutter else _EXPRESSIONS
    return env.from_string(_nunjucks_to_jinja(source, cookiecutter))


@lru_cache(maxsize=4096)
def _compiled_expression(source: str):
    return _EXPRESSIONS.compile_expression(_nunjucks_to_jinja("${{" + source + "}}")[3:-2], undefined_to_none=False)


def _failure(source: str, exc: Exception) -> ExpressionError:
    if isinstance(exc, SecurityError):
        reason = f"not allowed ({exc})"
    elif isinstance(exc, TemplateError):
        reason = exc.message or exc.__class__.__name__
    else:
        reason = str(exc) or exc.__class__.__name__
    return ExpressionError(f"cannot render `{_snippet(source)}`: {reason}")


def render_text(source: str, context: Mapping[str, Any], *, cookiecutter: bool = False) -> str:
    """A string with `${{ }}` (or, for cookiecutter skeletons, `{{ }}`) expressions and `{% %}` tags."""
    if "{{" not in source and "{%" not in source:
        return source
    try:
        return _compiled(source, cookiecutter).render(context)
    except Exception as exc:  # noqa: BLE001 - filters and the sandbox raise many types; all become one
        raise _failure(source, exc) from None


def render_value(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every string inside `value` (a step input, an output, a condition); a whole-value
    expression keeps its type."""
    if isinstance(value, str):
        whole = WHOLE_EXPRESSION.match(value)
        if whole is None:
            return render_text(value, context)
        try:
            return _plain(_compiled_expression(whole.group(1)).__call__(**context))
        except ExpressionError:
            raise
        except Exception as exc:  # noqa: BLE001 - as in render_text
            raise _failure(value, exc) from None
    if isinstance(value, Mapping):
        return {k: render_value(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, context) for v in value]
    return value


def is_true(condition: Any, context: Mapping[str, Any]) -> bool:
    """A step's or an output's `if:`: rendered, then truthy as in JavaScript for strings and numbers."""
    if condition is None:
        return True
    result = render_value(condition, context)
    if isinstance(result, str):
        return result.strip() not in ("", "false", "undefined", "null", "0")
    return bool(result) or result == []  # an empty array is truthy in JavaScript


def syntax_problem(source: str) -> str | None:
    """Why `source` cannot be parsed, or None (for `template validate`)."""
    try:
        _compiled(source, False)
    except TemplateError as exc:
        return f"`{_snippet(source)}`: {exc.message or exc.__class__.__name__}"
    return None
