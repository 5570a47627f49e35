"""API: archived messages in batches, risk rules, and the alerts they raise."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from pydantic import ConfigDict, Field

from siyu.api import scope_of
from siyu.conversations import queries, services
from siyu.conversations.models import RiskRule
from siyu.conversations.schemas import MessageItem, RiskRuleIn
from siyu.core.apischemas import BatchIn, BatchOut, batch_answer, check_batch_size, item_schema_extra
from siyu.core.limits import MAX_ID
from siyu.segments.tasks import request_refresh

router = Router(tags=["messages & risk control"])


@router.post("/messages/batch", response=BatchOut, openapi_extra=item_schema_extra(MessageItem))
def messages_batch(request: HttpRequest, body: BatchIn):
    """Store up to 1,000 archived messages. An `external_msgid` already stored counts as a duplicate.
    Customer text runs through the keyword rules, staff text through the risk rules. `ids[i]` is the message id."""
    check_batch_size(body)
    result = services.ingest_messages(request.workspace, body.items, source="api")
    request_refresh(request.workspace.pk)
    return batch_answer(result, with_ids=True)


def risk_rule_dict(rule: RiskRule) -> dict[str, Any]:
    return {
        "id": rule.pk,
        "name": rule.name,
        "category": rule.category,
        "words": rule.words,
        "active": rule.active,
        "created_at": rule.created_at,
        "updated_at": rule.updated_at,
    }


@router.get("/risk-rules", response=list[dict[str, Any]])
def list_risk_rules(request: HttpRequest):
    return [risk_rule_dict(r) for r in RiskRule.objects.filter(workspace=request.workspace).order_by("pk")]


@router.post("/risk-rules", response={201: dict[str, Any]})
def create_risk_rule(request: HttpRequest, payload: RiskRuleIn):
    return Status(201, risk_rule_dict(services.create_risk_rule(request.workspace, payload.model_dump())))


@router.get("/risk-rules/{rule_id}", response=dict[str, Any])
def get_risk_rule(request: HttpRequest, rule_id: int):
    return risk_rule_dict(services.get_risk_rule(request.workspace, rule_id))


@router.put("/risk-rules/{rule_id}", response=dict[str, Any])
def update_risk_rule(request: HttpRequest, rule_id: int, payload: RiskRuleIn):
    return risk_rule_dict(services.update_risk_rule(request.workspace, rule_id, payload.model_dump()))


@router.delete("/risk-rules/{rule_id}", response={204: None})
def delete_risk_rule(request: HttpRequest, rule_id: int):
    """Delete the rule and the alerts it raised."""
    services.delete_risk_rule(request.workspace, rule_id)
    return Status(204, None)


class AlertFilters(Schema):
    model_config = ConfigDict(extra="forbid")
    status: str | None = Field(default="open", pattern="^(open|handled)$")
    after: int | None = Field(default=None, ge=1, le=MAX_ID, description="keyset cursor: `next_after` of the last page")
    limit: int = Field(default=50, ge=1, le=200)


class AlertPage(Schema):
    items: list[dict[str, Any]]
    next_after: int | None


@router.get("/risk-alerts", response=AlertPage)
def list_risk_alerts(request: HttpRequest, filters: Query[AlertFilters]):
    """Alerts newest first (open ones by default)."""
    page = queries.list_alerts(scope_of(request), status=filters.status, after=filters.after, limit=filters.limit)
    return {"items": [queries.alert_as_dict(a) for a in page.items], "next_after": page.next_after}


@router.post("/risk-alerts/{alert_id}/handle", response=dict[str, Any])
def handle_risk_alert(request: HttpRequest, alert_id: int):
    """Mark an alert handled (idempotent)."""
    alert = queries.access_alert(scope_of(request), alert_id)
    services.handle_alert(request.workspace, alert)
    return queries.alert_as_dict(queries.access_alert(scope_of(request), alert_id))
