"""API: segments (rules, preview, members, refresh) and segment tag rules."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import ConfigDict, Field

from siyu.api import scope_of
from siyu.core.errors import InvalidInput, NotFound
from siyu.core.limits import MAX_ID
from siyu.customers import queries as customer_queries
from siyu.segments import queries, services
from siyu.segments.models import Segment, SegmentTagRule
from siyu.segments.rules import __doc__ as RULE_FORMAT

router = Router(tags=["segments"])
RULE_HELP = (RULE_FORMAT or "").split("\n\n", 1)[-1]


def rule_errors(func):
    """Rule errors point into the request body: ``rule.match.conditions.1.count``."""

    @functools.wraps(func)
    def wrapped(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except InvalidInput as exc:
            if exc.field and (exc.field.startswith("match") or exc.field in ("version", "rule")):
                field = exc.field if exc.field == "rule" else f"rule.{exc.field}"
                raise InvalidInput(exc.message, field=field) from None
            raise

    return wrapped


class SegmentIn(Schema):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=100)
    description: str = Field(default="", max_length=500)
    rule: dict[str, Any] = Field(description=RULE_HELP)


class SegmentOut(Schema):
    id: int
    name: str
    description: str
    rule: dict[str, Any]
    revision: int
    member_count: int
    refreshed_at: dt.datetime | None
    archived: bool
    created_at: dt.datetime
    updated_at: dt.datetime


def segment_out(segment: Segment) -> dict[str, Any]:
    return {
        "id": segment.pk,
        "name": segment.name,
        "description": segment.description,
        "rule": segment.rule,
        "revision": segment.revision,
        "member_count": segment.member_count,
        "refreshed_at": segment.refreshed_at,
        "archived": segment.archived_at is not None,
        "created_at": segment.created_at,
        "updated_at": segment.updated_at,
    }


@router.get("/segments", response=list[SegmentOut])
def list_segments(request: HttpRequest, archived: bool = False):
    qs = Segment.objects.filter(workspace=request.workspace, archived_at__isnull=not archived).order_by("name")
    return [segment_out(s) for s in qs]


@router.post("/segments", response={201: SegmentOut})
@rule_errors
def create_segment(request: HttpRequest, body: SegmentIn):
    """Create a segment. Members are materialised by the next refresh (`POST /segments/refresh` or a worker)."""
    segment = services.save_segment(request.workspace, name=body.name, description=body.description, rule=body.rule)
    return 201, segment_out(segment)


class PreviewIn(Schema):
    model_config = ConfigDict(extra="forbid")
    rule: dict[str, Any] = Field(description=RULE_HELP)
    sample: int = Field(default=10, ge=0, le=50)


class PreviewOut(Schema):
    count: int
    sample: list[dict[str, Any]]


@router.post("/segments/preview", response=PreviewOut)
@rule_errors
def preview(request: HttpRequest, body: PreviewIn):
    """Count and a sample of the customers an unsaved rule selects right now."""
    scope = scope_of(request)
    rule = services.validate_rule(request.workspace, body.rule)
    result = queries.preview(request.workspace, scope, rule, sample=body.sample)
    return {"count": result.count, "sample": [customer_queries.customer_summary(scope, c) for c in result.sample]}


class MembersQuery(Schema):
    model_config = ConfigDict(extra="forbid")
    after: int | None = Field(default=None, ge=1, le=MAX_ID, description="`next_after` of the previous page")
    limit: int = Field(default=50, ge=1, le=200)


class MemberPage(Schema):
    items: list[dict[str, Any]]
    next_after: int | None


@router.get("/segments/{segment_id}/members", response=MemberPage)
def members(request: HttpRequest, segment_id: int, filters: Query[MembersQuery]):
    """Current members, newest customer first, keyset-paginated."""
    scope = scope_of(request)
    segment = queries.get_segment(request.workspace, _id(segment_id))
    items, next_after = queries.member_page(scope, segment, after=filters.after, limit=filters.limit)
    rows = [{**customer_queries.customer_summary(scope, c), "entered_at": at} for c, at in items]
    return {"items": rows, "next_after": next_after}


class RefreshOut(Schema):
    changed_customers: int
    entered: int
    exited: int
    seconds: float
    segments: list[dict[str, Any]]


@router.post("/segments/refresh", response=RefreshOut)
def refresh(request: HttpRequest, full: bool = False):
    """Refresh every segment now (workers also do this after ingestion)."""
    report = services.refresh_workspace(request.workspace, full=full)
    return {
        "changed_customers": report.changed_customers,
        "entered": report.entered,
        "exited": report.exited,
        "seconds": round(report.seconds, 3),
        "segments": [vars(s) for s in report.segments],
    }


class BulkTagIn(Schema):
    model_config = ConfigDict(extra="forbid")
    tag_id: int = Field(ge=1, le=MAX_ID)
    remove: bool = False


@router.post("/segments/{segment_id}/tags", response=dict[str, int])
def bulk_tag(request: HttpRequest, segment_id: int, body: BulkTagIn):
    """Tag (or, with `remove`, untag) every current member at once."""
    changed = services.bulk_tag(request.workspace, _id(segment_id), body.tag_id, remove=body.remove)
    return {"changed": changed}


class TagRuleIn(Schema):
    model_config = ConfigDict(extra="forbid")
    segment_id: int = Field(ge=1, le=MAX_ID)
    tag_id: int = Field(ge=1, le=MAX_ID)
    active: bool = True


class TagRuleOut(Schema):
    id: int
    segment_id: int
    tag_id: int
    active: bool


@router.get("/segment-tag-rules", response=list[TagRuleOut])
def list_tag_rules(request: HttpRequest):
    return [
        {"id": t.pk, "segment_id": t.segment_id, "tag_id": t.tag_id, "active": t.active}
        for t in SegmentTagRule.objects.filter(workspace=request.workspace).order_by("pk")
    ]


@router.post("/segment-tag-rules", response=TagRuleOut)
def save_tag_rule(request: HttpRequest, body: TagRuleIn):
    """Keep a tag equal to a segment's members (added on entry, removed on exit); `active: false` stops it."""
    rule = services.save_tag_rule(request.workspace, segment_id=body.segment_id, tag_id=body.tag_id, active=body.active)
    return {"id": rule.pk, "segment_id": rule.segment_id, "tag_id": rule.tag_id, "active": rule.active}


