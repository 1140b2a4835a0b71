"""Markdown runbooks and doc pages as Slack mrkdwn and Block Kit, for `/runbook` and `/docs`.

Pure functions, no Slack SDK and no I/O. Markdown is parsed with markdown-it-py (CommonMark plus
GFM tables and strikethrough) and rendered from its syntax tree: markdown-to-mrkdwn is line-regex
based and gets real pages wrong (it never closes a fence with an info string such as
```` ```plantuml format="svg" ````, rewrites `*`/`__` inside code spans and indented fences,
keeps HTML comments, escapes nothing and mangles tables), so it is not used.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlparse

import yaml
from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

BLOCK_LIMIT = 3000  # Slack: characters in a section block's text
HEADER_LIMIT = 150  # Slack: characters in a header block's text
MAX_SECTION_BLOCKS = 20  # Slack allows 50 blocks per message; keep well under
MIN_CHARS = 100  # smallest budget `render` accepts
FENCE = "```"

_MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)?---[ \t]*(?:\n|\Z)", re.S)
_MARKS = {"strong": "*", "em": "_", "s": "~"}
_JUSTIFY = {"text-align:right": str.rjust, "text-align:center": str.center}
_BREAK = re.compile(r"<br\s*/?>", re.I)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_TAG = re.compile(r"</?[A-Za-z][^>]*>")


@dataclass(frozen=True)
class Section:
    """A heading and the Markdown under it, up to the next heading of any level.

    Text before the first heading is a section titled with the front matter's `title` (or
    "Overview"), at level 1 with an empty anchor (the top of the page).
    """

    title: str
    level: int
    anchor: str
    body: str


@dataclass(frozen=True)
class Rendered:
    """A Block Kit message; `next_start` is the first section not shown, if the page was cut."""

    blocks: list[dict[str, Any]]
    next_start: int | None
    text: str


def split_sections(markdown: str) -> list[Section]:
    """Split at top-level ATX and setext headings (not at `#` lines inside code blocks)."""
    text, doc_title = _front_matter(markdown)
    lines = text.split("\n")
    root = SyntaxTreeNode(_MD.parse(text))
    headings = [node for node in root.children if node.type == "heading"]
    spans = [node.map or (0, 0) for node in headings] + [(len(lines), len(lines))]
    sections: list[Section] = []
    preamble = "\n".join(lines[: spans[0][0]]).strip("\n")
    if to_mrkdwn(preamble):
        sections.append(Section(doc_title or "Overview", 1, "", preamble))
    seen: dict[str, int] = {}
    for index, node in enumerate(headings):
        title = _inline(node.children[0].children, "", plain=True).strip()
        body = "\n".join(lines[spans[index][1] : spans[index + 1][0]]).strip("\n")
        sections.append(Section(title, int(node.tag[1]), _slug(title, seen), body))
    return sections


def to_mrkdwn(markdown: str, *, base_url: str = "") -> str:
    """Convert Markdown to Slack mrkdwn; relative links resolve against `base_url` (else text only)."""
    root = SyntaxTreeNode(_MD.parse(_front_matter(markdown)[0]))
    return _blocks(root.children, base_url, "\n\n").strip("\n")


def render(
    markdown: str, *, title: str, source_url: str, max_chars: int = 2800, start: int = 0
) -> Rendered:
    """Render the sections from `start` on, up to `max_chars` of mrkdwn, cut at a section boundary.

    A first section longer than the budget on its own is cut at a paragraph boundary, and the
    next page starts at the section after it. Relative links resolve against `source_url`.
    """
    sections = split_sections(markdown)
    if not 0 <= start <= max(len(sections) - 1, 0) or max_chars < MIN_CHARS:
        raise ValueError(f"need 0 <= start < {len(sections)} and max_chars >= {MIN_CHARS}")
    texts, end, cut = _fill(sections, start, max_chars, source_url)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(title, HEADER_LIMIT)}}
    ]
    blocks += [{"type": "section", "text": {"type": "mrkdwn", "text": text}} for text in texts]
    context = []
    if start > 0 or end < len(sections):
        cut_note = ", the last one cut short" if cut else ""
        context.append(f"Showing sections {start + 1}–{end} of {len(sections)}{cut_note}")
    if source_url:
        context.append(f"<{_url(source_url)}|View the source>")
    if context:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": c} for c in context]})
    shown = ", ".join(section.title for section in sections[start:end])
    text = f"{title}: {shown}" if shown else title
    return Rendered(blocks, end if end < len(sections) else None, text)


def _fill(
    sections: list[Section], start: int, max_chars: int, base_url: str
) -> tuple[list[str], int, bool]:
    """Block texts for the sections from `start`, the index after the last one shown, and whether
    that one was cut short."""
    texts: list[str] = []
    used = 0
    for index in range(start, len(sections)):
        text = _section_mrkdwn(sections[index], base_url)
        units = _paragraphs(text, min(max_chars, BLOCK_LIMIT))
        packed = _pack(texts, units)
        if used + len(text) <= max_chars and len(packed) <= MAX_SECTION_BLOCKS:
            texts, used = packed, used + len(text) + 2
            continue
        if index > start:
            return texts, index, False
        for unit in units:
            packed = _pack(texts, [unit])
            if used + len(unit) > max_chars or len(packed) > MAX_SECTION_BLOCKS:
                break
            texts, used = packed, used + len(unit) + 2
        return texts, index + 1, True
    return texts, len(sections), False


def _front_matter(markdown: str) -> tuple[str, str | None]:
    """The Markdown without YAML front matter, and the front matter's `title`."""
    text = markdown.replace("\r\n", "\n")
    match = _FRONT_MATTER.match(text)
    if not match:
        return text, None
    try:
        meta = yaml.safe_load(match.group(1) or "")
    except yaml.YAMLError:
        return text, None
    if meta is None:
        return text[match.end() :], None
    if not isinstance(meta, dict):
        return text, None  # `---` thematic breaks around text, not front matter
    return text[match.end() :], str(meta["title"]) if meta.get("title") else None


