"""Local HTTP fakes of the outside systems the bot talks to, for end-to-end tests.

Each is an aiohttp server on 127.0.0.1 (a free port), started and stopped as
an async context manager inside the running event loop, recording what it
received and offering fault modes (``delay``, ``fail_status``,
``rate_limit``); see ``base.py``.
"""
from .backstage import BackstageFake
from .base import FakeHTTPError, FakeServer, RecordedRequest
from .github import GitHubFake
from .kubernetes import KubernetesFake
from .pagerduty import PagerDutyFake
from .slack import SlackFake
from .tls import ca_bundle_path, client_ssl_context

__all__ = [
    "BackstageFake",
    "FakeHTTPError",
    "FakeServer",
    "GitHubFake",
    "KubernetesFake",
    "PagerDutyFake",
    "RecordedRequest",
    "SlackFake",
    "ca_bundle_path",
    "client_ssl_context",
]
