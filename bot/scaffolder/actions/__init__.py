"""The action registry: every action pavedroad can run, by its id. A new action is one module
here and one entry in `BUILTIN`."""
from __future__ import annotations

from bot.scaffolder.actions.base import Action, ActionContext
from bot.scaffolder.actions.catalog_register import catalog_register
from bot.scaffolder.actions.catalog_write import catalog_write
from bot.scaffolder.actions.debug_log import debug_log
from bot.scaffolder.actions.fetch_plain import fetch_plain
from bot.scaffolder.actions.fetch_template import fetch_cookiecutter, fetch_template
from bot.scaffolder.actions.publish_github import publish_github
from bot.scaffolder.actions.publish_pull_request import publish_pull_request

BUILTIN: dict[str, Action] = {action.id: action for action in (
    fetch_template, fetch_cookiecutter, fetch_plain, publish_github, publish_pull_request, catalog_register,
    catalog_write, debug_log)}

__all__ = ["Action", "ActionContext", "BUILTIN"]
