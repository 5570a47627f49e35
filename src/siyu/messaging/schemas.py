"""API shapes of messages (the outbox) and broadcasts."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import ConfigDict, Field, model_validator

from siyu.core.apischemas import BatchIn
from siyu.core.limits import MAX_ID
from siyu.messaging.models import Broadcast, OutboundMessage

# Per-message values a template may use beyond the customer's own fields.
MESSAGE_VARIABLES = ("coupon_code",)
MessageState = Literal[
    "queued", "held", "sending", "sent", "delivered", "failed", "bounced", "suppressed", "unknown", "holdout"
]


class OutboundItem(Schema):
    """One message to one customer: inline `body` (a template) or a saved `template_id`."""

    model_config = ConfigDict(extra="forbid")
    customer_id: int = Field(ge=1, le=MAX_ID)
    idempotency_key: str = Field(
        min_length=1, max_length=200, description="unique per workspace: a repeat is a duplicate and is not sent again"
    )
    body: str | None = Field(default=None, description="Jinja template, e.g. '{{ customer.name }}您好…'")
    template_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    subject: str | None = Field(default=None, max_length=200, description="email subject (a template too)")
    variables: dict[str, str] = Field(
        default_factory=dict, description=f"per-message values: {', '.join(MESSAGE_VARIABLES)}"
    )

    @model_validator(mode="after")
    def _one_source(self) -> OutboundItem:
        if (self.body is None) == (self.template_id is None):
            raise ValueError("give exactly one of body or template_id")
        unknown = sorted(set(self.variables) - set(MESSAGE_VARIABLES))
        if unknown:
            raise ValueError(f"unknown variables {', '.join(unknown)} (allowed: {', '.join(MESSAGE_VARIABLES)})")
        if any(len(v) > 64 for v in self.variables.values()):
            raise ValueError("a variable holds at most 64 characters")
        return self


class MessagesIn(BatchIn):
    account_id: int = Field(ge=1, le=MAX_ID, description="the channel account to send through")
    purpose: Literal["marketing", "service"] = Field(
        description="service (transactional) messages pass opt-out, quiet hours and caps; marketing does not"
    )
    quiet_policy: Literal["hold", "skip"] = Field(
        default="hold", description="marketing outside the window: hold until it opens, or skip"
    )


class MessageQuery(Schema):
    model_config = ConfigDict(extra="forbid")
    customer_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    state: MessageState | None = None
    broadcast_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    after: int | None = Field(default=None, ge=1, le=MAX_ID, description="`next_after` of the previous page")
    limit: int = Field(default=50, ge=1, le=200)


class MessageOut(Schema):
    id: int
    customer_id: int | None
    account_id: int
    medium: str
    purpose: str
    idempotency_key: str
    broadcast_id: int | None
    variant_id: int | None
    state: str
    reason: str = Field(description="why a message was suppressed or held, e.g. opted_out, quiet_hours, cap_day")
    to_address: str
    subject: str
    body: str = Field(description="the rendered text once dispatched; empty while queued")
    provider_ref: str
    error_code: str
    error_message: str
    attempts: int
    not_before: dt.datetime | None
    created_at: dt.datetime
    sent_at: dt.datetime | None
    delivered_at: dt.datetime | None
    clicked_at: dt.datetime | None
    updated_at: dt.datetime


MESSAGE_FIELDS = [name for name in MessageOut.model_fields]


def message_out(message: OutboundMessage) -> dict[str, Any]:
    return {name: getattr(message, name) for name in MESSAGE_FIELDS}


class MessagePage(Schema):
    items: list[MessageOut]
    next_after: int | None


class VariantSchema(Schema):
    model_config = ConfigDict(extra="forbid")
    label: str = Field(max_length=16, description="e.g. A, B")
    weight: int = Field(default=1, ge=1, le=100, description="share of the treated audience, relative to the others")
    template_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="copy the text of a saved template")
    subject: str = Field(default="", max_length=200)
    body: str = ""
    provider_template: str = Field(default="", max_length=64)
    provider_params: dict[str, str] = Field(default_factory=dict)


TagId = Annotated[int, Field(ge=1, le=MAX_ID)]


class BroadcastIn(Schema):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=100)
    account_id: int = Field(ge=1, le=MAX_ID)
    segment_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="audience: a segment's members …")
    tags_any: list[TagId] = Field(default_factory=list, max_length=50, description="… and/or anyone with one of these")
    tags_all: list[TagId] = Field(default_factory=list, max_length=50, description="… and everyone with all of these")
    purpose: Literal["marketing", "service"] = "marketing"
    quiet_policy: Literal["hold", "skip"] = "hold"
    holdout_percent: float = Field(default=0, description="0-50: members deliberately not sent, to measure lift")
    scheduled_at: dt.datetime | None = Field(default=None, description="send later; with a time zone offset")
    coupon_code: str = Field(default="", max_length=64)
    conversion_days: int = Field(default=7, description="an order within this many days of the start converts")
    variants: list[VariantSchema] = Field(max_length=20)


class VariantOut(Schema):
    id: int
    label: str
    weight: int
    template_id: int | None
    subject: str
    body: str
    provider_template: str
    provider_params: dict[str, str]


class BroadcastOut(Schema):
    id: int
    name: str
    status: str
    account_id: int
    segment_id: int | None
    tags_any: list[int]
    tags_all: list[int]
    purpose: str
    quiet_policy: str
    holdout_percent: float
    coupon_code: str
    conversion_days: int
    scheduled_at: dt.datetime | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    audience_size: int | None
    variants: list[VariantOut]
    counts: dict[str, int] | None = Field(default=None, description="outbox messages by state (detail only)")
    created_at: dt.datetime
    updated_at: dt.datetime


class BroadcastPage(Schema):
    items: list[BroadcastOut]
    next_after: int | None


class BroadcastQuery(Schema):
    model_config = ConfigDict(extra="forbid")
    status: Literal["draft", "scheduled", "sending", "sent", "cancelled"] | None = None
    after: int | None = Field(default=None, ge=1, le=MAX_ID, description="`next_after` of the previous page")
    limit: int = Field(default=50, ge=1, le=200)


def broadcast_out(broadcast: Broadcast, counts: dict[str, int] | None = None) -> dict[str, Any]:
    return {
        "id": broadcast.pk,
        "name": broadcast.name,
        "status": broadcast.status,
        "account_id": broadcast.account_id,
        "segment_id": broadcast.segment_id,
        "tags_any": broadcast.tags_any,
        "tags_all": broadcast.tags_all,
        "purpose": broadcast.purpose,
        "quiet_policy": broadcast.quiet_policy,
        "holdout_percent": broadcast.holdout_bp / 100,
        "coupon_code": broadcast.coupon_code,
        "conversion_days": broadcast.conversion_days,
        "scheduled_at": broadcast.scheduled_at,
        "started_at": broadcast.started_at,
        "finished_at": broadcast.finished_at,
        "audience_size": broadcast.audience_size,
        "variants": [
            {
                "id": v.pk,
                "label": v.label,
                "weight": v.weight,
                "template_id": v.template_id,
                "subject": v.subject,
                "body": v.body,
                "provider_template": v.provider_template,
                "provider_params": v.provider_params,
            }
            # Sorted in Python so a prefetched list is used as is (no query per broadcast).
            for v in sorted(broadcast.variants.all(), key=lambda v: v.pk)
        ],
        "counts": counts,
        "created_at": broadcast.created_at,
        "updated_at": broadcast.updated_at,
    }


class BroadcastPreviewOut(Schema):
    audience: int
    holdout: int
    would_send: int
    held_for_window: int = Field(description="marketing outside the window, held until it opens")
    window_opens_at: dt.datetime | None
    suppressed: dict[str, int] = Field(description="what the gate would stop now, by reason")
    suppressed_total: int


class CancelOut(Schema):
    stopped: int = Field(description="messages not yet sent, now suppressed as cancelled")
    broadcast: BroadcastOut
