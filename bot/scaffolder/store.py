"""Runs in the database: written before anything runs, updated on every change, read back as
`Run` values. A run, its steps and its repository claims are created in one transaction, so a
double submit or two runs for the same repository cannot both get in."""
from __future__ import annotations

from dataclasses import asdict
from typing import Any, Sequence

import orjson
from sqlalchemy import delete, select, update

from bot.db import Database
from bot.models import ScaffolderClaim, ScaffolderRun, ScaffolderStep
from bot.scaffolder.model import Run, StepRecord, Template

UNFINISHED = ("pending", "running")


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def template_json(template: Template) -> str:
    return dumps(asdict(template))


def template_from_json(text: str) -> Template:
    data = orjson.loads(text)
    return Template(**{**data, "tags": tuple(data["tags"]), "parameters": tuple(data["parameters"]),
                       "steps": tuple(data["steps"])})


def to_run(row: ScaffolderRun, steps: Sequence[ScaffolderStep]) -> Run:
    return Run(
        id=row.id, template_ref=row.template_ref, requester=row.requester, owner=row.owner, state=row.state,  # type: ignore[arg-type]
        values=orjson.loads(row.run_values),
        steps=[StepRecord(id=s.step_id, name=s.name, action=s.action, state=s.state, output=orjson.loads(s.output),  # type: ignore[arg-type]
                          error=s.error, links=[tuple(link) for link in orjson.loads(s.links)],
                          started_at=s.started_at, finished_at=s.finished_at)
               for s in sorted(steps, key=lambda s: s.position)],
        output_links=[tuple(link) for link in orjson.loads(row.output_links)], output_text=row.output_text,
        error=row.error, submitted_at=row.submitted_at, finished_at=row.finished_at,
        slack_channel=row.slack_channel, slack_ts=row.slack_ts,
    )


class RunStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, row: ScaffolderRun, steps: list[ScaffolderStep], claims: Sequence[str]) -> None:
        """Raises IntegrityError when the idempotency key or a claimed repository is taken."""
        async with self.db.session() as session:
            session.add(row)
            await session.flush()
            session.add_all(steps)
            session.add_all(ScaffolderClaim(name=name, run_id=row.id) for name in claims)
            await session.commit()

    async def row(self, run_id: str) -> ScaffolderRun | None:
        async with self.db.session() as session:
            return await session.get(ScaffolderRun, run_id)

    async def steps(self, run_id: str) -> list[ScaffolderStep]:
        async with self.db.session() as session:
            query = select(ScaffolderStep).where(ScaffolderStep.run_id == run_id).order_by(ScaffolderStep.position)
            return list((await session.exec(query)).scalars().all())

    async def run(self, run_id: str) -> Run | None:
        row = await self.row(run_id)
        return to_run(row, await self.steps(run_id)) if row else None

    async def find(self, *conditions: Any) -> ScaffolderRun | None:
        async with self.db.session() as session:
            query = select(ScaffolderRun).where(*conditions).order_by(ScaffolderRun.submitted_at.desc()).limit(1)
            return (await session.exec(query)).scalars().first()

    async def claim_holder(self, names: Sequence[str]) -> tuple[str, ScaffolderRun | None]:
        async with self.db.session() as session:
            claim = (await session.exec(select(ScaffolderClaim).where(ScaffolderClaim.name.in_(names)))).scalars().first()
            return (claim.name, await session.get(ScaffolderRun, claim.run_id)) if claim else ("", None)

    async def claim(self, run_id: str, names: Sequence[str]) -> None:
        """Raises IntegrityError when another run holds one of the names."""
        async with self.db.session() as session:
            await session.exec(delete(ScaffolderClaim).where(ScaffolderClaim.run_id == run_id))
            session.add_all(ScaffolderClaim(name=name, run_id=run_id) for name in names)
            await session.commit()

    async def update_run(self, run_id: str, *, release_claims: bool = False, **values: Any) -> None:
        async with self.db.session() as session:
            await session.exec(update(ScaffolderRun).where(ScaffolderRun.id == run_id).values(**values))
            if release_claims:
                await session.exec(delete(ScaffolderClaim).where(ScaffolderClaim.run_id == run_id))
            await session.commit()

    async def update_step(self, run_id: str, position: int, **values: Any) -> None:
        async with self.db.session() as session:
            await session.exec(update(ScaffolderStep).where(ScaffolderStep.run_id == run_id,
                                                            ScaffolderStep.position == position).values(**values))
            await session.commit()

    async def unfinished(self) -> list[str]:
        async with self.db.session() as session:
            query = select(ScaffolderRun.id).where(ScaffolderRun.state.in_(UNFINISHED)).order_by(ScaffolderRun.submitted_at)
            return list((await session.exec(query)).scalars().all())