def _slug(title: str, seen: dict[str, int]) -> str:
    """GitHub's anchor for a heading: lower case, punctuation removed, spaces to `-`, deduplicated."""
    slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
    count = seen.get(slug, 0)
    seen[slug] = count + 1
    return f"{slug}-{count}" if count else slug


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _url(href: str) -> str:
    return _escape(href).replace("|", "%7C")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _blocks(nodes: list[SyntaxTreeNode], base_url: str, separator: str) -> str:
    return separator.join(filter(None, (_block(node, base_url) for node in nodes)))


def _block(node: SyntaxTreeNode, base_url: str) -> str:
    match node.type:
        case "heading":
            return f"*{_inline(node.children[0].children, base_url)}*"
        case "paragraph":
            return _inline(node.children[0].children, base_url)
        case "fence" | "code_block":
            return f"{FENCE}\n{_escape(node.content.rstrip(chr(10)))}\n{FENCE}"
        case "bullet_list" | "ordered_list":
            return _list(node, base_url)
        case "blockquote":
            quoted = _blocks(node.children, base_url, "\n\n").split("\n")
            return "\n".join(f"> {line}" if line else ">" for line in quoted)
        case "table":
            return _table(node)
        case "hr":
            return "──────────"
        case "html_block":
            return _escape(_TAG.sub("", _COMMENT.sub("", node.content)).strip())
    return ""


def _list(node: SyntaxTreeNode, base_url: str) -> str:
    children = [child for item in node.children for child in item.children]
    loose = any(child.type == "paragraph" and not child.hidden for child in children)
    first = int(node.attrs.get("start", 1))
    items = []
    for number, item in enumerate(node.children, first):
        marker = f"{number}. " if node.type == "ordered_list" else "• "
        body = _blocks(item.children, base_url, "\n\n" if loose else "\n")
        items.append(marker + _indent(body, " " * len(marker)))
    return ("\n\n" if loose else "\n").join(items)


def _indent(text: str, pad: str) -> str:
    """Indent the lines after the first, except code blocks, which Slack wants at the margin."""
    lines, fenced = text.split("\n"), False
    for index, line in enumerate(lines):
        if line == FENCE:
            fenced = not fenced
        elif index and line and not fenced:
            lines[index] = pad + line
    return "\n".join(lines)


