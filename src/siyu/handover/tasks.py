"""Background task of staff turnover: send a large handover's planned rows to WeCom."""

from __future__ import annotations

from typing import Any

from django_tasks import task

from siyu.org.models import Workspace


@task()
def send_handover_task(workspace_id: int, batch_id: int) -> dict[str, Any]:
    """Send the batch's planned rows (up to 200 transfer_customer calls) outside the web request
    that started it. Rows are claimed with a lease, so this task and the poll job may both run:
    each chunk is sent by one of them, and a sender that dies leaves its chunk to be resent."""
    from siyu.handover.services import send_planned
    from siyu.wecom.services import client_for

    workspace = Workspace.objects.filter(pk=workspace_id, wecom_app__isnull=False).first()
    if workspace is None:
        return {"calls": 0, "reason": "no_wecom_app"}
    with client_for(workspace) as client:
        return {"calls": send_planned(workspace, batch_id, client)}
