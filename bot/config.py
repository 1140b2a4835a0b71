"""Settings from environment variables (and an optional YAML file), validated once at start.

Every setting has one name, used in the environment, in the YAML file named by
`PAVEDROAD_CONFIG` and in the README's configuration table. The environment wins over the
file. A missing or invalid setting raises `ConfigError` with one line naming it.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Mapping
from urllib.parse import urlparse

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEMO_CATALOG = PROJECT_ROOT / "examples" / "catalog" / "all.yaml"
DEMO_FAQ = PROJECT_ROOT / "examples" / "faq"
DEMO_TEMPLATES = PROJECT_ROOT / "examples" / "templates"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


# Environment sizes: the namespace's ResourceQuota (`hard`) and the LimitRange defaults for containers.
DEFAULT_SIZES: dict[str, dict[str, str]] = {
    "small": {"requests.cpu": "2", "requests.memory": "4Gi", "limits.cpu": "4", "limits.memory": "8Gi", "pods": "20",
              "default.cpu": "500m", "default.memory": "512Mi", "defaultRequest.cpu": "100m", "defaultRequest.memory": "128Mi"},
    "medium": {"requests.cpu": "4", "requests.memory": "8Gi", "limits.cpu": "8", "limits.memory": "16Gi", "pods": "40",
               "default.cpu": "1", "default.memory": "1Gi", "defaultRequest.cpu": "250m", "defaultRequest.memory": "256Mi"},
    "large": {"requests.cpu": "8", "requests.memory": "16Gi", "limits.cpu": "16", "limits.memory": "32Gi", "pods": "80",
              "default.cpu": "2", "default.memory": "2Gi", "defaultRequest.cpu": "500m", "defaultRequest.memory": "512Mi"},
}


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
    page_timeout_seconds: float = 10.0
    kubeconfig: str = ""
    github_token: str = ""
    github_api_url: str = "https://api.github.com"
    github_app_id: str = ""
    github_app_private_key: str = ""  # the PEM text (the setting may name a file)
    github_app_installation_id: str = ""
    templates: tuple[str, ...] = (str(DEMO_TEMPLATES),)
    docs_full_pass_seconds: float = 21600.0
    ssl_cert_file: str = ""
    answer_budget_seconds: float = 2.0
    log_level: str = "INFO"
    log_format: str = ""  # "json" or "text"; "" lets the command choose (serve: json, the rest: text)
    otel_exporter_otlp_endpoint: str = ""
    platform_channel: str = ""
    platform_admins: tuple[str, ...] = ()
    env_default_ttl_hours: float = 72.0
    env_max_ttl_hours: float = 168.0
    env_warn_hours: float = 24.0
    env_team_limit: int = 5
    env_sizes: dict[str, dict[str, str]] = field(default_factory=lambda: dict(DEFAULT_SIZES))
    env_approval_sizes: tuple[str, ...] = ("large",)
    env_ingress_namespace: str = "ingress-nginx"
    env_rbac_group: str = "{group}"
    env_provisioning: str = "api"  # or "pull-request": proposed in env_infra_repo for its pipeline to apply
    env_infra_repo: str = ""  # owner/name
    env_infra_path: str = "environments"  # the folder of the environments' files, "" for the root
    kube_context: str = ""
    reaper_interval_seconds: float = 300.0
    faq_dir: str = str(DEMO_FAQ)
    office_hours_channels: tuple[str, ...] = ()
    office_hours_group: str = ""
    office_hours_digest: tuple[int, int, int] | None = (0, 9, 0)
    scorecard_file: str = ""  # PAVEDROAD_SCORECARD: a YAML file of scorecard checks; "" for the defaults
    nps_survey_days: int = 0  # PAVEDROAD_NPS_SURVEY_DAYS: DM active users the NPS survey this often; 0: never
    dora_collect_minutes: float = 30.0  # PAVEDROAD_DORA_COLLECT_MINUTES: read GitHub and PagerDuty this often; 0: never

    @property
    def github_publishing(self) -> bool:
        """publish:github goes to GitHub with a token or an App; otherwise to local bare repositories."""
        return bool(self.github_token or self.github_app_id)

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


def _duration_hours(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    hours = parse_duration_hours(raw)
    if hours is None or hours <= 0:
        raise ConfigError(f"{name} must be a duration like 12h, 3d or 1w (got {raw!r})")
    return hours


def parse_duration_hours(text: str) -> float | None:
    """`90m`, `12h`, `3d`, `1w` → hours; None when it is not a duration."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*", text.lower())
    if not match:
        return None
    return float(match.group(1)) * {"m": 1 / 60, "h": 1, "d": 24, "w": 168}[match.group(2)]


