"""Background tasks of the WeCom gateway: parse arguments, call the API."""

from __future__ import annotations

import logging
from typing import Any

from django_tasks import task

from siyu.org.models import Workspace

log = logging.getLogger("siyu.wecom")
# WeCom's answers to send_welcome_msg that mean "nothing more to do".
WELCOME_DONE = {41051: "already_chatting"}  # the customer already got a welcome / is chatting
WELCOME_DROP = {41050: "welcome_code_expired"}  # older than 20 seconds: retrying cannot help


@task()
def send_welcome_task(workspace_id: int, body: dict[str, Any]) -> dict[str, Any]:
    """Send a channel code's welcome message with the add event's ``welcome_code``.

    WeCom accepts it once and only within 20 seconds of the event, so it is queued the
    moment the callback commits and never retried late.
    """
    from siyu.wecom.client import WecomError
    from siyu.wecom.services import client_for

    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is None:
        return {"sent": False, "reason": "no_workspace"}
    try:
        client_for(workspace).post("externalcontact/send_welcome_msg", body)
    except WecomError as exc:
        if exc.errcode in WELCOME_DONE:
            return {"sent": True, "note": WELCOME_DONE[exc.errcode]}
        reason = WELCOME_DROP.get(exc.errcode or 0, f"errcode_{exc.errcode}")
        log.warning("welcome message not sent (%s): %s", reason, exc)
        return {"sent": False, "reason": reason}
    return {"sent": True}
