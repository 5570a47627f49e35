from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "siyu.tracking"
    label = "tracking"
