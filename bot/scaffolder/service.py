"""`Scaffolder`: lists templates, checks values, previews, and runs templates durably.

A run is stored (with its steps, and a claim on the repository name it will create) before
anything happens, then executed by a background task; the caller gets the `Run` at once and
hears about every change through `listener`. The same idempotency key, or the same person
submitting the same values within a short window, finds the run already made. A run whose
process died is resumed by `resume_unfinished` (a lease per run keeps two replicas from running
it together); a failed run resumes from its failed step on `retry`.
"""
from __future__ import annotations

import asyncio
import copy
import hashlib
import logging
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any, Mapping, Sequence

import orjson
from sqlalchemy.exc import IntegrityError

from bot.audit import Audit
from bot.catalog.service import CatalogService
from bot.db import Database
from bot.leases import Leases
from bot.models import ScaffolderRun, ScaffolderStep
from bot.observability import metrics as observe
from bot.people import People
from bot.policy import Policy
from bot.scaffolder import parameters
from bot.scaffolder.actions import BUILTIN, Action
from bot.scaffolder.execution import Execution, StepFailed
from bot.scaffolder.expressions import parse_repo_url, render_value
from bot.scaffolder.model import (DryRun, Run, RunListener, ScaffolderError, StepRecord, Template,
                                  ValidationErrors)
from bot.scaffolder.store import UNFINISHED, RunStore, dumps, template_from_json, template_json, to_run
from bot.scaffolder.template import TemplateError, parse, problems, read_file, template_files
from bot.scaffolder.workspace import Workspace
from integrations.git_hosting import GitHost

log = logging.getLogger(__name__)
DUPLICATE_WINDOW_SECONDS = 120.0


