"""Callback URLs, included under ``callbacks/``: the addresses operators paste into WeCom and
the Official Account console."""

from django.urls import path

from siyu.wecom import views

urlpatterns = [
    path("wecom/<slug:slug>/", views.wecom_callback, name="wecom-callback"),
    path("oa/<slug:slug>/", views.oa_callback, name="oa-callback"),
]
