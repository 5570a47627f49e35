"""Callback URLs, mounted under ``callbacks/sms/`` by ``siyu.urls``."""

from __future__ import annotations

from django.conf import settings
from django.urls import path, reverse

from siyu.channels.sms import views

app_name = "sms_callbacks"

urlpatterns = [
    path("aliyun/<str:token>/report", views.aliyun_report, name="aliyun_report"),
    path("aliyun/<str:token>/reply", views.aliyun_reply, name="aliyun_reply"),
    path("tencent/<str:token>/status", views.tencent_status, name="tencent_status"),
    path("tencent/<str:token>/reply", views.tencent_reply, name="tencent_reply"),
]

# What the operator pastes into each provider's console, per callback kind.
CALLBACK_NAMES = {
    "aliyun_sms": {"report": "aliyun_report", "reply": "aliyun_reply"},
    "tencent_sms": {"status": "tencent_status", "reply": "tencent_reply"},
}


def callback_urls(account) -> dict[str, str]:
    """Absolute callback URLs of an SMS account (``{}`` for other providers), built on PUBLIC_URL."""
    names = CALLBACK_NAMES.get(account.provider, {})
    return {
        kind: settings.PUBLIC_URL + reverse(f"sms_callbacks:{name}", args=[account.callback_token])
        for kind, name in names.items()
    }
