"""Read Backstage catalog files: directories, globs, multi-document YAML and `Location` trees.

Every problem is reported with its file and line and never stops the other files: a file that
is too big, not YAML, a YAML bomb or not Backstage at all is reported and skipped. A file whose
content hash has not changed since the previous load is not parsed again.
"""
from __future__ import annotations

import glob
import hashlib
import multiprocessing
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import orjson
import yaml

from bot.catalog.entity import Entity, Problem, validate

YAML_SUFFIXES = (".yaml", ".yml")
MAX_EXPANDED_NODES = 1_000_000
PARALLEL_FILES = 32  # fewer changed files than this parse quicker here than in new worker processes
MAX_WORKERS = 4
_ANCHOR = re.compile(rb"(?:^|[\s\[{,:-])&[^\s]", re.M)


@dataclass(frozen=True)
class Source:
    """One file (or remote catalog) as last loaded: its content hash, entities and problems."""

    key: str
    digest: str
    entities: tuple[Entity, ...] = ()
    problems: tuple[Problem, ...] = ()


@dataclass
class LoadResult:
    sources: dict[str, Source] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


_STR, _MAP, _SEQ = "tag:yaml.org,2002:str", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"


class _Loader(yaml.CSafeLoader):
    """The C loader, remembering each document's node tree so problems can name a line.

    In a file without anchors no node is shared, so strings, mappings with string keys and
    lists are built directly from the nodes, about twice as fast as PyYAML's general
    constructor; every other tag (numbers, booleans, dates, merge keys) still goes through it.
    """

    root: yaml.Node | None = None
    direct = False

    def construct_document(self, node: yaml.Node) -> Any:
        self.root = node
        if not self.direct:
            return super().construct_document(node)
        try:
            return self._build(node)
        finally:
            self.constructed_objects, self.recursive_objects = {}, {}

    def _build(self, node: yaml.Node) -> Any:
        tag = node.tag
        if tag == _STR:
            return node.value
        if tag == _MAP and all(key.tag == _STR for key, _ in node.value):
            return {key.value: self._build(value) for key, value in node.value}
        if tag == _SEQ:
            return [self._build(item) for item in node.value]
        return self.construct_object(node, deep=True)


def _line_finder(root: yaml.Node | None):
    def line_of(path: str) -> int:
        node, line = root, (root.start_mark.line + 1 if root else 0)
        for part in filter(None, path.split(".")):
            if not isinstance(node, yaml.MappingNode):
                break
            for key_node, value_node in node.value:
                if key_node.value == part:
                    node, line = value_node, key_node.start_mark.line + 1
                    break
            else:
                break
        return line
    return line_of


def _too_big(doc: Any) -> bool:
    """True when aliases expand a document past MAX_EXPANDED_NODES (the 'billion laughs')."""
    stack, seen = [doc], 0
    while stack:
        item = stack.pop()
        seen += 1
        if seen > MAX_EXPANDED_NODES:
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_documents(raw: bytes, source: str) -> tuple[list[Entity], list[Problem]]:
    """Parse every document in one YAML file into validated entities and problems."""
    entities: list[Entity] = []
    problems: list[Problem] = []
    may_alias = b"&" in raw and _ANCHOR.search(raw) is not None
    loader = _Loader(raw)
    loader.direct = b"&" not in raw
    try:
        while loader.check_data():
            doc = loader.get_data()
            line_of = _line_finder(loader.root)
            if doc is None:
                continue
            if may_alias and _too_big(doc):
                problems.append(Problem(source, line_of(""), "document expands past a million nodes through YAML aliases; skipped"))
                continue
            try:
                entity, found = validate(doc, line_of, source)
            except (RecursionError, TypeError, orjson.JSONEncodeError) as exc:
                problems.append(Problem(source, line_of(""), f"document cannot be stored ({exc.__class__.__name__}); skipped"))
                continue
            problems.extend(found)
            if entity is not None:
                entities.append(entity)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and context_mark and context.startswith("while parsing "):
            reason += f" (in the {context.removeprefix('while parsing ').removeprefix('a ')} from line {context_mark.line + 1})"
        problems.append(Problem(source, mark.line + 1 if mark else 0, f"invalid YAML: {reason}; rest of file skipped"))
    except RecursionError:
        problems.append(Problem(source, 0, "YAML nested too deeply; rest of file skipped"))
    finally:
        loader.dispose()
    return entities, problems


def location_targets(entity: Entity) -> list[str]:
    spec = entity.spec
    targets = list(spec.get("targets") or [])
    if isinstance(spec.get("target"), str):
        targets.insert(0, spec["target"])
    return [t for t in targets if isinstance(t, str)]


def _parse_file(item: tuple[str, bytes]) -> tuple[list[Entity], list[Problem]]:
    return parse_documents(item[1], item[0])


