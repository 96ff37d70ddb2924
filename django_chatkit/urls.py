from django.urls import path

from django_chatkit.attachments.views import DownloadView, UploadView
from django_chatkit.bootstrap_asset import bootstrap_view
from django_chatkit.views import ChatKitView

app_name = "chatkit"

urlpatterns = [
    path("", ChatKitView.as_view(), name="endpoint"),
    path("attachments/<str:attachment_id>/upload/", UploadView.as_view(), name="upload"),
    path("attachments/<str:attachment_id>/", DownloadView.as_view(), name="download"),
    # The widget's module, here rather than only in static/: it then needs no static files
    # setup under any server (django_chatkit/bootstrap_asset.py).
    path("bootstrap.<str:digest>.js", bootstrap_view, name="bootstrap"),
]
