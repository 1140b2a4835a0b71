"""The Slack surface: one module per capability, each with `register(app, services)` and `HELP`."""
from commands import env, home, office_hours, runbook, whoowns

CAPABILITIES = (whoowns, env, runbook, office_hours, home)