def _sizes(env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    raw = env.get("PAVEDROAD_ENV_SIZES", "").strip()
    if not raw:
        return dict(DEFAULT_SIZES)
    try:
        sizes = yaml.safe_load(raw)
    except yaml.YAMLError:
        sizes = None
    if not isinstance(sizes, dict) or not sizes or not all(isinstance(v, dict) for v in sizes.values()):
        raise ConfigError("PAVEDROAD_ENV_SIZES must be a mapping of size name to quota, e.g. "
                          '{"small": {"requests.cpu": "2", "limits.memory": "8Gi", "pods": "20"}}')
    return {str(k): {str(q): str(v) for q, v in quota.items()} for k, quota in sizes.items()}


def _digest(env: Mapping[str, str]) -> tuple[int, int, int] | None:
    """`mon 09:00` (UTC) → (weekday, hour, minute); `off` → None."""
    raw = (env.get("PAVEDROAD_OFFICE_HOURS_DIGEST", "").strip() or "mon 09:00").lower()
    if raw == "off":
        return None
    match = re.fullmatch(r"(mon|tue|wed|thu|fri|sat|sun)\s+(\d{1,2}):(\d{2})", raw)
    if not match or int(match.group(2)) > 23 or int(match.group(3)) > 59:
        raise ConfigError(f"PAVEDROAD_OFFICE_HOURS_DIGEST must be a weekday and a UTC time like 'mon 09:00', or 'off' (got {raw!r})")
    return WEEKDAYS.index(match.group(1)), int(match.group(2)), int(match.group(3))


def _private_key(env: Mapping[str, str]) -> str:
    """GITHUB_APP_PRIVATE_KEY: the PEM itself, or the path of a file holding it."""
    raw = env.get("GITHUB_APP_PRIVATE_KEY", "").strip()
    if not raw or raw.startswith("-----BEGIN"):
        return raw.replace("\\n", "\n")
    try:
        pem = Path(raw).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"GITHUB_APP_PRIVATE_KEY names {raw!r}, which cannot be read ({exc.strerror})") from None
    if not pem.startswith("-----BEGIN"):
        raise ConfigError(f"GITHUB_APP_PRIVATE_KEY: {raw} does not hold a PEM private key")
    return pem


def _provisioning(env: Mapping[str, str]) -> tuple[str, str, str]:
    """PAVEDROAD_ENV_PROVISIONING, and the infrastructure repository and folder pull requests go to."""
    mode = (env.get("PAVEDROAD_ENV_PROVISIONING", "").strip() or "api").lower()
    if mode not in ("api", "pull-request"):
        raise ConfigError(f"PAVEDROAD_ENV_PROVISIONING must be api or pull-request (got {mode!r})")
    repo = env.get("PAVEDROAD_ENV_INFRA_REPO", "").strip()
    if mode == "pull-request" and not repo:
        raise ConfigError("PAVEDROAD_ENV_INFRA_REPO is required with PAVEDROAD_ENV_PROVISIONING=pull-request "
                          "(owner/name of the infrastructure repository)")
    if repo and not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repo):
        raise ConfigError(f"PAVEDROAD_ENV_INFRA_REPO must be owner/name (got {repo!r})")
    raw = env.get("PAVEDROAD_ENV_INFRA_PATH", "").strip() or "environments"
    folder = PurePosixPath(raw)
    if folder.is_absolute() or ".." in folder.parts:
        raise ConfigError(f"PAVEDROAD_ENV_INFRA_PATH must be a folder inside the infrastructure repository (got {raw!r})")
    return mode, repo, "" if str(folder) == "." else str(folder)


def _scorecard(env: Mapping[str, str]) -> str:
    """PAVEDROAD_SCORECARD: a YAML file of scorecard checks, read and checked now so a mistake stops the start."""
    path = env.get("PAVEDROAD_SCORECARD", "").strip()
    if path:
        from bot.metrics.scorecard import ScorecardError, load_checks  # the checks' shape lives with the scorecard
        try:
            load_checks(path)
        except ScorecardError as exc:
            raise ConfigError(f"PAVEDROAD_SCORECARD: {exc}") from None
    return path


