"""The `pavedroad` command: serve, shell, catalog lint/refresh, template list/validate/dry-run, db upgrade."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import yaml
from sqlalchemy.exc import SQLAlchemyError

from bot.app import build_app, create_services, slack_client
from bot.catalog.loader import CatalogLoader
from bot.catalog.service import lint as lint_catalog
from bot.config import ConfigError, Settings, load_settings
from bot.db import Database
from bot.observability.logs import configure as configure_logging
from bot.scaffolder.actions import BUILTIN
from bot.scaffolder.model import ScaffolderError, Template, ValidationErrors
from bot.scaffolder.template import TemplateError, problems as template_problems, read_file as read_template_file, template_files
from bot.server import start as start_server
from bot.services import Services
from bot.shell import Console, Shell
from commands import CAPABILITIES

log = logging.getLogger("pavedroad")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pavedroad", description="A ChatOps bot for your Internal Developer Platform.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="serve Slack over HTTP (or Socket Mode when SLACK_APP_TOKEN is set)")
    shell = sub.add_parser("shell", help="talk to the bot in this terminal, with no Slack")
    shell.add_argument("-c", dest="line", help='run one command and exit, e.g. -c "/whoowns payment-service"')
    shell.add_argument("--as", dest="email", default="", help="the e-mail of the catalog user you are (for paging and ownership)")
    catalog = sub.add_parser("catalog", help="work with the catalog").add_subparsers(dest="action", required=True)
    lint = catalog.add_parser("lint", help="report every problem in catalog files; exit 1 if there is any")
    lint.add_argument("paths", nargs="+")
    catalog.add_parser("refresh", help="re-read the catalog into the database now and report")
    reap = sub.add_parser("reap", help="one pass of the environment reaper (for a Kubernetes CronJob)")
    reap.add_argument("--dry-run", action="store_true", help="only report what it would warn about and destroy")
    collect = sub.add_parser("collect", help="one pass of the DORA data collector: GitHub and PagerDuty into the database")
    collect.add_argument("--all", action="store_true", help="read every source, also those read in the last half interval")
    audit = sub.add_parser("audit", help="list the audit log, newest first")
    audit.add_argument("--limit", type=int, default=50)
    audit.add_argument("--action", help="only this action, e.g. env.destroy or page")
    template = sub.add_parser("template", help="software templates").add_subparsers(dest="action", required=True)
    template.add_parser("list", help="list the templates (catalog and PAVEDROAD_TEMPLATES) and whether they can run")
    validate = template.add_parser("validate", help="check template files; exit 1 if any cannot run")
    validate.add_argument("paths", nargs="+", help="template.yaml files or folders holding them")
    preview = template.add_parser("dry-run", help="render a template with values and show every step; changes nothing")
    preview.add_argument("template", help="a template name or reference, or a template.yaml file")
    preview.add_argument("--values", required=True, help="a YAML or JSON file of parameter values")
    preview.add_argument("--out", help="write the rendered files into this folder")
    preview.add_argument("--as", dest="requester", default="", help="the Slack user id whose catalog User is user.entity")
    db = sub.add_parser("db", help="the database").add_subparsers(dest="action", required=True)
    db.add_parser("upgrade", help="apply the schema migrations")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "serve":
            settings.require_slack()
    except ConfigError as exc:
        print(f"pavedroad: configuration error: {exc}", file=sys.stderr)
        return 2
    quiet = args.command == "shell" and "LOG_LEVEL" not in os.environ  # the shell's output is the answer
    # JSON lines for `serve` (for a log pipeline), text for the commands people read; LOG_FORMAT overrides
    configure_logging(settings, fmt=settings.log_format or ("json" if args.command == "serve" else "text"),
                      level="WARNING" if quiet else settings.log_level)
    if args.command == "catalog" and args.action == "lint":
        return lint(settings, args.paths)
    if args.command == "template" and args.action == "validate":
        return validate_templates(args.paths)
    runner = {"serve": serve, "shell": lambda s: shell(s, args.line, args.email), "catalog": refresh_catalog,
              "db": upgrade_db, "reap": lambda s: reap(s, args.dry_run), "collect": lambda s: collect(s, args.all),
              "audit": lambda s: show_audit(s, args.limit, args.action),
              "template": lambda s: list_templates(s) if args.action == "list" else
              preview_template(s, args.template, args.values, args.out, args.requester)}[args.command]
    try:
        return asyncio.run(runner(settings))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): nothing to say to it
        return 0
    except ConfigError as exc:
        print(f"pavedroad: configuration error: {exc}", file=sys.stderr)
        return 2
    except (OSError, SQLAlchemyError) as exc:
        print(f"pavedroad: cannot start: {_first_line(exc)} (check DATABASE_URL and PAVEDROAD_DATA_DIR)", file=sys.stderr)
        return 2


def _first_line(exc: BaseException) -> str:
    return (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [exc.__class__.__name__])[0][:300]


def lint(settings: Settings, paths: list[str]) -> int:
    problems = lint_catalog(CatalogLoader(settings.catalog_max_file_bytes), paths)
    for problem in problems:
        print(problem)
    print(f"{len(problems)} problem(s)", file=sys.stderr)
    return 1 if problems else 0


def validate_templates(paths: list[str]) -> int:
    bad = 0
    files = template_files(paths)
    if not files:
        print(f"pavedroad: no template.yaml in {', '.join(paths)}", file=sys.stderr)
        return 1
    for path in files:
        try:
            templates = read_template_file(path)
        except TemplateError as exc:
            print(exc)
            bad += 1
            continue
        for template in templates:
            found = template_problems(template, BUILTIN)
            bad += bool(found)
            print(f"{path}: {template.ref}: " + ("ok" if not found else "; ".join(found)))
    print(f"{bad} template file(s) with problems", file=sys.stderr)
    return 1 if bad else 0


async def _prepared(settings: Settings) -> Services:
    """Services with the recorded catalog, read from its files when nothing is recorded yet."""
    services = create_services(settings, slack_client(settings))
    await services.prepare()
    if not services.catalog.loaded:
        await services.catalog.refresh()
    return services


async def collect(settings: Settings, everything: bool) -> int:
    services = await _prepared(settings)
    try:
        started = time.monotonic()
        counts = await services.dora.collect(0 if everything else settings.dora_collect_minutes * 60)
        print(f"GitHub repositories: {counts['repositories']} read, {counts['failed']} failed, "
              f"{counts['skipped']} left for later (rate limit or stop); PagerDuty services: {counts['services']} read, "
              f"{counts['services failed']} failed; in {time.monotonic() - started:.1f}s")
        return 1 if counts["failed"] or counts["skipped"] or counts["services failed"] else 0
    finally:
        await services.close()


async def list_templates(settings: Settings) -> int:
    services = await _prepared(settings)
    try:
        for template, found in services.scaffolder.template_report():
            print(f"{template.ref:<45} {template.title:<40} " + ("ready" if not found else f"cannot run: {found[0]}"))
        return 0
    finally:
        await services.close()


def _template_for_preview(services: Services, given: str) -> Template:
    if Path(given).is_file():
        found = read_template_file(Path(given))
        if not found:
            raise ScaffolderError(f"{given} holds no kind: Template")
        return found[0]
    template = services.scaffolder.template(given)
    if template is None:
        raise ScaffolderError(f"no template {given!r}; `pavedroad template list` shows them")
    return template


async def preview_template(settings: Settings, given: str, values_file: str, out: str | None, requester: str) -> int:
    try:
        values = yaml.safe_load(Path(values_file).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        print(f"pavedroad: cannot read values from {values_file}: {_first_line(exc)}", file=sys.stderr)
        return 2
    if not isinstance(values, dict):
        print(f"pavedroad: {values_file} must hold a mapping of parameter: value", file=sys.stderr)
        return 2
    services = await _prepared(settings)
    try:
        template = _template_for_preview(services, given)
        result = await services.scaffolder.dry_run(template, values, requester)
    except ValidationErrors as exc:
        print("pavedroad: invalid values: " + "; ".join(f"{k}: {v}" for k, v in exc.errors.items()), file=sys.stderr)
        return 1
    except (ScaffolderError, TemplateError) as exc:
        print(f"pavedroad: {exc}", file=sys.stderr)
        return 1
    finally:
        await services.close()
    for step_id, action, given_input in result.steps:
        print(f"step {step_id} ({action}):")
        print("  " + yaml.safe_dump(given_input, sort_keys=False, allow_unicode=True).rstrip().replace("\n", "\n  "))
    print("files:")
    for path, data in result.files.items():
        print(f"  {path} ({len(data)} bytes)")
    for line in result.log:
        print(f"log: {line}")
    if out:
        for path, data in result.files.items():
            target = Path(out, path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        print(f"wrote {len(result.files)} file(s) to {out}")
    if result.error:
        print(f"pavedroad: {result.error}", file=sys.stderr)
        return 1
    return 0


async def refresh_catalog(settings: Settings) -> int:
    services = create_services(settings, slack_client(settings))
    try:
        await services.prepare()
        report = await services.catalog.refresh()
        for problem in services.catalog.index.problems:
            print(problem)
        print(f"{report.entities} entities; {report.changed_sources} file(s) changed, {report.removed_sources} removed; "
              f"{report.problems} problem(s); {report.seconds:.2f}s")
        return 0
    finally:
        await services.close()


async def reap(settings: Settings, dry_run: bool) -> int:
    services = create_services(settings, slack_client(settings))
    try:
        if not services.environments.provisioned:
            print("pavedroad: the reaper needs Kubernetes (set KUBECONFIG, or run it in the cluster) "
                  "or PAVEDROAD_ENV_PROVISIONING=pull-request", file=sys.stderr)
            return 2
        await services.prepare()
        report = await services.reaper.run(dry_run=dry_run)
        for line in report.lines():
            print(("would be " if dry_run and not line.startswith("drift") else "") + line)
        print(f"{len(report.warned)} warned, {len(report.destroyed)} destroyed, {len(report.drift)} drift"
              + (" (dry run: nothing changed)" if dry_run else ""))
        return 0
    finally:
        await services.close()


async def show_audit(settings: Settings, limit: int, action: str | None) -> int:
    services = create_services(settings, slack_client(settings))
    try:
        await services.prepare()
        for entry in await services.audit.recent(limit, action):
            moment = datetime.fromtimestamp(entry.at, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
            print(f"{moment}Z  {entry.actor:<12} {entry.action:<14} {entry.target:<40} {entry.outcome}"
                  + (f"  {entry.detail}" if entry.detail else ""))
        return 0
    finally:
        await services.close()


async def upgrade_db(settings: Settings) -> int:
    db = Database(settings.database_url)
    try:
        await db.migrate()
        print("database schema is up to date")
        return 0
    finally:
        await db.close()


async def serve(settings: Settings) -> int:
    server = await start_server(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("shutting down")
    await server.stop()
    return 0


HELP_TEXT = "\n".join(
    [f"  {usage:<24} {text}" for capability in CAPABILITIES for usage, text in capability.HELP]
    + ["  click N                  press button N of the last answer", "  help                     this list",
       "  exit                     leave the shell"])


async def shell(settings: Settings, line: str | None, email: str) -> int:
    console = Console(settings.data_dir / "shell-files", email)
    await console.start()
    client = slack_client(settings, base_url=f"{console.url}/api/", token="xoxb-pavedroad-shell")
    services = create_services(settings, client)
    try:
        await services.prepare()
        await services.refresh()
        session = Shell(build_app(settings, services, client, verify_requests=False), console)
        if line is not None:
            print(await session.command(line))
            return 0
        print(f"pavedroad shell: {len(services.catalog.index.entities)} catalog entities. Type `help` for commands.")
        while True:
            try:
                text = (await asyncio.to_thread(input, "pavedroad> ")).strip()
            except EOFError:
                return 0
            if text in ("exit", "quit"):
                return 0
            if not text:
                continue
            if text == "help":
                print(HELP_TEXT)
            elif text.startswith("click "):
                number = text.split()[1]
                button = session.buttons[int(number) - 1] if number.isdigit() and 0 < int(number) <= len(session.buttons) else None
                if button and button.confirm and (await asyncio.to_thread(input, f"{button.confirm} [y/N] ")).lower() != "y":
                    continue
                print(await session.click(int(number) if number.isdigit() else 0))
            elif text.startswith("/"):
                print(await session.command(text))
            else:
                print("Commands start with /, for example /whoowns payment-service. Type `help`.")
    finally:
        await services.close()
        await console.stop()
