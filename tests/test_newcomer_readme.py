"""The README's Quickstart snippets, as tests/newcomer.py reads them: the fast half of the
newcomer test (the whole of it, on a new site in a new virtualenv, is `make newcomer`)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.template import Template

from tests.newcomer import (
    DISTRIBUTION,
    REPO,
    NewcomerFailure,
    Snippet,
    adapt_command,
    extract_snippets,
    shell_commands,
)

README = (REPO / "README.md").read_text()


def snippets_by_target() -> dict[str, Snippet]:
    return {s.path: s for s in extract_snippets(README) if s.path}


def test_the_quickstart_writes_every_file_a_new_site_needs() -> None:
    assert set(snippets_by_target()) == {
        "myproject/settings.py",
        "myproject/tools.py",
        "myproject/urls.py",
        "myproject/asgi.py",
        "templates/chat.html",
        "templates/registration/login.html",
    }


def test_python_snippets_are_valid_python() -> None:
    for path, snippet in snippets_by_target().items():
        if path.endswith(".py"):
            ast.parse(snippet.text, filename=snippet.where())


def test_the_tool_the_settings_name_is_the_one_the_quickstart_defines() -> None:
    snippets = snippets_by_target()
    assert '"myproject.tools.lookup_order"' in snippets["myproject/settings.py"].text
    module = ast.parse(snippets["myproject/tools.py"].text)
    assert "lookup_order" in {
        node.name for node in module.body if isinstance(node, ast.FunctionDef)
    }


def test_the_login_link_of_the_page_has_a_url_and_a_template() -> None:
    snippets = snippets_by_target()
    assert 'include("django.contrib.auth.urls")' in snippets["myproject/urls.py"].text
    assert "{% url 'login' %}" in snippets["templates/chat.html"].text


def test_templates_parse_with_the_chatkit_tag_library() -> None:
    snippets = snippets_by_target()
    for path in ("templates/chat.html", "templates/registration/login.html"):
        Template(snippets[path].text)  # a typo in a tag or filter raises TemplateSyntaxError


def test_install_and_serve_commands() -> None:
    snippets = extract_snippets(README)
    shell = [c for s in snippets if s.kind == "shell" for c in shell_commands(s)]
    serve = [c for s in snippets if s.kind == "serve" for c in shell_commands(s)]
    installs = [c for c in shell if c.startswith("pip install") and DISTRIBUTION in c]
    assert len(installs) == 1
    assert "django-admin startproject myproject" in shell
    assert [c.split()[0:3] for c in serve] == [
        ["python", "manage.py", "runserver"],
        ["uvicorn", "myproject.asgi:application"],
        ["python", "-m", "django_chatkit.daphne"],
    ]
    wheel = Path("/tmp/dist/django_openai_chatkit-0.1.0-py3-none-any.whl")
    assert adapt_command(installs[0], wheel) == f'pip install "{wheel}[daphne]"'


@pytest.mark.parametrize(
    ("readme", "message"),
    [
        ("<!-- newcomer: shell -->\nno code block\n", "not followed by ```"),
        ("<!-- newcomer: shell -->\n```sh\npip install x\n", "never ends"),
        ("<!-- newcomer: write -->\n```python\nx = 1\n```\n", "takes a path"),
        ("<!-- newcomer: shell myproject/x.py -->\n```sh\nls\n```\n", "takes a path"),
        ("# A README without the newcomer's blocks\n", "no marked shell or serve block"),
    ],
)
def test_a_broken_marker_is_reported_with_its_line(readme: str, message: str) -> None:
    with pytest.raises(NewcomerFailure, match=message):
        extract_snippets(readme)


def test_readme_links_work_on_the_package_index() -> None:
    """README.md is also the page of the package index, where a relative link leads nowhere."""
    relative = re.findall(r"\]\((?!https?://|mailto:|#)([^)\s]+)\)", README)
    assert relative == []
