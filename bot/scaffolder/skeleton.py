"""Copying a template's skeleton folder into the workspace, rendering names and contents.

What Backstage's `fetch:template` does, with the same options: file and folder names are
rendered (a name that renders empty is left out), text contents are rendered, binary files are
copied as they are, modes are kept. `copyWithoutRender` globs are copied untouched, names
included; `copyWithoutTemplating` globs keep their contents but get their names rendered; with
`templateFileExtension` only files with that extension are rendered (and lose it). Existing
files are kept unless `replace`. The skeleton must stay inside the template's folder and its
symlinks inside the skeleton; every destination goes through `Workspace.path`.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterator

from bot.scaffolder.expressions import render_text
from bot.scaffolder.model import ScaffolderError
from bot.scaffolder.workspace import Workspace
from integrations.git_hosting import is_text

URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True)
class CopyOptions:
    render: bool = True
    values: dict | None = None
    cookiecutter: bool = False
    without_render: tuple[str, ...] = ()
    without_templating: tuple[str, ...] = ()
    extension: str = ""  # render only files with this extension, dropping it
    replace: bool = False


def skeleton_dir(template_dir: Path, url: str) -> Path:
    """The folder `url` names, relative to the template's folder, which it must not leave."""
    if URL_SCHEME.match(url) or url.startswith("//"):
        raise ScaffolderError(f"url {url!r}: only folders next to the template are supported, not remote URLs")
    base = template_dir.resolve()
    path = (base / url).resolve()
    if not path.is_relative_to(base):
        raise ScaffolderError(f"url {url!r} leaves the template's folder")
    if not path.is_dir():
        raise ScaffolderError(f"url {url!r} is not a folder next to the template")
    return path


def _files(root: Path) -> Iterator[tuple[str, Path]]:
    """(relative posix path, real file) for every file, refusing symlinks that leave `root`."""
    seen: set[Path] = set()
    for folder, folders, names in os.walk(root, followlinks=True):
        real = Path(folder).resolve()
        if not real.is_relative_to(root) or real in seen:
            raise ScaffolderError(f"{Path(folder).relative_to(root).as_posix()}: a symlink leaves the template (or loops)")
        seen.add(real)
        folders.sort()
        for name in sorted(names):
            path = Path(folder, name)
            target = path.resolve()
            relative = path.relative_to(root).as_posix()
            if not target.is_relative_to(root):
                raise ScaffolderError(f"{relative}: a symlink leaves the template")
            if target.is_file():
                yield relative, target


def _matches(relative: str, patterns: tuple[str, ...]) -> bool:
    path = PurePosixPath(relative)
    candidates = [relative, *(p.as_posix() for p in path.parents if p.as_posix() != ".")]
    return any(fnmatchcase(c, p.removeprefix("./")) for p in patterns for c in candidates)


def copy_skeleton(source: Path, workspace: Workspace, target: str, options: CopyOptions,
                  log: Callable[[str], None]) -> list[str]:
    """Copy (and render) `source` into `target` of the workspace; the workspace paths written."""
    context: dict[str, Any] = {"cookiecutter" if options.cookiecutter else "values": options.values or {}}

    def render(text: str) -> str:
        return render_text(text, context, cookiecutter=options.cookiecutter)

    base = workspace.path(target, "targetPath")
    written: list[str] = []
    for relative, file in _files(source):
        untouched = not options.render or _matches(relative, options.without_render)
        keep_contents = untouched or _matches(relative, options.without_templating)
        name = relative
        if options.extension and not untouched:
            keep_contents = keep_contents or not name.endswith(options.extension)
            name = name.removesuffix(options.extension)
        if not untouched:
            parts = [render(part) for part in name.split("/")]
            if any(not part.strip() for part in parts):
                log(f"left out {relative} (its name renders empty)")
                continue
            name = "/".join(parts)
        destination = workspace.path(str(base.relative_to(workspace.root) / name), "file name")
        shown = destination.relative_to(workspace.root).as_posix()
        if destination.exists() and not options.replace:
            log(f"kept the existing {shown} (replace is off)")
            continue
        data = file.read_bytes()
        if not keep_contents and is_text(data):
            try:
                data = render(data.decode("utf-8")).encode("utf-8")
            except ScaffolderError as exc:
                raise ScaffolderError(f"{relative}: {exc}") from None
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(data)
        destination.chmod(file.stat().st_mode & 0o777)
        written.append(shown)
    return written
