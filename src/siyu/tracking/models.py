"""Behaviour that flows in: events (埋点) and orders. Amounts are integer fen."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from siyu.customers.models import Customer
from siyu.org.models import OrgUnit, Workspace


class Event(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="events", db_index=False)
    name = models.CharField(max_length=100)
    properties = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()
    source = models.CharField(max_length=32, blank=True, default="api")
    # A client-chosen id; a retried batch with the same id is not stored twice.
    event_id = models.CharField(max_length=100, null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "event_id"], condition=Q(event_id__isnull=False), name="event_client_id_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "-occurred_at"], name="event_customer_time"),
            models.Index(fields=["workspace", "name", "occurred_at"], name="event_name_time"),
        ]


class Order(models.Model):
    class Status(models.TextChoices):
        PAID = "paid", "已支付"
        REFUNDED = "refunded", "已退款"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="orders", db_index=False)
    order_no = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PAID)
    total_fen = models.BigIntegerField()
    discount_fen = models.BigIntegerField(default=0)
    paid_fen = models.BigIntegerField()
    refund_fen = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3, default="CNY")
    # [{"sku", "name", "category", "quantity", "price_fen"}]
    items = models.JSONField(default=list, blank=True)
    store = models.ForeignKey(OrgUnit, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    channel = models.CharField(max_length=32, blank=True, default="")
    paid_at = models.DateTimeField()
    refunded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "order_no"], name="order_no_unique")]
        indexes = [
            models.Index(fields=["customer", "-paid_at"], name="order_customer_time"),
            models.Index(fields=["workspace", "paid_at"], name="order_paid_at"),
        ]


class EventDaily(models.Model):
    """Per-customer event counters by local day (the workspace's time zone), maintained
    as events are ingested, so behavioural segment conditions never scan raw events."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+", db_index=False)
    name = models.CharField(max_length=100)
    day = models.DateField()
    count = models.IntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["customer", "name", "day"], name="event_daily_unique")]
        # Segment conditions ask "who did NAME between days": (workspace, name, day) then customer.
        # INCLUDE (count): a window scan reads the index alone, not one heap page per row (PostgreSQL).
        indexes = [
            models.Index(
                fields=["workspace", "name", "day", "customer"], include=["count"], name="event_daily_name_day"
            )
        ]


class OrderDaily(models.Model):
    """Per-customer paid orders by local day: count and net amount (paid minus refunds).

    Fully refunded orders do not count. Rebuilt for the touched customers whenever their
    orders change, because an order update (a refund) changes past days."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    orders = models.IntegerField()
    amount_fen = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["customer", "day"], name="order_daily_unique")]
        indexes = [
            models.Index(
                fields=["workspace", "day", "customer"], include=["orders", "amount_fen"], name="order_daily_day"
            )
        ]
