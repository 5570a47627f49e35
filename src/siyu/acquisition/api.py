"""API: channel codes (渠道活码) — CRUD with their staff, pause/resume/archive, rebalance, QR and
poster downloads, and the per-code report."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema, Status
from pydantic import ConfigDict, Field

from siyu.acquisition import images, queries, services
from siyu.acquisition.models import ChannelCode
from siyu.api import scope_of
from siyu.core.errors import NotFound
from siyu.core.limits import MAX_ID

router = Router(tags=["acquisition"])


class StaffEntryIn(Schema):
    model_config = ConfigDict(extra="forbid")
    staff_id: int = Field(ge=1, le=MAX_ID)
    daily_cap: int = Field(default=0, ge=0, le=100_000, description="adds per local day; 0 = no cap")
    is_backup: bool = False
    schedule: dict[str, Any] | None = Field(
        default=None, description='{"weekdays": [1..7], "ranges": [["09:00", "18:00"]]} in the workspace time zone'
    )


class CodeIn(Schema):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=100)
    kind: str = Field(description="staff | rotating | store | oa_qr")
    state: str = Field(default="", max_length=30, description="empty: generated as c<base36 id>")
    staff: list[StaffEntryIn] = Field(default_factory=list, max_length=100)
    tag_ids: list[int] = Field(default_factory=list, max_length=50)
    welcome_text: str = Field(default="", max_length=4000)
    welcome_attachments: list[dict[str, Any]] = Field(default_factory=list, max_length=9)
    group_qr_material_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    store_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    cost_fen: int = Field(default=0, ge=0)
    skip_verify: bool = True


class StaffEntryOut(Schema):
    staff_id: int
    name: str
    wecom_userid: str
    daily_cap: int
    is_backup: bool
    schedule: dict[str, Any]


class CodeOut(Schema):
    id: int
    name: str
    kind: str
    state: str
    status: str
    staff: list[StaffEntryOut]
    tag_ids: list[int]
    welcome_text: str
    welcome_attachments: list[dict[str, Any]]
    group_qr_material_id: int | None
    store_id: int | None
    cost_fen: int
    skip_verify: bool
    config_id: str
    qr_code: str
    current_userids: list[str]
    rotation_note: str
    synced: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class ReportRow(Schema):
    code_id: int
    name: str
    kind: str
    status: str
    adds: int
    customers: int
    retention_7d: float | None
    retention_30d: float | None
    cost_fen: int
    cost_per_customer_fen: int | None
    conversion: float | None


class ReportQuery(Schema):
    model_config = ConfigDict(extra="forbid")
    start: dt.datetime | None = Field(default=None, description="adds at or after (ISO 8601)")
    end: dt.datetime | None = Field(default=None, description="adds before (ISO 8601)")


class RebalanceOut(Schema):
    checked: int
    calls: int
    changed: list[int]
    unavailable: dict[int, str]
    errors: dict[int, str]


class PosterQuery(Schema):
    model_config = ConfigDict(extra="forbid")
    background: str = Field(default="", pattern=r"^(#[0-9A-Fa-f]{6})?$")
    background_material_id: int | None = Field(default=None, ge=1, le=MAX_ID)


def code_out(code: ChannelCode) -> dict[str, Any]:
    entries = code.staff_entries.select_related("staff")
    return {
        **{f: getattr(code, f) for f in ("id", "name", "kind", "state", "status", "welcome_text", "cost_fen")},
        **{f: getattr(code, f) for f in ("skip_verify", "config_id", "qr_code", "rotation_note")},
        "staff": [
            {
                "staff_id": e.staff_id,
                "name": e.staff.name,
                "wecom_userid": e.staff.wecom_userid or "",
                "daily_cap": e.daily_cap,
                "is_backup": e.is_backup,
                "schedule": e.schedule or {},
            }
            for e in entries
        ],
        "tag_ids": sorted(code.tags.values_list("pk", flat=True)),
        "welcome_attachments": code.welcome_attachments or [],
        "group_qr_material_id": code.group_qr_material_id,
        "store_id": code.store_id,
        "current_userids": code.current_userids or [],
        "synced": bool(code.config_id),
        "created_at": code.created_at,
        "updated_at": code.updated_at,
    }


def _input(body: CodeIn) -> services.CodeInput:
    data = body.model_dump()
    data["staff"] = [services.StaffEntryInput(**s) for s in data["staff"]]
    return services.CodeInput(**data)


def _code(request: HttpRequest, code_id: int) -> ChannelCode:
    if not 1 <= code_id <= MAX_ID:
        raise NotFound("活码不存在 / no such channel code", field="code_id")
    return queries.access_code(request.workspace, scope_of(request), code_id)


@router.get("/channel-codes", response=list[CodeOut])
def list_codes(request: HttpRequest, status: str | None = None):
    """Every code of the workspace, newest first (filter by `status`: active, paused, archived)."""
    codes = ChannelCode.objects.filter(workspace=request.workspace).order_by("-id")
    if status:
        codes = codes.filter(status=status)
    return [code_out(c) for c in codes.prefetch_related("tags")[:500]]


@router.post("/channel-codes", response={201: CodeOut})
def create_code(request: HttpRequest, body: CodeIn):
    """Create a code; with WeCom configured its 「联系我」 contact way is made at once (an OA code
    gets a permanent `QR_LIMIT_STR_SCENE` QR). WeCom refusals answer 422 with the fix."""
    return Status(201, code_out(services.create_code(request.workspace, _input(body))))


@router.get("/channel-codes/report", response=list[ReportRow])
def code_report(request: HttpRequest, filters: Query[ReportQuery]):
    """Per code: adds and unique customers in the range, retention after 7 and 30 days, cost per
    acquired customer (cost over every customer the code ever brought), paid conversion."""
    figures = queries.report(request.workspace, start=filters.start, end=filters.end)
    codes = ChannelCode.objects.filter(workspace=request.workspace).order_by("-id")
    return [report_row(c, figures[c.pk]) for c in codes if c.pk in figures]


def report_row(code: ChannelCode, figures: queries.CodeReport) -> dict[str, Any]:
    return {
        "code_id": code.pk,
        "name": code.name,
        "kind": code.kind,
        "status": code.status,
        "adds": figures.adds,
        "customers": figures.customers,
        "retention_7d": figures.retention(7),
        "retention_30d": figures.retention(30),
        "cost_fen": figures.cost_fen,
        "cost_per_customer_fen": figures.cost_per_customer_fen,
        "conversion": figures.conversion,
    }


@router.get("/channel-codes/{code_id}", response=CodeOut)
def get_code(request: HttpRequest, code_id: int):
    return code_out(_code(request, code_id))


@router.put("/channel-codes/{code_id}", response=CodeOut)
def update_code(request: HttpRequest, code_id: int, body: CodeIn):
    """Change a code (not its kind or state); the contact way gets the new staff list."""
    code = _code(request, code_id)
    return code_out(services.update_code(request.workspace, code.pk, _input(body)))


@router.post("/channel-codes/{code_id}/pause", response=CodeOut)
def pause_code(request: HttpRequest, code_id: int):
    """Delete the WeCom contact way (printed QRs stop adding); resume makes a new QR."""
    return code_out(services.pause_code(request.workspace, _code(request, code_id).pk))


@router.post("/channel-codes/{code_id}/resume", response=CodeOut)
def resume_code(request: HttpRequest, code_id: int):
    return code_out(services.resume_code(request.workspace, _code(request, code_id).pk))


@router.delete("/channel-codes/{code_id}", response={204: None})
def archive_code(request: HttpRequest, code_id: int):
    services.archive_code(request.workspace, _code(request, code_id).pk)
    return Status(204, None)


@router.post("/channel-codes/{code_id}/rebalance", response=RebalanceOut)
def rebalance_code(request: HttpRequest, code_id: int):
    """Recompute who is on this rotating code now; WeCom is called only if the list changed."""
    report = services.rebalance(request.workspace, code_ids=[_code(request, code_id).pk])
    return {
        "checked": report.checked,
        "calls": report.calls,
        "changed": report.changed,
        "unavailable": report.unavailable,
        "errors": report.errors,
    }


def _download(data: bytes, content_type: str, name: str) -> HttpResponse:
    response = HttpResponse(data, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@router.get("/channel-codes/{code_id}/qr.png")
def qr_png(request: HttpRequest, code_id: int):
    code = _code(request, code_id)
    return _download(images.qr_png(services.qr_content(code)), "image/png", f"{code.state}.png")


@router.get("/channel-codes/{code_id}/qr.svg")
def qr_svg(request: HttpRequest, code_id: int):
    code = _code(request, code_id)
    return _download(images.qr_svg(services.qr_content(code)), "image/svg+xml", f"{code.state}.svg")


@router.get("/channel-codes/{code_id}/poster.png")
def poster_png(request: HttpRequest, code_id: int, options: Query[PosterQuery]):
    code = _code(request, code_id)
    data = services.poster_for(
        request.workspace,
        code,
        background=options.background,
        background_material_id=options.background_material_id,
    )
    return _download(data, "image/png", f"{code.state}-poster.png")
