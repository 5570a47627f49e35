"""Reads for the staff workbench: whose tasks a viewer may see, today's list, a day's report."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.db.models import Count, Q

from siyu.content.models import Material
from siyu.core import clock
from siyu.org.models import Membership, Role, Staff, Workspace
from siyu.org.rules import Scope
from siyu.workbench.models import StaffTask

KIND_ORDER = [StaffTask.Kind.GROUP_MESSAGE, StaffTask.Kind.MOMENT, StaffTask.Kind.FOLLOW_UP, StaffTask.Kind.OTHER]
RECENT_DONE = 20


def today(workspace: Workspace) -> dt.date:
    return clock.now().astimezone(ZoneInfo(workspace.time_zone)).date()


def own_staff(memberships: tuple[Membership, ...], workspace: Workspace) -> Staff | None:
    """The staff record the signed-in user is (their membership in this workspace)."""
    membership = next((m for m in memberships if m.workspace_id == workspace.pk), None)
    return membership.staff if membership is not None and membership.staff_id else None


def can_manage_staff(scope: Scope, staff: Staff) -> bool:
    """HQ sees every staff member; a store manager those at or below their unit."""
    if staff.workspace_id != scope.workspace_id:
        return False
    if scope.kind == "all":
        return True
    return scope.kind == "units" and bool(scope.unit_path) and staff.org_unit.path.startswith(scope.unit_path)


def may_act_on(scope: Scope, own: Staff | None, staff: Staff, *, change: bool = False) -> bool:
    """Own tasks always; another staff member's when they are in the viewer's scope. Analysts
    see workspace-wide but only read: they may look, not complete (``change``)."""
    if own is not None and own.pk == staff.pk:
        return True
    if change and scope.role == Role.ANALYST:
        return False
    return can_manage_staff(scope, staff)


@dataclass(frozen=True)
class TaskGroup:
    kind: str
    label: str
    tasks: list[StaffTask]


def pending_groups(workspace: Workspace, staff: Staff) -> list[TaskGroup]:
    """Pending tasks due today or earlier, grouped by kind; each task carries ``material_rows``."""
    tasks = list(
        StaffTask.objects.filter(
            workspace=workspace, staff=staff, status=StaffTask.Status.PENDING, due_on__lte=today(workspace)
        )
        .select_related("customer")
        .order_by("due_on", "pk")[:200]
    )
    attach_materials(workspace, tasks)
    groups = []
    for kind in KIND_ORDER:
        mine = [t for t in tasks if t.kind == kind]
        if mine:
            groups.append(TaskGroup(kind, StaffTask.Kind(kind).label, mine))
    return groups


def recently_done(workspace: Workspace, staff: Staff) -> list[StaffTask]:
    since = clock.now() - dt.timedelta(days=1)
    return list(
        StaffTask.objects.filter(workspace=workspace, staff=staff, status=StaffTask.Status.DONE, done_at__gte=since)
        .select_related("customer")
        .order_by("-done_at")[:RECENT_DONE]
    )


def attach_materials(workspace: Workspace, tasks: list[StaffTask]) -> None:
    """One query for every task's materials (``task.material_rows``, in the task's order)."""
    ids = {i for t in tasks for i in (t.materials or []) if isinstance(i, int)}
    found = {m.pk: m for m in Material.objects.filter(workspace=workspace, pk__in=ids, archived=False)}
    for task in tasks:
        task.material_rows = [found[i] for i in task.materials or [] if i in found]


@dataclass(frozen=True)
class StaffFigures:
    staff_id: int
    name: str
    store: str
    total: int
    done: int

    @property
    def rate(self) -> float:
        return self.done / self.total if self.total else 0.0


def day_report(workspace: Workspace, scope: Scope, day: dt.date) -> list[StaffFigures]:
    """Tasks due on ``day`` per staff member in the viewer's scope: one grouped query."""
    tasks = StaffTask.objects.filter(workspace=workspace, due_on=day)
    if scope.kind == "units":
        tasks = tasks.filter(staff__org_unit__path__startswith=scope.unit_path)
    elif scope.kind != "all":
        tasks = tasks.filter(staff_id=scope.staff_id)
    rows = (
        tasks.values("staff_id", "staff__name", "staff__org_unit__name")
        .annotate(total=Count("id"), done=Count("id", filter=Q(status=StaffTask.Status.DONE)))
        .order_by("staff__org_unit__name", "staff__name")
    )
    return [
        StaffFigures(r["staff_id"], r["staff__name"], r["staff__org_unit__name"], r["total"], r["done"]) for r in rows
    ]
