from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("chatkit/", include("django_chatkit.urls")),
    path("", include("tests.browser_urls")),  # the {% chatkit %} page of test_browser.py
]
