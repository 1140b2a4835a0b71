"""The Slack surface: one module per capability, each with `register(app, services)` and `HELP`."""
from commands import create_service, dora, env, home, office_hours, platform, runbook, whoowns

CAPABILITIES = (whoowns, env, create_service, runbook, office_hours, home, dora, platform)
