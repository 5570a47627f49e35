from django.apps import AppConfig


class HandoverConfig(AppConfig):
    name = "siyu.handover"
    label = "handover"
    verbose_name = "客户继承 / Staff turnover"
