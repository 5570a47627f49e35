"""Scoped reads of risk alerts: HQ sees every alert, a store manager the alerts on staff of
their org unit subtree, a store clerk none (the risk page is not theirs)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from siyu.conversations.models import RiskAlert
from siyu.core.errors import NotFound
from siyu.core.limits import valid_id
from siyu.org.rules import Scope


def can_see_risk(scope: Scope) -> bool:
    return scope.kind == "all" or (scope.kind == "units" and bool(scope.unit_path))


def alerts_for(scope: Scope) -> QuerySet[RiskAlert]:
    qs = RiskAlert.objects.filter(workspace_id=scope.workspace_id)
    if scope.kind == "all":
        return qs
    if scope.kind == "units" and scope.unit_path:
        return qs.filter(staff__org_unit__path__startswith=scope.unit_path)
    return qs.none()


@dataclass(frozen=True)
class AlertPage:
    items: list[RiskAlert]
    next_after: int | None


def list_alerts(scope: Scope, *, status: str | None = "open", after: int | None = None, limit: int = 50) -> AlertPage:
    """Newest first; keyset paging on id (``after`` = the previous page's ``next_after``)."""
    qs = alerts_for(scope).select_related("rule", "message", "staff__org_unit", "customer", "handled_by")
    if status:
        qs = qs.filter(status=status)
    if after is not None:
        qs = qs.filter(pk__lt=after)
    items = list(qs.order_by("-pk")[: limit + 1])
    more = len(items) > limit
    items = items[:limit]
    return AlertPage(items, items[-1].pk if more else None)


def access_alert(scope: Scope, alert_id: int) -> RiskAlert:
    """The alert if the actor may see it; otherwise NotFound, exactly as if it did not exist."""
    alert = alerts_for(scope).filter(pk=alert_id).first() if valid_id(alert_id) else None
    if alert is None:
        raise NotFound("risk alert not found", field="alert_id")
    return alert


def alert_as_dict(alert: RiskAlert) -> dict:
    staff = alert.staff
    return {
        "id": alert.pk,
        "rule": {"id": alert.rule_id, "name": alert.rule.name, "category": alert.rule.category},
        "message": {"id": alert.message_id, "text": alert.message.text, "sent_at": alert.message.sent_at},
        "staff": {"id": staff.pk, "name": staff.name, "store": staff.org_unit.name} if staff else None,
        "customer_id": alert.customer_id,
        "matched_words": alert.matched_words,
        "status": alert.status,
        "created_at": alert.created_at,
        "handled_at": alert.handled_at,
    }
