from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "siyu.segments"
    label = "segments"
