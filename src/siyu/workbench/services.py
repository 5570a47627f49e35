"""Creating and closing staff tasks (set-based: one statement per call)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db import transaction

from siyu.core import clock
from siyu.workbench.models import WECOM_TRACKED_SOURCES, StaffTask


@dataclass(frozen=True)
class NewTask:
    staff_id: int
    kind: str
    title: str
    due_on: dt.date
    source_type: str
    source_id: str
    script: str = ""
    materials: list[int] = field(default_factory=list)
    customer_id: int | None = None
    audience: int = 0


def upsert_tasks(workspace_id: int, tasks: Sequence[NewTask]) -> int:
    """Create the tasks that do not exist yet (same staff, source type and source id); the
    ones that exist keep their status. Returns how many were created."""
    if not tasks:
        return 0
    now = clock.now()
    rows = [
        StaffTask(
            workspace_id=workspace_id,
            staff_id=t.staff_id,
            kind=t.kind,
            title=t.title[:200],
            script=t.script,
            materials=list(t.materials),
            customer_id=t.customer_id,
            audience=t.audience,
            due_on=t.due_on,
            source_type=t.source_type,
            source_id=t.source_id[:100],
            created_at=now,
            updated_at=now,
        )
        for t in tasks
    ]
    with transaction.atomic():
        before = StaffTask.objects.filter(
            workspace_id=workspace_id, source_type__in={t.source_type for t in tasks},
            source_id__in={t.source_id[:100] for t in tasks},
        ).count()  # fmt: skip
        StaffTask.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
        after = StaffTask.objects.filter(
            workspace_id=workspace_id, source_type__in={t.source_type for t in tasks},
            source_id__in={t.source_id[:100] for t in tasks},
        ).count()  # fmt: skip
    return after - before


def close_tasks(
    workspace_id: int,
    *,
    source_type: str,
    source_id: str,
    staff_ids: Iterable[int] | None = None,
    status: str = StaffTask.Status.DONE,
    via: str = "wecom",
) -> int:
    """Close the pending tasks of a source (for the given staff, or all): WeCom reported that
    the staff member sent / posted (``done``), or the source was cancelled or expired."""
    now = clock.now()
    tasks = StaffTask.objects.filter(
        workspace_id=workspace_id, source_type=source_type, source_id=source_id, status=StaffTask.Status.PENDING
    )
    if staff_ids is not None:
        tasks = tasks.filter(staff_id__in=list(staff_ids))
    done = status == StaffTask.Status.DONE
    return tasks.update(status=status, done_at=now if done else None, done_via=via if done else "", updated_at=now)


def complete_task(workspace_id: int, task_id: int, *, user=None, via: str = "staff") -> bool:
    """Mark one pending task done (the staff member says they did it). One conditional UPDATE:
    a task WeCom closed in the meantime keeps WeCom's record, and a task only WeCom may close
    (``WECOM_TRACKED_SOURCES``) is never closed by hand. Returns whether this call closed it."""
    now = clock.now()
    tasks = StaffTask.objects.filter(workspace_id=workspace_id, pk=task_id, status=StaffTask.Status.PENDING)
    if via != "wecom":
        tasks = tasks.exclude(source_type__in=WECOM_TRACKED_SOURCES)
    return bool(
        tasks.update(
            status=StaffTask.Status.DONE,
            done_at=now,
            done_by=user if getattr(user, "pk", None) else None,
            done_via=via,
            updated_at=now,
        )
    )
