from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "siyu.conversations"
    label = "conversations"
