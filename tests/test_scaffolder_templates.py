"""Real Backstage templates (tests/data/scaffolder-templates, see its SOURCES.md) and our demo
templates: they validate, and those that use only our actions render with sample values to the
expected file tree, templated paths and contents included."""
from __future__ import annotations

import pytest
import yaml

from bot.scaffolder.actions import BUILTIN
from bot.scaffolder.model import ScaffolderError, ValidationErrors
from bot.scaffolder.template import parse, problems, read_file, template_files, TemplateError
from tests.scaffolder_kit import ADA, BACKSTAGE_TEMPLATES, ROOT, make_kit


def real_templates():
    return {t.name: t for path in template_files([str(BACKSTAGE_TEMPLATES)]) for t in read_file(path)}


def test_every_real_template_parses_and_only_foreign_actions_are_refused():
    templates = real_templates()
    assert len(templates) == 11
    refused = {name: problems(t, BUILTIN) for name, t in templates.items() if problems(t, BUILTIN)}
    assert {name: [p.split(" (known")[0] for p in found] for name, found in refused.items()} == {
        "example-nodejs-template": ["step 'notify': unknown action 'notification:send'"],
        "gitlab-merge-request": ["step 'publish': unknown action 'publish:gitlab:merge-request'"],
        "rails-demo": ["step 'fetch-base': unknown action 'fetch:rails'"],
    }


def test_the_demo_templates_are_ready():
    templates = [t for path in template_files([str(ROOT / "examples" / "templates")]) for t in read_file(path)]
    assert {t.name: problems(t, BUILTIN) for t in templates} == {"python-service": [], "infra-namespace": []}


@pytest.mark.parametrize("doc, message", [
    ({"apiVersion": "scaffolder.backstage.io/v1beta2", "kind": "Template", "metadata": {"name": "x"}, "spec": {"steps": []}}, "apiVersion"),
    ({"apiVersion": "scaffolder.backstage.io/v1beta3", "kind": "Template", "metadata": {"name": "bad name"}, "spec": {"steps": []}}, "metadata.name"),
    ({"apiVersion": "scaffolder.backstage.io/v1beta3", "kind": "Template", "metadata": {"name": "x"}, "spec": {"steps": [{"id": "a"}]}}, "no action"),
    ({"apiVersion": "scaffolder.backstage.io/v1beta3", "kind": "Template", "metadata": {"name": "x"}, "spec": {"steps": "nope"}}, "spec.steps"),
])
def test_malformed_templates_are_refused(doc, message):
    with pytest.raises(TemplateError, match=message):
        parse(doc, "x.yaml")


def test_problems_are_found_before_anything_runs():
    template = parse({"apiVersion": "scaffolder.backstage.io/v1beta3", "kind": "Template", "metadata": {"name": "x"},
                      "spec": {"parameters": {"properties": {"n": {"type": "strin"}}},
                               "steps": [{"id": "a", "action": "debug:log", "input": {"message": "${{ oops( }}"}},
                                         {"id": "a", "action": "shell:exec"}]}}, "x.yaml")
    found = problems(template, BUILTIN)
    assert any("used twice" in p for p in found)
    assert any("unknown action 'shell:exec'" in p for p in found)
    assert any("parameters page 1" in p for p in found)
    assert any("oops(" in p for p in found)


REPO = "github.com?owner=acme&repo=my-site"
SAMPLES = {
    "react-ssr-template": ({"component_id": "my-site", "description": "A site", "owner": "group:default/web", "repoUrl": REPO},
                           {".editorconfig", ".gitignore", "README.md", "catalog-info.yaml", "docs/index.md", "mkdocs.yml"}),
    "create-react-app-template": ({"component_id": "my-site", "owner": "web", "repoUrl": REPO},
                                  {".gitignore", "README.md", "catalog-info.yaml", "docs/index.md", "mkdocs.yml",
                                   "public/manifest.json", "public/robots.txt"}),
    "springboot-template": ({"component_id": "my-site", "java_package_name": "io.acme.site", "description": "gRPC",
                             "owner": "web", "repoUrl": REPO},
                            {".editorconfig", ".gitignore", "README.md", "SERVICE.marker", "catalog-info.yaml", "docs/index.md",
                             "mkdocs.yml", "src/main/resources/application.properties", "src/main/resources/banner.txt"}),
    "docs-template": ({"name": "my-site", "description": "Docs", "owner": "web", "repoUrl": REPO},
                      {"catalog-info.yaml", "docs/index.md", "mkdocs.yml"}),
    "docs-template-cookiecutter": ({"name": "my-site", "description": "Docs", "owner": "web", "repoUrl": REPO},
                                   {"catalog-info.yaml", "docs/index.md", "mkdocs.yml"}),
    "scaffold-bancolombia-java": ({"name": "my-site", "package": "co.acme", "projectType": "imperative", "coverage": "jacoco",
                                   "owner": "web", "repoUrl": REPO}, {"catalog-info.yaml"}),
}


