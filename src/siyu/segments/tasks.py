"""Background tasks of the segments feature: parse arguments, call a service."""

from __future__ import annotations

from django.core.cache import cache
from django.db import transaction
from django_tasks import task

from siyu.org.models import Workspace
from siyu.segments.layers import recompute_layers
from siyu.segments.services import refresh_workspace

# A queued refresh older than this is assumed lost (its worker died) and may be queued again.
REFRESH_FLAG_SECONDS = 60


@task()
def recompute_layers_task(workspace_id: int) -> dict[str, int | float]:
    """Recompute a workspace's layers (enqueue daily, and after bulk imports)."""
    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is None:  # deleted since it was queued: nothing to do
        return {"customers": 0, "changed": 0, "seconds": 0.0}
    report = recompute_layers(workspace)
    return {"customers": report.customers, "changed": report.changed, "seconds": round(report.seconds, 3)}


@task()
def refresh_segments_task(workspace_id: int) -> dict[str, int | float]:
    """Bring a workspace's segments up to date with what changed since the last refresh."""
    cache.delete(refresh_queued_key(workspace_id))
    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is None:
        return {"changed": 0, "entered": 0, "exited": 0, "seconds": 0.0}
    report = refresh_workspace(workspace)
    return {
        "changed": report.changed_customers,
        "entered": report.entered,
        "exited": report.exited,
        "seconds": round(report.seconds, 3),
    }


def refresh_queued_key(workspace_id: int) -> str:
    return f"segments:refresh-queued:{workspace_id}"


def request_refresh(workspace_id: int) -> None:
    """Ask for a refresh once the current transaction commits; bursts of ingestion batches
    share one queued refresh (the flag clears when the task starts)."""

    def enqueue() -> None:
        if cache.add(refresh_queued_key(workspace_id), 1, timeout=REFRESH_FLAG_SECONDS):
            refresh_segments_task.enqueue(workspace_id)

    transaction.on_commit(enqueue)
