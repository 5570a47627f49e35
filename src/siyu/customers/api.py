"""API: customers (batch upsert, identify, list, profile, timeline)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema
from ninja.errors import HttpError
from pydantic import ConfigDict, Field

from siyu.api import scope_of
from siyu.core.apischemas import BatchIn, BatchOut, batch_answer, check_batch_size, item_schema_extra
from siyu.core.limits import MAX_ID
from siyu.customers import queries
from siyu.customers.schemas import CustomerItem, IdentifyRequest
from siyu.customers.services import link_identities, upsert_customers
from siyu.segments.tasks import request_refresh

router = Router(tags=["customers"])


@router.post("/customers/batch", response=BatchOut, openapi_extra=item_schema_extra(CustomerItem))
def customers_batch(request: HttpRequest, body: BatchIn):
    """Upsert up to 1,000 customers by their identities. `ids[i]` is the customer item i landed on."""
    check_batch_size(body)
    result = upsert_customers(request.workspace, body.items, source="api")
    request_refresh(request.workspace.pk)
    return batch_answer(result, with_ids=True)


class IdentifyOut(Schema):
    customer_id: int
    merged_ids: list[int]
    conflicts: list[int]


@router.post("/identify", response=IdentifyOut)
def identify(request: HttpRequest, body: IdentifyRequest):
    """These identities are one person: merge the profiles that hold them (or record a conflict
    when two profiles hold different values of a one-per-person identity type)."""
    answer = link_identities(request.workspace, body.model_dump(), source="api")
    request_refresh(request.workspace.pk)
    return answer


class ListFilters(Schema):
    model_config = ConfigDict(extra="forbid")
    q: str | None = Field(default=None, max_length=100, description="name prefix, phone, email or any identity value")
    tag: int | None = Field(default=None, ge=1, le=MAX_ID)
    store: int | None = Field(default=None, ge=1, le=MAX_ID)
    staff: int | None = Field(default=None, ge=1, le=MAX_ID)
    channel: str | None = Field(default=None, max_length=32)
    after: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="keyset cursor: `next_after` of the previous page"
    )
    limit: int = Field(default=50, ge=1, le=200)


class CustomerRow(Schema):
    id: int
    name: str
    gender: str
    city: str
    source_channel: str
    store: dict[str, Any] | None
    owner_staff: dict[str, Any] | None
    first_seen_at: dt.datetime | None
    last_seen_at: dt.datetime | None


class CustomerPage(Schema):
    items: list[CustomerRow]
    next_after: int | None


@router.get("/customers", response=CustomerPage)
def list_customers(request: HttpRequest, filters: Query[ListFilters]):
    scope = scope_of(request)
    page = queries.list_customers(
        scope,
        q=filters.q,
        tag_id=filters.tag,
        store_id=filters.store,
        staff_id=filters.staff,
        channel=filters.channel,
        after=filters.after,
        limit=filters.limit,
    )
    return {"items": [queries.customer_summary(scope, c) for c in page.items], "next_after": page.next_after}


@router.get("/customers/{customer_id}", response=dict[str, Any])
def customer_detail(request: HttpRequest, customer_id: int):
    """The profile: identities, tags, WeCom relations, order summary. A merged id answers with its survivor."""
    scope = scope_of(request)
    return queries.customer_profile(scope, queries.get_customer(scope, customer_id))


class TimelineEntry(Schema):
    kind: str
    at: dt.datetime
    title: str
    detail: dict[str, Any]


class TimelineFilters(Schema):
    model_config = ConfigDict(extra="forbid")
    before: dt.datetime | None = None
    limit: int = Field(default=50, ge=1, le=200)


@router.get("/customers/{customer_id}/timeline", response=list[TimelineEntry])
def customer_timeline(request: HttpRequest, customer_id: int, filters: Query[TimelineFilters]):
    """Events, orders and messages, newest first; page with `before` = the last entry's `at`."""
    scope = scope_of(request)
    if filters.before is not None and filters.before.tzinfo is None:
        raise HttpError(422, "before needs a time zone offset, e.g. 2026-11-23T10:00:00+08:00")
    return queries.timeline(scope, queries.get_customer(scope, customer_id), before=filters.before, limit=filters.limit)
