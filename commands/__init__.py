"""The Slack surface: one module per capability, each with `register(app, services)` and `HELP`."""
from commands import home, whoowns

CAPABILITIES = (whoowns, home)
