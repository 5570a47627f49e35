from django.apps import AppConfig


class AcquisitionConfig(AppConfig):
    name = "siyu.acquisition"
    label = "acquisition"
    verbose_name = "获客（渠道活码）"
