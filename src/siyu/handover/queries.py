"""Who may hand over whose customers, and the batches an actor sees."""

from __future__ import annotations

from django.db.models import QuerySet

from siyu.core.errors import InvalidInput, NotFound, PermissionDenied
from siyu.handover.models import HandoverBatch
from siyu.org.models import Role, Staff, Workspace
from siyu.org.rules import Scope

# HQ roles that run handovers; store managers run them inside their unit. Analysts and clerks
# do not: a handover moves customers between people.
HQ_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.OPERATOR, "api"})


def may_hand_over(scope: Scope) -> bool:
    if scope.kind == "all":
        return scope.role in HQ_ROLES or scope.can_admin
    return scope.kind == "units" and scope.role == Role.STORE_MANAGER


def staff_in_scope(workspace: Workspace, scope: Scope) -> QuerySet[Staff]:
    """Staff this actor may pick as handover or takeover (all of them for HQ, their unit's for
    a store manager)."""
    staff = Staff.objects.filter(workspace=workspace).select_related("org_unit")
    if scope.kind == "units":
        return staff.filter(org_unit__path__startswith=scope.unit_path)
    if scope.kind != "all":
        return staff.none()
    return staff


def check_staff(workspace: Workspace, scope: Scope, handover_id: int, takeover_ids: list[int]) -> None:
    """Refuse staff outside the actor's scope (named like unknown staff, field by field)."""
    if not may_hand_over(scope):
        raise PermissionDenied("无权转接客户 / you may not hand over customers")
    visible = set(
        staff_in_scope(workspace, scope).filter(pk__in=[handover_id, *takeover_ids]).values_list("pk", flat=True)
    )
    if handover_id not in visible:
        raise InvalidInput("员工不存在 / no such staff member", field="handover_staff_id")
    if any(t not in visible for t in takeover_ids):
        raise InvalidInput("员工不存在 / no such staff member", field="takeover_staff_ids")


def visible_batches(workspace: Workspace, scope: Scope) -> QuerySet[HandoverBatch]:
    batches = HandoverBatch.objects.filter(workspace=workspace)
    if scope.kind == "all":
        return batches
    if scope.kind == "units":
        return batches.filter(handover_staff__org_unit__path__startswith=scope.unit_path)
    return batches.none()


def access_batch(workspace: Workspace, scope: Scope, batch_id: int) -> HandoverBatch:
    batch = visible_batches(workspace, scope).filter(pk=batch_id).select_related("handover_staff").first()
    if batch is None:
        raise NotFound("转接批次不存在 / no such handover", field="batch_id")
    return batch