@pytest.fixture
async def kit(tmp_path):
    kit = await make_kit(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path, templates=[str(BACKSTAGE_TEMPLATES)])
    yield kit
    await kit.close()


@pytest.mark.parametrize("name", sorted(SAMPLES))
async def test_real_templates_render_to_the_expected_tree(kit, name):
    values, files = SAMPLES[name]
    template = real_templates()[name]
    preview = await kit.scaffolder.dry_run(template, values, ADA)
    assert preview.error == ""
    assert set(preview.files) == files
    entity = yaml.safe_load(preview.files["catalog-info.yaml"])
    assert entity["kind"] == "Component"
    assert entity["metadata"]["name"] == "my-site"
    assert entity["spec"]["owner"] == values["owner"]
    if "destination" in str(template.steps[0]["input"]["values"]):
        assert entity["metadata"]["annotations"]["github.com/project-slug"] == "acme/my-site"
    assert [(s, a) for s, a, _ in preview.steps] == [(s["id"], s["action"]) for s in template.steps]
    publish = dict((s, i) for s, _, i in preview.steps)["publish"]
    assert publish["repoUrl"] == REPO and publish["description"] == "This is my-site"
    assert dict((s, i) for s, _, i in preview.steps)["register"]["repoContentsUrl"] == "https://github.com/acme/my-site/blob/main"
    assert "[register] would register component:default/my-site" in preview.log


async def test_springboot_contents_carry_the_values(kit):
    values, _ = SAMPLES["springboot-template"]
    preview = await kit.scaffolder.dry_run(real_templates()["springboot-template"], values, ADA)
    assert preview.files["src/main/resources/application.properties"].decode() == (
        "spring.application.name=my-site\nserver.port=8080\ngrpc.enableReflection=true\n")
    readme = preview.files["README.md"].decode()
    assert "${{" not in readme and "my-site" in readme
    entity = yaml.safe_load(preview.files["catalog-info.yaml"])
    assert entity["metadata"]["description"] == "gRPC"


async def test_optional_blocks_render_out_when_the_value_is_missing(kit):
    values = {"component_id": "my-site", "owner": "web", "repoUrl": REPO}
    preview = await kit.scaffolder.dry_run(real_templates()["react-ssr-template"], values, ADA)
    assert "description" not in yaml.safe_load(preview.files["catalog-info.yaml"])["metadata"]


async def test_conditional_output_demo_previews_its_output(kit):
    template = real_templates()["conditional-output-demo"]
    shown = await kit.scaffolder.dry_run(template, {"name": "demo"}, ADA)
    assert "[log] Creating demo" in shown.log
    assert "[output] CI Dashboard: https://ci.example.com/demo" in shown.log
    hidden = await kit.scaffolder.dry_run(template, {"name": "demo", "enableCI": "No"}, ADA)
    assert not any("CI Dashboard" in line for line in hidden.log)


async def test_the_pull_request_template_says_remote_fetches_are_not_supported(kit):
    preview = await kit.scaffolder.dry_run(real_templates()["pull-request"], {"name": "my-site", "repoUrl": REPO}, ADA)
    assert preview.error.startswith("step Fetch Docs failed: url 'https://github.com/backstage/community")
    assert set(preview.files) == {"catalog-info.yaml"}


