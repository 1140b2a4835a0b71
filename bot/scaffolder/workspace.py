"""A run's workspace: the directory actions render into and publish from. Every path an action
names goes through `Workspace.path`, so nothing is ever written outside it."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from bot.scaffolder.model import ScaffolderError


class Workspace:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    @classmethod
    def create(cls, parent: Path, prefix: str) -> "Workspace":
        parent.mkdir(parents=True, exist_ok=True)
        return cls(Path(tempfile.mkdtemp(prefix=prefix, dir=parent)))

    def path(self, relative: str, what: str = "path") -> Path:
        """`relative` inside the workspace; a ScaffolderError for an absolute path or one that leaves it."""
        text = str(relative or ".").replace("\\", "/")
        if PurePosixPath(text).is_absolute() or (len(text) > 1 and text[1] == ":"):
            raise ScaffolderError(f"{what} {relative!r} must be relative to the workspace")
        target = (self.root / text).resolve()
        if not target.is_relative_to(self.root):
            raise ScaffolderError(f"{what} {relative!r} leaves the workspace")
        return target

    def files(self, under: str = ".") -> dict[str, bytes]:
        """Every file below `under`, by its path relative to `under`."""
        base = self.path(under)
        found = {}
        for folder, _, names in os.walk(base):
            for name in names:
                path = Path(folder, name)
                found[path.relative_to(base).as_posix()] = path.read_bytes()
        return dict(sorted(found.items()))

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
