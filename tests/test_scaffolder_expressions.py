"""`${{ }}` expressions: Backstage's semantics, its filters, and the sandbox."""
from __future__ import annotations

import pytest

from bot.scaffolder.execution import mask
from bot.scaffolder.expressions import ExpressionError, is_true, render_text, render_value

CONTEXT = {
    "parameters": {"name": "web", "count": 3, "enabled": True, "tags": ["a", "b"], "owner": "group:default/team-a",
                   "repoUrl": "github.com?owner=acme&repo=web", "ci": "Yes"},
    "steps": {"publish": {"output": {"remoteUrl": "https://github.com/acme/web"}}},
    "user": {"entity": {"metadata": {"name": "ada"}, "spec": {"profile": {"email": "ada@acme.example"}}}},
    "secrets": {"TOKEN": "s3cr3t-token"},
}


@pytest.mark.parametrize("template, expected", [
    ("${{ parameters.count }}", 3),
    ("${{ parameters.enabled }}", True),
    ("${{ parameters.tags }}", ["a", "b"]),
    ("  ${{ parameters.count }}  ", 3),
    ("n=${{ parameters.count }}", "n=3"),
    ("${{ parameters.name }}-${{ parameters.count }}", "web-3"),
    ("${{ parameters.missing }}", None),
    ("x${{ steps.skipped.output.url }}y", "xy"),
    ("${{ steps['publish'].output.remoteUrl }}", "https://github.com/acme/web"),
    ("${{ steps.publish.output.remoteUrl }}", "https://github.com/acme/web"),
    ("${{ user.entity.spec.profile.email }}", "ada@acme.example"),
    ("${{ parameters.repoUrl | parseRepoUrl }}", {"host": "github.com", "owner": "acme", "repo": "web"}),
    ("${{ parameters.repoUrl | projectSlug }}", "acme/web"),
    ("${{ parameters.owner | parseEntityRef }}", {"kind": "group", "namespace": "default", "name": "team-a"}),
    ("${{ 'team-b' | parseEntityRef({ defaultKind: \"group\", defaultNamespace: \"ops\" }) }}",
     {"kind": "group", "namespace": "ops", "name": "team-b"}),
    ("${{ parameters.owner | parseEntityRef | pick('name') }}", "team-a"),
    ("${{ parameters.name | dump }}", '"web"'),
    ("${{ parameters.name | upper | replace('W', 'V') }}", "VEB"),
    ("${{ parameters.ci === \"Yes\" }}", True),
    ("${{ parameters.enabled !== true }}", False),
    ("${{ parameters.nothing if parameters.nothing else parameters.name }}", "web"),
    ("{% if parameters.enabled %}on{% else %}off{% endif %}", "on"),
    ("${{ null }}", None),
])
def test_backstage_semantics(template, expected):
    assert render_value(template, CONTEXT) == expected


def test_structures_are_rendered_inside_and_keep_types():
    given = {"values": {"name": "${{ parameters.name }}", "n": "${{ parameters.count }}", "list": ["${{ parameters.count }}", 1]}}
    assert render_value(given, CONTEXT) == {"values": {"name": "web", "n": 3, "list": [3, 1]}}


@pytest.mark.parametrize("condition, expected", [
    (None, True), (True, True), (False, False), ("${{ parameters.enabled }}", True), ("${{ parameters.missing }}", False),
    ("${{ parameters.ci === 'No' }}", False), ("false", False), ("${{ [] }}", True),
])
def test_conditions(condition, expected):
    assert is_true(condition, CONTEXT) is expected


@pytest.mark.parametrize("attack", [
    "${{ ''.__class__ }}",
    "${{ ''.__class__.__mro__[1].__subclasses__() }}",
    "prefix ${{ ().__class__.__base__ }}",
    "${{ parameters.name.__class__.__init__.__globals__ }}",
    "${{ parameters | attr('__class__') }}",
    "${{ parameters.update({'name': 'x'}) }}",
    "${{ parameters.tags.append('x') }}",
    "${{ 'a' * 100000000 }}",
    "${{ 10 ** 100000 }}",
    "${{ range(100000000) | list }}",
    "{% include '/etc/passwd' %}",
    "{% import 'os' as os %}",
    "${{ lipsum() }}",
    "${{ self.__init__ }}",
    "${{ parameters.name.format.__globals__ }}",
    "${{ unclosed ",
])
def test_sandbox_escapes_fail_cleanly(attack):
    with pytest.raises(ExpressionError) as failure:
        render_value(attack, CONTEXT)
    assert "s3cr3t" not in str(failure.value)
    assert str(failure.value).startswith(("cannot render", "an expression produced"))


def test_parameter_values_are_data_never_templates():
    context = {"parameters": {"name": "${{ ''.__class__ }} {% include 'x' %} {{ 7*7 }}"}}
    assert render_value("${{ parameters.name }}", context) == context["parameters"]["name"]
    assert render_value("name: ${{ parameters.name }}", context) == "name: " + context["parameters"]["name"]


def test_errors_quote_the_template_not_the_values():
    with pytest.raises(ExpressionError) as failure:
        render_value("${{ secrets.TOKEN | parseRepoUrl }}", CONTEXT)
    assert "secrets.TOKEN | parseRepoUrl" in str(failure.value)
    assert "s3cr3t" not in str(failure.value)


def test_secrets_are_masked_wherever_they_are_copied():
    rendered = render_value({"token": "${{ secrets.TOKEN }}", "header": "Bearer ${{ secrets.TOKEN }}"}, CONTEXT)
    assert mask(rendered, CONTEXT["secrets"]) == {"token": "***", "header": "Bearer ***"}


def test_skeleton_text_and_cookiecutter_syntax():
    assert render_text("name: ${{ values.name | dump }}\n{{ not.a.tag }}\n", {"values": {"name": "web"}}) == \
        'name: "web"\n{{ not.a.tag }}\n'
    assert render_text("name: {{cookiecutter.name | jsonify}}\n${{ kept }}\n", {"cookiecutter": {"name": "web"}},
                       cookiecutter=True) == 'name: "web"\n$\n'