async def test_templated_paths_in_the_demo_service(kit):
    kit.scaffolder.template_paths = [str(ROOT / "examples" / "templates")]
    template = kit.scaffolder.template("python-service")
    preview = await kit.scaffolder.dry_run(template, {"name": "ledger-api", "owner": "payments-team",
                                                      "repoUrl": "github.com?owner=acme&repo=ledger-api",
                                                      "withDatabase": True}, ADA)
    assert {"src/ledger_api/__init__.py", "src/ledger_api/app.py", "tests/test_app.py", "static/favicon.png"} <= set(preview.files)
    assert "from ledger_api.app import create_app" in preview.files["src/ledger_api/__main__.py"].decode()
    assert "${{ github.sha }}" in preview.files[".github/workflows/ci.yaml"].decode()  # copyWithoutTemplating
    assert preview.files["static/favicon.png"].startswith(b"\x89PNG")
    entity = yaml.safe_load(preview.files["catalog-info.yaml"])
    assert entity["spec"]["dependsOn"] == ["resource:default/ledger-api-db"]
    assert entity["spec"]["lifecycle"] == "experimental"  # the schema's default
    infra = kit.scaffolder.template("infra-namespace")
    preview = await kit.scaffolder.dry_run(infra, {"service": "payment-service", "owner": "payments-team"}, ADA)
    assert preview.error == ""
    assert set(preview.files) == {"namespaces/payment-service.yaml", "vault/policies/payment-service.hcl"}
    assert 'limits.cpu: "8"' in preview.files["namespaces/payment-service.yaml"].decode()
    pull = dict((s, i) for s, _, i in preview.steps)["pull-request"]
    assert pull["branchName"] == "namespace-payment-service-staging" and pull["targetPath"] == "staging"


@pytest.mark.parametrize("values, errors", [
    ({}, {"name": "is required", "owner": "is required", "repoUrl": "is required"}),
    ({"name": "Bad Name!", "owner": "payments-team", "repoUrl": "github.com?owner=acme&repo=x"},
     {"name": "must be 1-63 letters and digits, separated by single -, _ or ."}),
    ({"name": "x" * 41, "owner": "payments-team", "repoUrl": "github.com?owner=acme&repo=x"},
     {"name": "must be at most 40 characters"}),
    ({"name": "ok", "owner": "payments-team", "repoUrl": "gitlab.com?owner=acme&repo=x"},
     {"repoUrl": "host gitlab.com is not allowed here (allowed: github.com)"}),
    ({"name": "ok", "owner": "payments-team", "repoUrl": "github.com?owner=evil&repo=x"},
     {"repoUrl": "owner evil is not allowed here (allowed: acme)"}),
    ({"name": "ok", "owner": "payments-team", "repoUrl": "github.com?owner=acme&repo=a/../b"},
     {"repoUrl": "the repository name may only hold letters, digits, ., - and _"}),
    ({"name": "ok", "owner": "payments-team", "repoUrl": "github.com?owner=acme&repo=x", "lifecycle": "legacy"},
     {"lifecycle": "must be one of experimental, production"}),
    ({"name": "payment-service", "owner": "payments-team", "repoUrl": "github.com?owner=acme&repo=x"},
     {"name": "the catalog already has a component named payment-service (owned by group:default/payments-team)"}),
])
async def test_invalid_and_duplicate_names_are_field_errors(kit, values, errors):
    kit.scaffolder.template_paths = [str(ROOT / "examples" / "templates")]
    template = kit.scaffolder.template("python-service")
    assert kit.scaffolder.validate_values(template, values) == errors
    with pytest.raises(ValidationErrors) as refused:
        await kit.scaffolder.dry_run(template, values, ADA)
    assert refused.value.errors == errors


async def test_a_template_with_an_unknown_action_cannot_start(kit):
    template = real_templates()["rails-demo"]
    with pytest.raises(ScaffolderError, match="unknown action 'fetch:rails'"):
        await kit.scaffolder.start(template, {"name": "app", "owner": "payments-team", "dryRun": True,
                                              "repoUrl": "github.com?owner=acme&repo=app"}, ADA, "k1")
    assert "template:default/rails-demo" not in [t.ref for t in kit.scaffolder.templates()]
