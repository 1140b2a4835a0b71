"""The Slack surface: one module per capability, each with `register(app, services)` and `HELP`."""
from commands import create_service, env, home, office_hours, runbook, whoowns

CAPABILITIES = (whoowns, env, create_service, runbook, office_hours, home)
