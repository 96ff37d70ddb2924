from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import include, path

from example_project import offline


def home(request: HttpRequest) -> HttpResponse:
    context = {
        "offline": offline.running(),
        "model": getattr(settings, "OPENAI_MODEL", ""),
        "workflow": getattr(settings, "CHATKIT_WORKFLOW_ID", ""),
    }
    return render(request, "home.html", context)


urlpatterns = [
    path("", home, name="home"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("chatkit/", include("django_chatkit.urls")),
]
