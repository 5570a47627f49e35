"""API: events and orders in batches."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from siyu.core.apischemas import BatchIn, BatchOut, batch_answer, check_batch_size, item_schema_extra
from siyu.segments.tasks import request_refresh
from siyu.tracking.schemas import EventItem, OrderItem
from siyu.tracking.services import ingest_events, ingest_orders

router = Router(tags=["events & orders"])


@router.post("/events/batch", response=BatchOut, openapi_extra=item_schema_extra(EventItem))
def events_batch(request: HttpRequest, body: BatchIn):
    """Store up to 1,000 events. An `event_id` already stored counts as a duplicate, not a new event."""
    check_batch_size(body)
    result = ingest_events(request.workspace, body.items, source="api")
    request_refresh(request.workspace.pk)
    return batch_answer(result, with_ids=False)


@router.post("/orders/batch", response=BatchOut, openapi_extra=item_schema_extra(OrderItem))
def orders_batch(request: HttpRequest, body: BatchIn):
    """Upsert up to 1,000 orders by `order_no`: a known number updates that order (counted in `duplicates`)."""
    check_batch_size(body)
    result = ingest_orders(request.workspace, body.items, source="api")
    request_refresh(request.workspace.pk)
    return batch_answer(result, with_ids=False)