@router.post("/segments/validate", response=dict[str, Any])
@rule_errors
def validate(request: HttpRequest, body: PreviewIn):
    """Check a rule without running it; answers the normalised rule."""
    rule = services.validate_rule(request.workspace, body.rule)
    return rule.model_dump(mode="json", by_alias=True, exclude_defaults=True) | {"version": 1}


# After the fixed paths (preview, refresh, validate): ninja matches routes in order.
@router.get("/segments/{segment_id}", response=SegmentOut)
def get_segment(request: HttpRequest, segment_id: int):
    return segment_out(queries.get_segment(request.workspace, _id(segment_id)))


@router.put("/segments/{segment_id}", response=SegmentOut)
@rule_errors
def update_segment(request: HttpRequest, segment_id: int, body: SegmentIn):
    """Change a segment; a changed rule rebuilds its membership on the next refresh."""
    segment = services.save_segment(
        request.workspace,
        name=body.name,
        description=body.description,
        rule=body.rule,
        segment_id=_id(segment_id),
    )
    return segment_out(segment)


@router.delete("/segments/{segment_id}", response={204: None})
def archive_segment(request: HttpRequest, segment_id: int):
    """Archive: no longer refreshed; membership history is kept."""
    services.archive_segment(request.workspace, _id(segment_id))
    return 204, None


def _id(value: int) -> int:
    if not 1 <= value <= MAX_ID:
        raise NotFound("no segment with this id", field="segment_id")
    return value
