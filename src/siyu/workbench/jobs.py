"""Periodic work of the staff workbench, run by ``siyu worker`` (see ``siyu.core.schedule``)."""

from __future__ import annotations

from siyu.core.schedule import job
from siyu.org.models import Workspace
from siyu.wecom.client import WecomError
from siyu.wecom.models import WecomApp
from siyu.workbench.moments import expire_stale, moments_to_poll, poll_workspace


@job("wecom.poll_moments", every=120)
def poll_moments() -> dict:
    """Follow Moments posts: job results → moment_id, then who has published (closes their tasks)."""
    summary = {"workspaces": 0, "polled": 0, "errors": 0, "tasks_expired": expire_stale()}
    workspace_ids = {m.workspace_id for m in moments_to_poll()}
    configured = set(WecomApp.objects.filter(workspace_id__in=workspace_ids).values_list("workspace_id", flat=True))
    for workspace in Workspace.objects.filter(pk__in=configured).order_by("pk"):
        summary["workspaces"] += 1
        try:
            result = poll_workspace(workspace)
        except WecomError:  # a configuration error in one workspace must not stop the others
            summary["errors"] += 1
            continue
        summary["polled"] += result["polled"]
        summary["errors"] += result["errors"]
    return summary
