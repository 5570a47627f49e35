"""API: staff turnover (客户继承) — preview with ``dry_run``, start, list and follow handovers."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from pydantic import ConfigDict, Field

from siyu.api import scope_of
from siyu.core.errors import NotFound
from siyu.core.limits import MAX_ID
from siyu.handover import queries, rules, services
from siyu.handover.models import HandoverBatch, HandoverTransfer

router = Router(tags=["handover"])


class HandoverIn(Schema):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(description="on_job (在职转接) | resigned (离职继承)")
    handover_staff_id: int = Field(ge=1, le=MAX_ID)
    takeover_staff_ids: list[int] = Field(min_length=1, max_length=rules.MAX_TAKEOVERS)
    transfer_success_msg: str = Field(default="", max_length=rules.MESSAGE_MAX)
    dry_run: bool = Field(default=False, description="only preview: nothing is written or sent")


class BlockedOut(Schema):
    customer_id: int
    name: str
    external_userid: str
    reason: str
    next_allowed_at: dt.datetime | None


class PreviewOut(Schema):
    dry_run: bool
    kind: str
    handover_staff_id: int
    takeover_staff_ids: list[int]
    movable: int
    per_takeover: dict[int, int]
    blocked_counts: dict[str, int]
    blocked: list[BlockedOut]


class TransferOut(Schema):
    customer_id: int
    external_userid: str
    takeover_staff_id: int | None
    status: str
    errcode: int | None
    requested_at: dt.datetime | None
    takeover_at: dt.datetime | None
    finished_at: dt.datetime | None


class BatchOut(Schema):
    id: int
    kind: str
    status: str
    handover_staff_id: int
    takeover_staff_ids: list[int]
    transfer_success_msg: str
    total: int
    counts: dict[str, int]
    last_error: str
    created_at: dt.datetime
    updated_at: dt.datetime


class BatchDetailOut(BatchOut):
    transfers: list[TransferOut]


class TransferQuery(Schema):
    model_config = ConfigDict(extra="forbid")
    status: str | None = Field(default=None, description="only transfers in this status")


def preview_out(plan: services.Plan) -> dict[str, Any]:
    return {
        "dry_run": True,
        "kind": plan.kind,
        "handover_staff_id": plan.handover_staff_id,
        "takeover_staff_ids": list(plan.takeover_staff_ids),
        "movable": plan.movable,
        "per_takeover": plan.per_takeover,
        "blocked_counts": plan.blocked_counts,
        "blocked": [b.__dict__ for b in plan.blocked[: services.PREVIEW_LIST]],
    }


def batch_out(batch: HandoverBatch) -> dict[str, Any]:
    return {
        **{f: getattr(batch, f) for f in ("id", "kind", "status", "handover_staff_id", "transfer_success_msg")},
        **{f: getattr(batch, f) for f in ("total", "last_error", "created_at", "updated_at")},
        "counts": batch.counts or {},
        "takeover_staff_ids": sorted(s.pk for s in batch.takeover_staff.all()),  # uses the prefetch
    }


@router.post("/handovers", response={200: PreviewOut, 201: BatchOut})
def create_handover(request: HttpRequest, body: HandoverIn):
    """Hand a staff member's WeCom customers to one or more colleagues (shared evenly).

    With `dry_run` the answer (200) is the preview: how many move to whom, and the customers
    that cannot move with the reason (`limit`: transferred twice in 90 days, with
    `next_allowed_at`; `in_progress`; `no_external_userid`). Otherwise (201) the handover
    starts: WeCom is asked at once (a large handover by a background task: `counts.planned` falls as
    it is sent), and results arrive as WeCom reports them (poll the detail).
    """
    scope = scope_of(request)
    queries.check_staff(request.workspace, scope, body.handover_staff_id, body.takeover_staff_ids)
    fields = body.model_dump(exclude={"dry_run"})
    if body.dry_run:
        return Status(200, preview_out(services.preview(request.workspace, **fields)))
    batch = services.start_handover(request.workspace, api_key=request.api_key, **fields)
    return Status(201, batch_out(batch))


@router.get("/handovers", response=list[BatchOut])
def list_handovers(request: HttpRequest):
    """The workspace's handovers, newest first (up to 200)."""
    batches = queries.visible_batches(request.workspace, scope_of(request)).order_by("-id")[:200]
    return [batch_out(b) for b in batches.prefetch_related("takeover_staff")]


@router.get("/handovers/{batch_id}", response=BatchDetailOut)
def get_handover(request: HttpRequest, batch_id: int, filters: Query[TransferQuery]):
    """A handover with its counts and its transfers (up to 5,000, by customer)."""
    if not 1 <= batch_id <= MAX_ID:
        raise NotFound("转接批次不存在 / no such handover", field="batch_id")
    batch = queries.access_batch(request.workspace, scope_of(request), batch_id)
    rows = HandoverTransfer.objects.filter(batch=batch).order_by("customer_id")
    if filters.status:
        rows = rows.filter(status=filters.status)
    transfers = rows.values(*TransferOut.model_fields)[:5000]
    return {**batch_out(batch), "transfers": list(transfers)}
