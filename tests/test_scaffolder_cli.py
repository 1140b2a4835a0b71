"""`pavedroad template ...` as a template author runs it, and the scaffolder's settings."""
from __future__ import annotations

import pytest

from bot.config import ConfigError, load_settings
from bot.services import _git_host
from integrations.git_local import LocalGit
from integrations.github_publish import GitHubPublisher
from tests.scaffolder_kit import BACKSTAGE_TEMPLATES, ROOT
from tests.test_cli import pavedroad


def test_list_shows_the_demo_templates_ready(tmp_path):
    result = pavedroad("template", "list", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["template:default/infra-namespace",
                                                                       "template:default/python-service"]
    assert all(line.endswith("ready") for line in result.stdout.splitlines())


def test_validate_reports_each_template_and_fails_on_unknown_actions(tmp_path):
    result = pavedroad("template", "validate", str(BACKSTAGE_TEMPLATES), tmp_path=tmp_path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 11
    assert sum(line.endswith(": ok") for line in lines) == 8
    assert any("template:default/rails-demo: step 'fetch-base': unknown action 'fetch:rails'" in line for line in lines)
    assert result.stderr.strip().endswith("3 template file(s) with problems")
    assert pavedroad("template", "validate", str(ROOT / "examples" / "templates"), tmp_path=tmp_path).returncode == 0
    missing = pavedroad("template", "validate", str(tmp_path / "nothing"), tmp_path=tmp_path)
    assert missing.returncode == 1 and missing.stderr.startswith("pavedroad: no template.yaml in")


def test_dry_run_prints_steps_and_writes_files(tmp_path):
    values = tmp_path / "values.yaml"
    values.write_text("name: ledger-api\nowner: payments-team\nrepoUrl: github.com?owner=acme&repo=ledger-api\n")
    result = pavedroad("template", "dry-run", "python-service", "--values", str(values), "--out", str(tmp_path / "out"),
                       tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "step publish (publish:github):" in result.stdout and "  repoUrl: github.com?owner=acme&repo=ledger-api" in result.stdout
    assert "log: [register] would register component:default/ledger-api" in result.stdout
    assert (tmp_path / "out" / "src" / "ledger_api" / "app.py").is_file()
    assert not (tmp_path / "data" / "git").exists()  # nothing was created


def test_dry_run_errors_are_one_line(tmp_path):
    path = tmp_path / "values.yaml"
    path.write_text("name: Bad!\n")
    invalid = pavedroad("template", "dry-run", "python-service", "--values", str(path), tmp_path=tmp_path)
    assert invalid.returncode == 1
    assert invalid.stderr.strip().splitlines()[-1] == ("pavedroad: invalid values: owner: is required; repoUrl: is required; "
                                                       "name: must be 1-63 letters and digits, separated by single -, _ or .")
    unknown = pavedroad("template", "dry-run", "nope", "--values", str(path), tmp_path=tmp_path)
    assert unknown.returncode == 1
    assert unknown.stderr.strip().splitlines()[-1] == "pavedroad: no template 'nope'; `pavedroad template list` shows them"


def test_publishing_goes_to_github_only_when_configured(tmp_path):
    assert isinstance(_git_host(load_settings({"PAVEDROAD_DATA_DIR": str(tmp_path)}), None), LocalGit)
    key = tmp_path / "app.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n")
    settings = load_settings({"GITHUB_APP_ID": "1234", "GITHUB_APP_PRIVATE_KEY": str(key)})
    assert settings.github_app_private_key.startswith("-----BEGIN PRIVATE KEY-----\nMIIB")
    assert isinstance(_git_host(settings, None), GitHubPublisher)
    assert load_settings({"PAVEDROAD_TEMPLATES": "a, b/*.yaml"}).templates == ("a", "b/*.yaml")


@pytest.mark.parametrize("env, message", [
    ({"GITHUB_APP_ID": "1234"}, "GITHUB_APP_ID is set but GITHUB_APP_PRIVATE_KEY is not"),
    ({"GITHUB_APP_ID": "my-app", "GITHUB_APP_PRIVATE_KEY": "-----BEGIN X-----"}, "GITHUB_APP_ID must be the App's numeric id"),
    ({"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": "/no/such/key.pem"}, "GITHUB_APP_PRIVATE_KEY names '/no/such/key.pem'"),
])
def test_bad_github_app_settings_are_one_line(env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(env)