def _table(node: SyntaxTreeNode) -> str:
    """A GFM table as an aligned monospace table in a code block (an empty header row is dropped)."""
    rows = [
        [_inline(cell.children[0].children, "", plain=True) for cell in row.children]
        for part in node.children
        for row in part.children
    ]
    styles = [str(cell.attrs.get("style", "")) for cell in node.children[0].children[0].children]
    widths = [max(len(row[column]) for row in rows) for column in range(len(styles))]

    def line(cells: list[str]) -> str:
        columns = zip(cells, widths, styles)
        return " | ".join(_JUSTIFY.get(style, str.ljust)(cell, width) for cell, width, style in columns).rstrip()

    header, *body = rows
    lines = [line(header), "-+-".join("-" * width for width in widths)] if any(header) else []
    lines += [line(row) for row in body]
    return f"{FENCE}\n{_escape(chr(10).join(lines))}\n{FENCE}"


def _inline(nodes: list[SyntaxTreeNode], base_url: str, plain: bool = False) -> str:
    """Inline Markdown as mrkdwn, or as plain text (titles, anchors, table cells)."""
    out = []
    for node in nodes:
        inner = _inline(node.children, base_url, plain)
        match node.type:
            case "text":
                out.append(node.content if plain else _escape(node.content))
            case "code_inline":
                out.append(node.content if plain else f"`{_escape(node.content)}`")
            case "softbreak":
                out.append(" ")
            case "hardbreak":
                out.append("\n")
            case "strong" | "em" | "s":
                out.append(inner if plain else f"{_MARKS[node.type]}{inner}{_MARKS[node.type]}")
            case "link":
                out.append(inner if plain else _link(str(node.attrs["href"]), inner, base_url))
            case "image":
                alt = node.content
                out.append(alt if plain else _link(str(node.attrs["src"]), _escape(alt), base_url))
            case "html_inline":
                out.append((" " if plain else "\n") if _BREAK.fullmatch(node.content) else "")
    return "".join(out)


def _link(href: str, text: str, base_url: str) -> str:
    if not urlparse(href).scheme:
        if not base_url:
            return text
        href = urljoin(base_url, href)
    return f"<{_url(href)}|{text or _escape(href)}>"


def _section_mrkdwn(section: Section, base_url: str) -> str:
    body = to_mrkdwn(section.body, base_url=base_url)
    return f"*{_escape(section.title)}*" + (f"\n{body}" if body else "")


def _paragraphs(text: str, limit: int) -> list[str]:
    """Split mrkdwn at blank lines outside code blocks into pieces of at most `limit` characters."""
    units: list[list[str]] = [[]]
    fenced = False
    for line in text.split("\n"):
        if line == FENCE:
            fenced = not fenced
        if line or fenced:
            units[-1].append(line)
        elif units[-1]:
            units.append([])
    joined = ["\n".join(unit) for unit in units if unit]
    return [piece for unit in joined for piece in (_hard_split(unit, limit) if len(unit) > limit else [unit])]


def _hard_split(text: str, limit: int) -> list[str]:
    """Split at lines (or within a too long line), closing and reopening a code fence around a cut."""
    pieces: list[str] = []
    current: list[str] = []
    fenced = False
    width = limit - 2 * (len(FENCE) + 1)
    for line in text.split("\n"):
        for chunk in [line[i : i + width] for i in range(0, len(line), width)] or [""]:
            closing = len(FENCE) + 1 if fenced else 0
            if current and len("\n".join([*current, chunk])) + closing > limit:
                pieces.append("\n".join([*current, FENCE] if fenced else current))
                current = [FENCE] if fenced else []
            current.append(chunk)
        if line == FENCE:
            fenced = not fenced
    pieces.append("\n".join(current))
    return pieces


def _pack(texts: list[str], units: list[str]) -> list[str]:
    """Append units to block texts, joining them while a block stays within `BLOCK_LIMIT`."""
    packed = list(texts)
    for unit in units:
        if packed and len(packed[-1]) + 2 + len(unit) <= BLOCK_LIMIT:
            packed[-1] += "\n\n" + unit
        else:
            packed.append(unit)
    return packed
