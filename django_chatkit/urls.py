from django.urls import path

from django_chatkit.views import ChatKitView

app_name = "chatkit"

urlpatterns = [
    path("", ChatKitView.as_view(), name="endpoint"),
]
