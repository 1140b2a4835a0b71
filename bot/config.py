"""Settings from environment variables (and an optional YAML file), validated once at start.

Every setting has one name, used in the environment, in the YAML file named by
`PAVEDROAD_CONFIG` and in the README's configuration table. The environment wins over the
file. A missing or invalid setting raises `ConfigError` with one line naming it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping
from urllib.parse import urlparse

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEMO_CATALOG = PROJECT_ROOT / "examples" / "catalog" / "all.yaml"


class ConfigError(Exception):
    """A setting is missing or invalid; the message names it."""


@dataclass(frozen=True)
class Settings:
    host: str = "0.0.0.0"
    port: int = 3000
    data_dir: Path = Path(".pavedroad")
    database_url: str = ""
    slack_bot_token: str = ""
    slack_signing_secret: str = ""
    slack_app_token: str = ""
    slack_api_url: str = "https://slack.com/api/"
    catalog: tuple[str, ...] = (str(DEMO_CATALOG),)
    catalog_refresh_seconds: float = 300.0
    catalog_max_file_bytes: int = 5_000_000
    backstage_url: str = ""
    backstage_token: str = ""
    pagerduty_api_token: str = ""
    pagerduty_api_url: str = "https://api.pagerduty.com"
    pagerduty_events_url: str = "https://events.pagerduty.com"
    page_dedup_minutes: float = 15.0
    kubeconfig: str = ""
    github_token: str = ""
    github_api_url: str = "https://api.github.com"
    ssl_cert_file: str = ""
    answer_budget_seconds: float = 2.0
    log_level: str = "INFO"

    @property
    def kubernetes_enabled(self) -> bool:
        """Kubernetes is used with a kubeconfig or when running inside a pod."""
        return bool(self.kubeconfig) or bool(os.environ.get("KUBERNETES_SERVICE_HOST"))

    def require_slack(self) -> None:
        """HTTP mode needs a bot token and a signing secret; Socket Mode needs an app token."""
        if not self.slack_bot_token:
            raise ConfigError("SLACK_BOT_TOKEN is required to serve Slack (it starts with xoxb-)")
        if not self.slack_app_token and not self.slack_signing_secret:
            raise ConfigError("SLACK_SIGNING_SECRET is required in HTTP mode (or set SLACK_APP_TOKEN for Socket Mode)")
        if self.slack_app_token and not self.slack_app_token.startswith("xapp-"):
            raise ConfigError("SLACK_APP_TOKEN must be an app-level token starting with xapp-")


def _number(env: Mapping[str, str], name: str, default: float, *, low: float, high: float, integer: bool = False) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number (got {raw!r})") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low:g} and {high:g} (got {raw})")
    return value


def _url(env: Mapping[str, str], name: str, default: str, *, schemes: tuple[str, ...] = ("http", "https")) -> str:
    raw = env.get(name, "").strip() or default
    if raw and (urlparse(raw).scheme not in schemes or not urlparse(raw).netloc):
        raise ConfigError(f"{name} must be a {' or '.join(schemes)} URL (got {raw!r})")
    return raw


def _database_url(env: Mapping[str, str], data_dir: Path) -> str:
    raw = env.get("DATABASE_URL", "").strip()
    if not raw:
        return f"sqlite:///{data_dir / 'pavedroad.db'}"
    scheme = urlparse(raw).scheme.split("+")[0]
    if scheme not in ("sqlite", "postgresql", "postgres"):
        raise ConfigError(f"DATABASE_URL must start with sqlite:/// or postgresql:// (got scheme {scheme!r})")
    return raw


def _file_values(env: Mapping[str, str]) -> dict[str, str]:
    path = env.get("PAVEDROAD_CONFIG", "").strip()
    if not path:
        return {}
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"PAVEDROAD_CONFIG: cannot read {path}: {exc.__class__.__name__}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"PAVEDROAD_CONFIG: {path} must hold a mapping of SETTING: value")
    return {str(k).upper(): "" if v is None else str(v) for k, v in data.items()}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting; raise ConfigError naming the first bad one."""
    source = dict(os.environ if environ is None else environ)
    env = {**_file_values(source), **source}
    data_dir = Path(env.get("PAVEDROAD_DATA_DIR", "").strip() or ".pavedroad")
    catalog = tuple(p.strip() for p in env.get("PAVEDROAD_CATALOG", "").split(",") if p.strip())
    ssl_cert_file = env.get("SSL_CERT_FILE", "").strip()
    if ssl_cert_file and not Path(ssl_cert_file).is_file():
        raise ConfigError(f"SSL_CERT_FILE points to {ssl_cert_file!r}, which is not a readable file")
    kubeconfig = env.get("KUBECONFIG", "").strip()
    if kubeconfig and not any(Path(p).is_file() for p in kubeconfig.split(os.pathsep)):
        raise ConfigError(f"KUBECONFIG points to {kubeconfig!r}, which is not a readable file")
    slack_bot_token = env.get("SLACK_BOT_TOKEN", "").strip()
    if slack_bot_token and not slack_bot_token.startswith(("xoxb-", "xoxp-")):
        raise ConfigError("SLACK_BOT_TOKEN must be a bot token starting with xoxb-")
    log_level = (env.get("LOG_LEVEL", "").strip() or "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR (got {log_level!r})")
    return Settings(
        host=env.get("HOST", "").strip() or "0.0.0.0",
        port=int(_number(env, "PORT", 3000, low=1, high=65535, integer=True)),
        data_dir=data_dir,
        database_url=_database_url(env, data_dir),
        slack_bot_token=slack_bot_token,
        slack_signing_secret=env.get("SLACK_SIGNING_SECRET", "").strip(),
        slack_app_token=env.get("SLACK_APP_TOKEN", "").strip(),
        slack_api_url=_url(env, "SLACK_API_URL", "https://slack.com/api/").rstrip("/") + "/",
        catalog=catalog or (str(DEMO_CATALOG),),
        catalog_refresh_seconds=_number(env, "PAVEDROAD_CATALOG_REFRESH_SECONDS", 300, low=0, high=86400),
        catalog_max_file_bytes=int(_number(env, "PAVEDROAD_CATALOG_MAX_FILE_BYTES", 5_000_000, low=1_000, high=500_000_000, integer=True)),
        backstage_url=_url(env, "BACKSTAGE_URL", "").rstrip("/"),
        backstage_token=env.get("BACKSTAGE_TOKEN", "").strip(),
        pagerduty_api_token=env.get("PAGERDUTY_API_TOKEN", "").strip(),
        pagerduty_api_url=_url(env, "PAGERDUTY_API_URL", "https://api.pagerduty.com", schemes=("https",)).rstrip("/"),
        pagerduty_events_url=_url(env, "PAGERDUTY_EVENTS_URL", "https://events.pagerduty.com", schemes=("https",)).rstrip("/"),
        page_dedup_minutes=_number(env, "PAVEDROAD_PAGE_DEDUP_MINUTES", 15, low=0, high=1440),
        kubeconfig=kubeconfig,
        github_token=env.get("GITHUB_TOKEN", "").strip(),
        github_api_url=_url(env, "GITHUB_API_URL", "https://api.github.com").rstrip("/"),
        ssl_cert_file=ssl_cert_file,
        answer_budget_seconds=_number(env, "PAVEDROAD_ANSWER_BUDGET_SECONDS", 2.0, low=0.1, high=2.8),
        log_level=log_level,
    )