def _list(env: Mapping[str, str], name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    return tuple(item.strip() for item in raw.split(",") if item.strip())


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
    log_format = env.get("LOG_FORMAT", "").strip().lower()
    if log_format not in ("", "json", "text"):
        raise ConfigError(f"LOG_FORMAT must be json or text (got {log_format!r})")
    default_ttl = _duration_hours(env, "PAVEDROAD_ENV_DEFAULT_TTL", 72)
    max_ttl = _duration_hours(env, "PAVEDROAD_ENV_MAX_TTL", 168)
    if default_ttl > max_ttl:
        raise ConfigError("PAVEDROAD_ENV_DEFAULT_TTL must not be longer than PAVEDROAD_ENV_MAX_TTL")
    sizes = _sizes(env)
    approval_sizes = _list(env, "PAVEDROAD_ENV_APPROVAL_SIZES", ("large",) if "large" in sizes else ())
    if unknown := [s for s in approval_sizes if s not in sizes]:
        raise ConfigError(f"PAVEDROAD_ENV_APPROVAL_SIZES names unknown size(s) {', '.join(unknown)}; sizes are {', '.join(sizes)}")
    github_app_id = env.get("GITHUB_APP_ID", "").strip()
    github_app_key = _private_key(env)
    if github_app_id and not github_app_key:
        raise ConfigError("GITHUB_APP_ID is set but GITHUB_APP_PRIVATE_KEY is not (the App's PEM key, or a file holding it)")
    if github_app_id and not github_app_id.isdigit():
        raise ConfigError(f"GITHUB_APP_ID must be the App's numeric id (got {github_app_id!r})")
    provisioning, infra_repo, infra_path = _provisioning(env)
    rbac_group = env.get("PAVEDROAD_ENV_RBAC_GROUP", "").strip() or "{group}"
    if "{group}" not in rbac_group:
        raise ConfigError("PAVEDROAD_ENV_RBAC_GROUP must contain {group} (the catalog group name), e.g. oidc:{group}")
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
        page_timeout_seconds=_number(env, "PAVEDROAD_PAGE_TIMEOUT_SECONDS", 10, low=0.5, high=120),
        kubeconfig=kubeconfig,
        github_token=env.get("GITHUB_TOKEN", "").strip(),
        github_api_url=_url(env, "GITHUB_API_URL", "https://api.github.com").rstrip("/"),
        github_app_id=github_app_id,
        github_app_private_key=github_app_key,
        github_app_installation_id=env.get("GITHUB_APP_INSTALLATION_ID", "").strip(),
        templates=_list(env, "PAVEDROAD_TEMPLATES", (str(DEMO_TEMPLATES),)),
        docs_full_pass_seconds=_number(env, "PAVEDROAD_DOCS_FULL_PASS_SECONDS", 21600, low=0, high=604800),
        ssl_cert_file=ssl_cert_file,
        answer_budget_seconds=_number(env, "PAVEDROAD_ANSWER_BUDGET_SECONDS", 2.0, low=0.1, high=2.8),
        log_level=log_level,
        log_format=log_format,
        otel_exporter_otlp_endpoint=_url(env, "OTEL_EXPORTER_OTLP_ENDPOINT", "").rstrip("/"),
        platform_channel=env.get("PAVEDROAD_PLATFORM_CHANNEL", "").strip(),
        platform_admins=_list(env, "PAVEDROAD_PLATFORM_ADMINS"),
        env_default_ttl_hours=default_ttl,
        env_max_ttl_hours=max_ttl,
        env_warn_hours=_duration_hours(env, "PAVEDROAD_ENV_WARN_BEFORE", 24),
        env_team_limit=int(_number(env, "PAVEDROAD_ENV_TEAM_LIMIT", 5, low=1, high=1000, integer=True)),
        env_sizes=sizes,
        env_approval_sizes=approval_sizes,
        env_ingress_namespace=env.get("PAVEDROAD_ENV_INGRESS_NAMESPACE", "").strip() or "ingress-nginx",
        env_rbac_group=rbac_group,
        env_provisioning=provisioning,
        env_infra_repo=infra_repo,
        env_infra_path=infra_path,
        kube_context=env.get("PAVEDROAD_KUBE_CONTEXT", "").strip(),
        reaper_interval_seconds=_number(env, "PAVEDROAD_REAPER_INTERVAL_SECONDS", 300, low=0, high=86400),
        faq_dir=env.get("PAVEDROAD_FAQ", "").strip() or str(DEMO_FAQ),
        office_hours_channels=_list(env, "PAVEDROAD_OFFICE_HOURS_CHANNELS"),
        office_hours_group=env.get("PAVEDROAD_OFFICE_HOURS_GROUP", "").strip(),
        office_hours_digest=_digest(env),
        scorecard_file=_scorecard(env),
        nps_survey_days=int(_number(env, "PAVEDROAD_NPS_SURVEY_DAYS", 0, low=0, high=366, integer=True)),
        dora_collect_minutes=_number(env, "PAVEDROAD_DORA_COLLECT_MINUTES", 30, low=0, high=1440),
    )
