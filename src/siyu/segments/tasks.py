"""Background tasks of the segments feature: parse arguments, call a service."""

from __future__ import annotations

from django_tasks import task

from siyu.org.models import Workspace
from siyu.segments.layers import recompute_layers


@task()
def recompute_layers_task(workspace_id: int) -> dict[str, int | float]:
    """Recompute a workspace's layers (enqueue daily, and after bulk imports)."""
    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is None:  # deleted since it was queued: nothing to do
        return {"customers": 0, "changed": 0, "seconds": 0.0}
    report = recompute_layers(workspace)
    return {"customers": report.customers, "changed": report.changed, "seconds": round(report.seconds, 3)}
