from django.contrib import admin

from siyu.conversations.models import Message


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("sent_at", "customer", "staff", "direction", "msg_type", "text")
    raw_id_fields = ("customer", "staff")
    show_full_result_count = False
