"""Periodic work of messaging, run by ``siyu worker`` (see ``siyu.core.schedule``)."""

from __future__ import annotations

from siyu.core.schedule import job
from siyu.messaging.models import WecomMassTask
from siyu.org.models import Workspace


@job("wecom.poll_group_messages", every=300)
def poll_group_messages() -> dict:
    """Results of WeCom mass-send tasks: delivered / not a friend / cap hit / not confirmed."""
    from siyu.core.errors import NotFound
    from siyu.messaging.wecom_poll import poll_workspace
    from siyu.wecom.client import WecomError

    summary = {"workspaces": 0, "tasks": 0, "changed": 0, "sent": 0, "expired": 0, "found": 0}
    summary.update(rate_limited=0, errors=0)
    workspace_ids = set(
        WecomMassTask.objects.filter(status__in=[WecomMassTask.Status.OPEN, WecomMassTask.Status.CREATING]).values_list(
            "workspace_id", flat=True
        )
    )
    for workspace in Workspace.objects.filter(pk__in=workspace_ids).order_by("pk"):
        summary["workspaces"] += 1
        try:
            # Sit out a minute-long 45009 block; a longer one ends this workspace's round.
            result = poll_workspace(workspace, max_wait=60.0)
        except (WecomError, NotFound):  # one workspace's broken setup must not stop the others
            summary["errors"] += 1
            continue
        for key in ("tasks", "changed", "sent", "expired", "found", "errors"):
            summary[key] += result[key]
        summary["rate_limited"] += int(result["rate_limited"])
    return summary
