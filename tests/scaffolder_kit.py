"""A `Scaffolder` over a real database, the demo catalog and a chosen git host, for the
scaffolder tests and the bench; and a listener that records what it is told."""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from bot.audit import Audit
from bot.catalog.loader import CatalogLoader
from bot.catalog.service import CatalogService
from bot.config import DEMO_TEMPLATES
from bot.db import Database
from bot.leases import Leases
from bot.people import People
from bot.policy import Policy
from bot.scaffolder.model import Run
from bot.scaffolder.service import Scaffolder
from integrations.git_hosting import GitHost
from integrations.git_local import LocalGit
from tests.conftest import DEMO_CATALOG

ROOT = Path(__file__).resolve().parent.parent
BACKSTAGE_TEMPLATES = Path(__file__).resolve().parent / "data" / "scaffolder-templates"
ADA, CHARLES, GRACE = "U0ADA0001", "U0CHA0002", "U0GRA0003"  # payments-team, payments-team, checkout-team


async def _nobody(_: str) -> str | None:
    return None


@dataclass
class Recorder:
    """Every run the listener heard about, with when."""

    seen: list[tuple[float, Run]] = field(default_factory=list)

    async def run_changed(self, run: Run) -> None:
        self.seen.append((time.perf_counter(), run))

    def states(self, run_id: str) -> list[str]:
        return [run.state for _, run in self.seen if run.id == run_id]


@dataclass
class Kit:
    db: Database
    catalog: CatalogService
    audit: Audit
    scaffolder: Scaffolder
    recorder: Recorder
    git_root: Path

    async def close(self) -> None:
        await self.scaffolder.close()
        await self.db.close()


async def make_kit(database_url: str, work: Path, host: GitHost | None = None, *, admins: Sequence[str] = (),
                   templates: Sequence[str] = (str(DEMO_TEMPLATES),), lease_seconds: float = 30.0,
                   catalog_paths: Sequence[str] = (str(DEMO_CATALOG),), migrate: bool = True) -> Kit:
    db = Database(database_url)
    if migrate:
        await db.migrate()
    catalog = CatalogService(db, catalog_paths, CatalogLoader(5_000_000))
    await catalog.restore()
    await catalog.refresh()
    audit = Audit(db)
    git_root = work / "git"
    scaffolder = Scaffolder(db, catalog, People(catalog, db, _nobody, _nobody), Policy(admins), audit, Leases(db),
                            host or LocalGit(git_root), template_paths=templates, work_dir=work / "scaffolder",
                            lease_seconds=lease_seconds)
    recorder = Recorder()
    scaffolder.listener = recorder
    return Kit(db, catalog, audit, scaffolder, recorder, git_root)


async def finished(kit: Kit, run: Run, timeout: float = 20.0) -> Run:
    """The run once its background task is over."""
    await asyncio.wait_for(kit.scaffolder.wait(run.id), timeout)
    found = await kit.scaffolder.get(run.id)
    assert found is not None
    return found


def service_values(name: str = "ledger-api", owner: str = "payments-team", **extra: object) -> dict:
    return {"name": name, "description": f"The {name} service", "owner": owner,
            "repoUrl": f"github.com?owner=acme&repo={name}", **extra}