class CatalogLoader:
    """Walks catalog roots and Location targets level by level, reusing unchanged files from a
    previous load. When many files changed, they are parsed in worker processes: PyYAML builds
    Python objects in Python, so one core parses about 3 MB/s."""

    def __init__(self, max_file_bytes: int, workers: int | None = None) -> None:
        self.max_file_bytes = max_file_bytes
        self.workers = workers if workers is not None else min(os.cpu_count() or 1, MAX_WORKERS)

    def load(self, roots: Sequence[str], previous: Mapping[str, Source] | None = None) -> LoadResult:
        result = LoadResult()
        previous = previous or {}
        level: list[tuple[Path, tuple[str, ...]]] = []
        for root in roots:
            paths = list(self._expand_root(root))
            if not paths:
                result.problems.append(Problem(root, 0, "no catalog file found at this path or pattern"))
            level.extend((path, ()) for path in paths)
        while level:
            level = self._load_level(level, result, previous)
        return result

    def _expand_root(self, root: str) -> Iterator[Path]:
        path = Path(root).expanduser()
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file())
        elif path.is_file():
            yield path
        else:
            yield from (Path(p) for p in sorted(glob.glob(os.path.expanduser(root), recursive=True)) if Path(p).is_file())

    def _load_level(self, level: list[tuple[Path, tuple[str, ...]]], result: LoadResult,
                    previous: Mapping[str, Source]) -> list[tuple[Path, tuple[str, ...]]]:
        """Read one level of files (each with the Location files that led to it); return the next."""
        ancestry: dict[str, tuple[str, ...]] = {}
        for path, stack in level:
            key = str(path.resolve())
            if key not in result.sources:
                ancestry.setdefault(key, stack)
        next_level: list[tuple[Path, tuple[str, ...]]] = []
        for key, source in self._read_all(list(ancestry), previous).items():
            result.sources[key] = source
            for entity in source.entities:
                if entity.kind == "Location":
                    next_level.extend(self._follow(entity, ancestry[key] + (key,), result))
        return next_level

    def _follow(self, location: Entity, stack: tuple[str, ...], result: LoadResult) -> list[tuple[Path, tuple[str, ...]]]:
        base = Path(location.source).parent
        found: list[tuple[Path, tuple[str, ...]]] = []
        for target in location_targets(location):
            where = dict(source=location.source, line=location.line, entity=location.key)
            if location.spec.get("type", "file") != "file" or re.match(r"^[a-z]+://", target):
                result.problems.append(Problem(message=f"target {target!r} is a URL location; only file targets are read "
                                                       "(load a Backstage instance with BACKSTAGE_URL)", **where))
                continue
            pattern = target if os.path.isabs(target) else str(base / target)
            matches = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern]
            matches = [Path(m) for m in matches if Path(m).is_file()]
            if not matches:
                result.problems.append(Problem(message=f"target {target!r} not found", **where))
            for match in matches:
                if str(match.resolve()) in stack:
                    result.problems.append(Problem(message=f"target {target!r} leads back to itself (a Location cycle); not followed", **where))
                else:
                    found.append((match, stack))
        return found

    def _read_all(self, keys: list[str], previous: Mapping[str, Source]) -> dict[str, Source]:
        """Each file's Source: unchanged ones from `previous`, the others parsed (in parallel when many)."""
        sources: dict[str, Source] = {}
        to_parse: list[tuple[str, bytes, str]] = []
        for key in keys:
            read = self._read(key, previous.get(key))
            if isinstance(read, Source):
                sources[key] = read
            else:
                to_parse.append((key, *read))
        items = [(key, raw) for key, raw, _ in to_parse]
        if self.workers > 1 and len(items) >= PARALLEL_FILES:
            # spawn, not fork: the server calls this from a thread beside a running event loop.
            with ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                parsed = list(pool.map(_parse_file, items, chunksize=max(1, len(items) // (self.workers * 8))))
        else:
            parsed = [_parse_file(item) for item in items]
        for (key, _, digest), (entities, problems) in zip(to_parse, parsed):
            sources[key] = Source(key, digest, tuple(entities), tuple(problems))
        return {key: sources[key] for key in keys}

    def _read(self, key: str, before: Source | None) -> Source | tuple[bytes, str]:
        """The Source when there is nothing to parse (unchanged, too big, unreadable), else the
        file's bytes and content hash."""
        try:
            size = os.stat(key).st_size
            if size > self.max_file_bytes:
                if before is not None and before.digest == f"size:{size}":
                    return before
                return Source(key, f"size:{size}", problems=(Problem(
                    key, 0, f"file is {size:,} bytes, over PAVEDROAD_CATALOG_MAX_FILE_BYTES ({self.max_file_bytes:,}); skipped"),))
            with open(key, "rb") as handle:
                raw = handle.read()
        except OSError as exc:
            return Source(key, "unreadable", problems=(Problem(key, 0, f"cannot read file: {exc.strerror}"),))
        digest = hashlib.blake2b(raw, digest_size=16).hexdigest()
        if before is not None and before.digest == digest:
            return before
        return raw, digest
