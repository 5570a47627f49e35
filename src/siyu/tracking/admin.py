from django.contrib import admin

from siyu.tracking.models import Event, Order


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("occurred_at", "name", "customer", "source", "event_id")
    raw_id_fields = ("customer",)
    show_full_result_count = False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("order_no", "customer", "status", "paid_fen", "channel", "paid_at")
    list_filter = ("status", "channel")
    search_fields = ("=order_no",)
    raw_id_fields = ("customer", "store")
    show_full_result_count = False
