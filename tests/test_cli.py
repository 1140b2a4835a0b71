"""The `pavedroad` command as a user runs it: shell, catalog lint and refresh, settings errors."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from bot.config import ConfigError, load_settings
from bot.db import Database
from bot.metrics.delivery_data import DeliveryData
from tests.conftest import BACKSTAGE_EXAMPLE, ROOT
from tests.fakes.github import GitHubFake


def pavedroad(*args: str, tmp_path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PAGERDUTY_", "PAVEDROAD_", "KUBECONFIG", "DATABASE_URL"))}
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**clean, "PAVEDROAD_DATA_DIR": str(tmp_path / "data"), **env})


def test_shell_answers_one_command_from_the_demo_catalog_with_no_settings(tmp_path):
    result = pavedroad("shell", "-c", "/whoowns Payment Service", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("Payment Service\n===============\n")
    assert "Owner: Payments · #C0PAYMENTS1" in out
    assert "Runbook: Runbook (https://runbooks.acme.example/payment-service)" in out
    assert "On call now: unavailable: PagerDuty is not configured" in out
    assert "Buttons: [1] Page on-call  [2] Share in channel  [3] Dependencies" in out
    assert (tmp_path / "data" / "pavedroad.db").exists()


def test_interactive_shell_presses_buttons(tmp_path):
    session = "help\n/whoowns payment-service\nclick 3\n/nope\nexit\n"
    result = subprocess.run([sys.executable, "-m", "bot", "shell"], input=session, cwd=ROOT, capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PAVEDROAD_DATA_DIR": str(tmp_path / "data")})
    assert result.returncode == 0, result.stderr
    assert "/whoowns NAME" in result.stdout                                  # help
    assert "Dependencies of `component:default/payment-service`" in result.stdout
    assert "Unknown command '/nope'" in result.stdout


def test_lint_reports_problems_with_file_and_line_and_fails(tmp_path):
    result = pavedroad("catalog", "lint", str(BACKSTAGE_EXAMPLE / "all.yaml"), str(BACKSTAGE_EXAMPLE / "acme" / "org.yaml"),
                       tmp_path=tmp_path)
    assert result.returncode == 1
    assert "playback-order-component.yaml:12: component:default/playback-order: spec.owner refers to group:default/guest" in result.stdout
    assert "2 problem(s)" in result.stderr


def test_lint_of_a_clean_catalog_passes(tmp_path):
    result = pavedroad("catalog", "lint", str(ROOT / "examples" / "catalog"), tmp_path=tmp_path)
    assert (result.returncode, result.stdout) == (0, "")


def test_catalog_refresh_reports(tmp_path):
    result = pavedroad("catalog", "refresh", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "83 entities; 14 file(s) changed, 0 removed; 0 problem(s)" in result.stdout


@pytest.mark.parametrize("env,line", [
    ({}, "SLACK_BOT_TOKEN is required to serve Slack"),
    ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET is required in HTTP mode"),
    ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "PORT": "http"}, "PORT must be a number (got 'http')"),
    ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "DATABASE_URL": "mysql://x"}, "DATABASE_URL must start with"),
])
def test_bad_settings_stop_start_up_with_one_line(tmp_path, env, line):
    result = pavedroad("serve", tmp_path=tmp_path, **env)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and line in result.stderr


def test_settings_from_a_yaml_file_with_the_environment_winning(tmp_path):
    config = tmp_path / "pavedroad.yaml"
    config.write_text("PORT: 8080\nPAGERDUTY_API_TOKEN: from-file\nLOG_LEVEL: debug\n")
    settings = load_settings({"PAVEDROAD_CONFIG": str(config), "PORT": "9090"})
    assert (settings.port, settings.pagerduty_api_token, settings.log_level) == (9090, "from-file", "DEBUG")
    with pytest.raises(ConfigError, match="PAGERDUTY_API_URL must be a https URL"):
        load_settings({"PAGERDUTY_API_URL": "http://insecure"})
    with pytest.raises(ConfigError, match="SSL_CERT_FILE"):
        load_settings({"SSL_CERT_FILE": str(tmp_path / "missing.pem")})


def test_a_broken_kubeconfig_stops_start_up_with_one_line(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    result = pavedroad("serve", tmp_path=tmp_path, SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s", KUBECONFIG=str(kubeconfig))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("pavedroad: configuration error: cannot load the Kubernetes configuration from KUBECONFIG")


def test_an_unreachable_database_stops_start_up_with_one_line(tmp_path):
    result = pavedroad("catalog", "refresh", tmp_path=tmp_path, DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "pavedroad: cannot start:" in result.stderr and "DATABASE_URL" in result.stderr


def test_the_manifest_lists_every_command_the_bot_registers():
    import yaml
    from commands import CAPABILITIES
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    listed = {c["command"] for c in manifest["features"]["slash_commands"]}
    registered = {usage.split()[0] for capability in CAPABILITIES for usage, _ in capability.HELP}
    assert listed == registered
    assert {"app_home_opened", "app_mention", "reaction_added", "message.channels"} <= set(manifest["settings"]["event_subscriptions"]["bot_events"])


async def test_collect_reads_the_catalogs_repositories_into_the_database(tmp_path):
    now = datetime.now(timezone.utc)
    async with GitHubFake() as github:
        github.add_repo("acme/payment-service")
        github.add_dated_commit("acme/payment-service", now - timedelta(days=2, hours=3), "change")
        github.add_deployment("acme/payment-service", created_at=now - timedelta(days=2))
        github.add_workflow_run("acme/payment-service", created_at=now - timedelta(days=1))
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PAGERDUTY_", "PAVEDROAD_", "GITHUB_"))}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "collect", cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**clean, "PAVEDROAD_DATA_DIR": str(tmp_path / "data"), "GITHUB_API_URL": github.url,
                 "GITHUB_TOKEN": github.token})
        out, err = await asyncio.wait_for(process.communicate(), 120)
    repositories = {line.split(":", 1)[1].strip() for path in (ROOT / "examples" / "catalog").rglob("*.yaml")
                    for line in path.read_text().splitlines() if line.strip().startswith("github.com/project-slug:")}
    # the demo catalog names more repositories than the test server holds: those fail (404), and the exit says so
    assert process.returncode == 1, err.decode()
    assert out.decode().startswith(f"GitHub repositories: 1 read, {len(repositories) - 1} failed, 0 left for later "
                                   "(rate limit or stop); PagerDuty services: 0 read, 0 failed")
    db = Database(f"sqlite:///{tmp_path / 'data' / 'pavedroad.db'}")
    try:
        read = await DeliveryData(db).sources("github", ["acme/payment-service", "acme/cart-service"])
        assert read["acme/payment-service"].source == "deployments" and read["acme/payment-service"].error == ""
        assert read["acme/cart-service"].read_at is None and "404" in read["acme/cart-service"].error
    finally:
        await db.close()


def test_the_shell_saves_charts_it_cannot_show(tmp_path):
    result = pavedroad("shell", "-c", "/platform stats 7d", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    saved = tmp_path / "data" / "shell-files" / "platform-stats-7d.png"
    assert f"[file] Platform trends, last 7 days: saved to {saved}" in result.stdout
    assert "Something went wrong" not in result.stdout
    assert saved.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
