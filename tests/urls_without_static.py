"""The test project without any static files route: what bare daphne or uvicorn serves when the
site has neither runserver, nor WhiteNoise, nor collectstatic behind a web server. The widget
must start all the same (tests/test_bootstrap_asset.py, tests/test_browser.py)."""

from django.urls import include, path

from tests.browser_urls import public_widget_page

urlpatterns = [
    path("chatkit/", include("django_chatkit.urls")),
    path("public-widget-test/", public_widget_page, name="public_widget_test_page"),
]
