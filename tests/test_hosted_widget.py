"""{% chatkit workflow="wf_..." %}: a hosted widget, beside self-hosted ones."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.template import Context, Template
from django.test import RequestFactory, override_settings

from django_chatkit.widget import WidgetOptionError, chatkit_options, chatkit_widget

SETTINGS = {"SERVER": "tests.servers.ScriptedServer", "HOSTED_WORKFLOWS": ["wf_sales"]}


@pytest.fixture(autouse=True)
def _settings() -> Any:
    with override_settings(CHATKIT=SETTINGS):
        yield


def render(source: str) -> str:
    request = RequestFactory().get("/")
    return Template("{% load chatkit %}" + source).render(Context({"request": request}))


def test_a_hosted_widget_asks_the_session_endpoint_for_its_secrets() -> None:
    html = render('{% chatkit workflow="wf_sales" %}')
    assert 'data-chatkit-workflow="wf_sales"' in html
    assert 'data-chatkit-session="/chatkit/hosted/session/"' in html
    assert "data-chatkit-live" not in html  # hosted threads are not in this site's database
    options = chatkit_options(workflow="wf_sales")
    # api is made in the browser ({getClientSecret}); nothing of the self-hosted endpoint.
    assert options["api"] == {}
    assert options["composer"]["attachments"] == {"enabled": False}


def test_the_other_options_apply_to_a_hosted_widget_too() -> None:
    options = chatkit_options(workflow="wf_sales", greeting="Sales here", theme="dark")
    assert options["startScreen"] == {"greeting": "Sales here"}
    assert options["theme"] == {"colorScheme": "dark"}


def test_hosted_and_self_hosted_widgets_on_one_page() -> None:
    html = render('{% chatkit workflow="wf_sales" %}{% chatkit id="help" %}')
    assert html.count("<openai-chatkit ") == 2
    assert html.count("data-chatkit-workflow=") == 1
    self_hosted = json.loads(
        html.split('id="help-options" type="application/json">')[1].split("<")[0]
    )
    assert self_hosted["api"]["url"] == "/chatkit/"


def test_a_workflow_off_the_allow_list_fails_to_render() -> None:
    request = RequestFactory().get("/")
    with pytest.raises(WidgetOptionError, match="not in CHATKIT\\['HOSTED_WORKFLOWS'\\]"):
        chatkit_widget(request, workflow="wf_elsewhere")


@pytest.mark.parametrize("workflow", ["sales", "wf_", 'wf_a"><script>', 7])
def test_a_workflow_that_is_no_workflow_id_is_refused(workflow: Any) -> None:
    with pytest.raises(WidgetOptionError, match="workflow must be None or"):
        chatkit_options(workflow=workflow)


def test_the_widget_setting_makes_every_widget_hosted_unless_a_tag_says_otherwise() -> None:
    with override_settings(CHATKIT={**SETTINGS, "WIDGET": {"workflow": "wf_everywhere"}}):
        assert chatkit_widget(None).workflow == "wf_everywhere"
        self_hosted = chatkit_widget(None, workflow=None)
    assert self_hosted.workflow is None and self_hosted.session_url is None
