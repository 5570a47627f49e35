from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve

from siyu.api import api
from siyu.messaging.views import tracked_link

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("l/<str:token>", tracked_link, name="tracked-link"),
    # Uploaded materials (images, files) are meant to be shared with customers, so they are
    # public; a deployment with a CDN or object storage points SIYU_MEDIA_ROOT's URL there instead.
    re_path(r"^media/(?P<path>.+)$", serve, {"document_root": settings.MEDIA_ROOT}),
    path("i18n/", include("django.conf.urls.i18n")),
    path("callbacks/sms/", include("siyu.channels.sms.urls")),
    # WeCom and Official Account pushes: /callbacks/wecom/<slug>/ and /callbacks/oa/<slug>/.
    path("callbacks/", include("siyu.wecom.urls")),
    # One-click unsubscribe links in emails (RFC 8058): public, token-authorised.
    path("", include("siyu.channels.email.urls")),
    path("", include("siyu.console.urls")),
]
