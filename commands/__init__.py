"""The Slack surface: one module per capability, each with `register(app, services)` and `HELP`."""
from commands import env, home, whoowns

CAPABILITIES = (whoowns, env, home)