class Scaffolder:
    def __init__(self, db: Database, catalog: CatalogService, people: People, policy: Policy, audit: Audit,
                 leases: Leases, host: GitHost, *, template_paths: Sequence[str], work_dir: Path,
                 registry: Mapping[str, Action] = BUILTIN, lease_seconds: float = 30.0) -> None:
        self.catalog = catalog
        self.people = people
        self.policy = policy
        self.audit = audit
        self.leases = leases
        self.host = host
        self.template_paths = list(template_paths)
        self.work_dir = work_dir
        self.registry = registry
        self.lease_seconds = lease_seconds
        self.store = RunStore(db)
        self.listener: RunListener | None = None
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._tasks: set[asyncio.Task] = set()
        self._live: dict[str, Run] = {}
        self._secrets: dict[str, Mapping[str, Any]] = {}
        self._pending_notice: dict[str, Run] = {}
        self._notifying: dict[str, asyncio.Task] = {}
        self._report: tuple[object, list[tuple[Path, int]], list[tuple[Template, list[str]]]] | None = None

    # -- templates ---------------------------------------------------------------

    def template_report(self) -> list[tuple[Template, list[str]]]:
        """Every template found (catalog first, then PAVEDROAD_TEMPLATES), with what stops it running.
        Read again only when the catalog was swapped or a template file changed: every screen of
        the form asks, within Slack's 3 seconds."""
        index = self.catalog.index
        files = [(path, path.stat().st_mtime_ns) for path in template_files(self.template_paths)]
        if self._report is None or self._report[0] is not index or self._report[1] != files:
            self._report = (index, files, self._read_templates([path for path, _ in files]))
        return self._report[2]

    def _read_templates(self, paths: list[Path]) -> list[tuple[Template, list[str]]]:
        found: dict[str, tuple[Template, list[str]]] = {}
        for key in self.catalog.index.keys_of_kind("Template"):
            entity = self.catalog.index.entities[key]
            try:
                template = parse(entity.data, entity.source)
            except TemplateError as exc:
                log.warning("catalog template %s is not usable: %s", key, exc)
                continue
            found[template.ref] = (template, problems(template, self.registry))
        for path in paths:
            try:
                templates = read_file(path)
            except TemplateError as exc:
                log.warning("%s", exc)
                continue
            for template in templates:
                found.setdefault(template.ref, (template, problems(template, self.registry)))
        return sorted(found.values(), key=lambda item: item[0].title.lower())

    def templates(self) -> list[Template]:
        """The templates that can run."""
        return [template for template, found in self.template_report() if not found]

    def template(self, ref_or_name: str) -> Template | None:
        wanted = ref_or_name.strip().lower()
        return next((t for t in self.templates() if wanted in (t.ref, t.name.lower())), None)

    # -- values ---------------------------------------------------------------------

    def validate_values(self, template: Template, values: dict) -> dict[str, str]:
        """{parameter: message}: the JSON schema, Backstage's field rules, and names the catalog already has."""
        values = parameters.complete(template, values)
        errors = parameters.validate(template, values)
        for name, schema in parameters.fields(template):
            if schema.get("ui:field") == "EntityNamePicker" and isinstance(values.get(name), str) and name not in errors:
                taken = self.catalog.index.entities.get(f"component:default/{values[name].lower()}")
                if taken is not None:
                    owner = self.catalog.index.owner_of(taken.key)
                    errors[name] = f"the catalog already has a component named {taken.name}" + (f" (owned by {owner})" if owner else "")
        return errors

    def _checked(self, template: Template, values: dict) -> dict:
        values = parameters.complete(template, values)
        errors = self.validate_values(template, values)
        if errors:
            raise ValidationErrors(errors)
        found = problems(template, self.registry)
        if found:
            raise ScaffolderError(f"template {template.title} cannot run: {found[0]}")
        return values

    async def _user(self, requester: str) -> dict[str, Any]:
        """`user` in expressions: the requester's catalog User ({} for nobody, e.g. the command line)."""
        if not requester:
            return {"ref": "", "entity": None}
        person = await self.people.whois(requester)
        entity = self.catalog.index.entities.get(person.user_key) if person.user_key else None
        return {"ref": person.user_key, "entity": entity.data if entity else None}

    # -- dry run ----------------------------------------------------------------------

    async def dry_run(self, template: Template, values: dict, requester: str) -> DryRun:
        """Render the files and resolve every step's input; nothing outside a scratch folder changes."""
        values = self._checked(template, values)
        records = [StepRecord(s["id"], s["name"], s["action"]) for s in template.steps]
        resolved: list[tuple[str, str, dict]] = []

        async def on_change(position: int, given: dict | None) -> None:
            if given is not None and records[position].state == "done":
                resolved.append((records[position].id, records[position].action, given))

        async def ignore(_position: int) -> None:
            return None

        workspace = Workspace.create(self.work_dir / "dry-runs", "preview-")
        execution = Execution(template, values, "dry-run", parameters.owner_ref(template, values), await self._user(requester),
                              {}, self.registry, self.host, self.catalog, workspace, True, records,
                              [{} for _ in records], on_change, ignore)
        error = ""
        try:
            await execution.run()
        except StepFailed as failed:
            error = f"step {records[failed.position].name} failed: {failed.message}"
        try:
            files = await asyncio.to_thread(workspace.files)
        finally:
            workspace.remove()
        lines = [f"[{records[i].id}] {line}" for i, lines in enumerate(execution.logs) for line in lines]
        if not error:
            links, text, output_problems = execution.output()
            lines += [f"[output] {title}: {url}" for title, url in links] + [f"[output] {p}" for p in output_problems]
        return DryRun(files, resolved, lines + ([error] if error else []), error)

    # -- runs ----------------------------------------------------------------------------

    def _claims(self, template: Template, values: dict) -> list[str]:
        """The repositories the run will create, as host/owner/name, from what the form says."""
        context = {"parameters": values, "steps": {}, "user": {}, "secrets": {}}
        claims = []
        for step in template.steps:
            if self.registry[step["action"]].creates_repository:
                try:
                    repo = parse_repo_url(render_value(step["input"].get("repoUrl"), context))
                except (ScaffolderError, ValueError, TypeError):
                    continue  # not known before the run: the step itself reports it
                owner = repo.get("owner") or repo.get("organization") or repo.get("workspace")
                claims.append(f"{repo['host']}/{owner}/{repo['repo']}".lower())
        return list(dict.fromkeys(claims))

    async def _check_allowed(self, requester: str, owner: str) -> None:
        if not owner:
            return
        person = await self.people.whois(requester)
        if owner in person.groups or owner == person.user_key or self.policy.is_admin(person):
            return
        who = "you are not in the catalog (no User with your e-mail)" if not person.user_key else \
            f"the catalog does not list {person.user_key} as a member"
        raise ScaffolderError(f"Only members of {owner} (or platform admins) may create something it owns; {who}.")

    async def start(self, template: Template, values: dict, requester: str, key: str,
                    secrets: Mapping[str, Any] | None = None) -> Run:
        """Store the run and start it in the background. The same `key` again returns the same run."""
        earlier = await self.store.find(ScaffolderRun.idempotency_key == key)
        if earlier is not None:
            return await self.get(earlier.id)  # type: ignore[return-value]
        values = parameters.complete(template, values)
        digest = hashlib.sha256(dumps([template.ref, values]).encode()).hexdigest()
        now = time.time()
        recent = await self.store.find(ScaffolderRun.requester == requester, ScaffolderRun.template_ref == template.ref,
                                       ScaffolderRun.values_digest == digest, ScaffolderRun.state != "failed",
                                       ScaffolderRun.submitted_at > now - DUPLICATE_WINDOW_SECONDS)
        if recent is not None:  # the same form sent twice (a double click, a second modal)
            return await self.get(recent.id)  # type: ignore[return-value]
        values = self._checked(template, values)
        owner = parameters.owner_ref(template, values)
        await self._check_allowed(requester, owner)
        run_id = uuid.uuid4().hex[:12]
        claims = self._claims(template, values)
        row = ScaffolderRun(id=run_id, idempotency_key=key, values_digest=digest, template_ref=template.ref,
                            template=template_json(template), requester=requester, owner=owner, state="pending",
                            run_values=dumps(values), submitted_at=now)
        steps = [ScaffolderStep(run_id=run_id, position=i, step_id=s["id"], name=s["name"], action=s["action"],
                                state="pending") for i, s in enumerate(template.steps)]
        try:
            await self.store.create(row, steps, claims)
        except IntegrityError:
            earlier = await self.store.find(ScaffolderRun.idempotency_key == key)
            if earlier is not None:
                return await self.get(earlier.id)  # type: ignore[return-value]
            await self._refuse_claimed(claims)
            raise
        self._secrets[run_id] = dict(secrets or {})
        await self.audit.record(requester, "scaffold.start", template.ref, "started",
                                f"run {run_id}" + (f", {', '.join(claims)}" if claims else "") + (f", owner {owner}" if owner else ""))
        self._spawn(run_id)
        return await self.get(run_id)  # type: ignore[return-value]

    async def _refuse_claimed(self, claims: Sequence[str]) -> None:
        name, holder = await self.store.claim_holder(claims)
        if holder is not None:
            raise ScaffolderError(f"{name} is being created right now by another run (run {holder.id}, "
                                  f"started by <@{holder.requester}>); choose another name or wait for it")

    async def attach_message(self, run_id: str, channel: str, ts: str) -> None:
        """Where the run's progress message is; the listener is told at once, so a run that
        already finished still gets its message brought up to date."""
        await self.store.update_run(run_id, slack_channel=channel, slack_ts=ts)
        live = self._live.get(run_id)
        if live is not None:
            live.slack_channel, live.slack_ts = channel, ts
        run = live or await self.store.run(run_id)
        if run is not None:
            self._notify(run)

    async def retry(self, run_id: str, requester: str) -> Run:
        """Resume a failed run from the step that failed."""
        row = await self.store.row(run_id)
        if row is None:
            raise ScaffolderError(f"there is no run {run_id}")
        if row.state != "failed":
            raise ScaffolderError(f"run {run_id} is {row.state}; only a failed run can be retried")
        person = await self.people.whois(requester)
        if not self.policy.may_manage(person, row.requester, row.owner):
            raise ScaffolderError(f"Only <@{row.requester}>, members of {row.owner or 'the owner'} or platform admins may retry this run.")
        claims = self._claims(template_from_json(row.template), orjson.loads(row.run_values))
        try:
            await self.store.claim(run_id, claims)
        except IntegrityError:
            await self._refuse_claimed(claims)
            raise
        for position, step in enumerate(await self.store.steps(run_id)):
            if step.state == "failed":
                await self.store.update_step(run_id, position, state="pending", error="", started_at=None, finished_at=None)
        await self.wait(run_id)  # the failed try's task may still be tidying up
        await self.store.update_run(run_id, state="pending", error="", finished_at=None)
        await self.audit.record(requester, "scaffold.retry", row.template_ref, "started", f"run {run_id}")
        self._spawn(run_id)
        return await self.get(run_id)  # type: ignore[return-value]

    async def resume_unfinished(self) -> None:
        """Start every stored run that has not finished (after a restart); runs held by another
        live replica are left to it."""
        for run_id in await self.store.unfinished():
            self._spawn(run_id)

    async def get(self, run_id: str) -> Run | None:
        live = self._live.get(run_id)
        return copy.deepcopy(live) if live is not None else await self.store.run(run_id)

    async def wait(self, run_id: str) -> None:
        """Until the run's background task (if any, in this process) has finished and its
        listener has been told."""
        for task in [t for t in self._tasks if t.get_name() == f"scaffolder-run-{run_id}"]:
            await asyncio.shield(task)

    async def close(self, grace: float = 10.0) -> None:
        """Let running steps finish (a resume elsewhere picks up the rest), then stop."""
        if self._tasks:
            _, late = await asyncio.wait(list(self._tasks), timeout=grace)
            for task in late:
                task.cancel()

    # -- execution --------------------------------------------------------------------------

    def _spawn(self, run_id: str) -> None:
        """Execute the run in the background, unless this process already is."""
        if any(t.get_name() == f"scaffolder-run-{run_id}" and not t.done() for t in self._tasks):
            return
        task = asyncio.create_task(self._execute(run_id), name=f"scaffolder-run-{run_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _keep_lease(self, name: str) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            await self.leases.acquire(name, self.holder, self.lease_seconds)

    async def _execute(self, run_id: str) -> None:
        lease = f"scaffolder-run:{run_id}"
        if not await self.leases.acquire(lease, self.holder, self.lease_seconds):
            return
        keeper = asyncio.create_task(self._keep_lease(lease))
        try:
            row = await self.store.row(run_id)
            if row is None or row.state not in UNFINISHED:
                return
            await self._execute_row(row)
        except Exception:  # noqa: BLE001 - the run stays unfinished and is resumed later
            log.exception("run %s stopped unexpectedly", run_id)
        finally:
            keeper.cancel()
            self._live.pop(run_id, None)
            await self.leases.release(lease, self.holder)

    async def _execute_row(self, row: ScaffolderRun) -> None:
        stored_steps = await self.store.steps(row.id)
        run = to_run(row, stored_steps)
        template = template_from_json(row.template)
        self._live[run.id] = run
        run.state = "running"
        await self.store.update_run(run.id, state="running", started_at=row.started_at or time.time())
        self._notify(run)
        workspace = Workspace.create(self.work_dir / "runs", f"{run.id}-")
        checkpoints = [orjson.loads(s.checkpoints) for s in stored_steps]

        async def on_change(position: int, given: dict | None) -> None:
            record, now = run.steps[position], time.time()
            if record.state == "running" and given is not None:
                record.started_at, record.finished_at = now, None
            elif record.state in ("done", "failed", "skipped"):
                record.finished_at = now
            fields: dict[str, Any] = dict(state=record.state, output=dumps(record.output), links=dumps(record.links),
                                          error=record.error, log="\n".join(execution.logs[position]),
                                          started_at=record.started_at, finished_at=record.finished_at)
            if given is not None:
                fields["resolved_input"] = dumps(given)
            await self.store.update_step(run.id, position, **fields)
            self._notify(run)

        async def on_checkpoint(position: int) -> None:
            await self.store.update_step(run.id, position, checkpoints=dumps(checkpoints[position]))

        execution = Execution(template, run.values, run.id, run.owner, await self._user(run.requester),
                              self._secrets.get(run.id, {}), self.registry, self.host, self.catalog, workspace, False,
                              run.steps, checkpoints, on_change, on_checkpoint)
        try:
            await execution.run()
        except StepFailed as failed:
            await self._finish(run, "failed", error=f"{run.steps[failed.position].name}: {failed.message}")
        else:
            links, text, output_problems = execution.output()
            for problem in output_problems:
                log.warning("run %s output: %s", run.id, problem)
            await self._finish(run, "done", links=links, text=text)
        finally:
            await asyncio.to_thread(workspace.remove)

    async def _finish(self, run: Run, state: str, *, error: str = "", links: list[tuple[str, str]] | None = None,
                      text: str = "") -> None:
        run.state, run.error, run.finished_at = state, error, time.time()  # type: ignore[assignment]
        run.output_links, run.output_text = links or [], text
        await self.store.update_run(run.id, state=state, error=error, output_links=dumps(run.output_links),
                                    output_text=text, finished_at=run.finished_at, release_claims=True)
        observe.scaffold_run(state, run.steps)
        seconds = run.finished_at - run.submitted_at
        log.info("run %s of %s %s, %.2fs from submit", run.id, run.template_ref, state, seconds)
        await self.audit.record(run.requester, "scaffold.run", run.template_ref, state,
                                f"run {run.id}, {seconds:.1f}s from submit" + (f": {error}" if error else ""))
        if state == "done":
            self._secrets.pop(run.id, None)
        self._notify(run)
        notifying = self._notifying.get(run.id)
        if notifying is not None:
            await notifying

    # -- telling the listener -------------------------------------------------------------------

    def _notify(self, run: Run) -> None:
        """Hand the listener the run as it is now, without making the run wait for Slack: changes
        that come while the listener is busy are folded into the next call."""
        if self.listener is None:
            return
        self._pending_notice[run.id] = copy.deepcopy(run)
        if run.id not in self._notifying:
            self._notifying[run.id] = asyncio.create_task(self._deliver(run.id))

    async def _deliver(self, run_id: str) -> None:
        while True:
            run = self._pending_notice.pop(run_id, None)
            if run is None or self.listener is None:
                del self._notifying[run_id]
                return
            try:
                await self.listener.run_changed(run)
            except Exception:  # noqa: BLE001 - a failed progress message must not fail the run
                log.exception("telling about run %s failed", run_id)
