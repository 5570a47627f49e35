"""Results of WeCom mass-send tasks, polled (WeCom pushes no callback for them).

For every open task (``WecomMassTask``, one msgid, one sender): ``get_groupmsg_task`` says
whether the member sent it; once they did, ``get_groupmsg_send_result`` gives each customer's
status, written back to the outbox with ``record_receipts`` (by msgid + external_userid):

- 1 → delivered; 2 → failed ``not_friend``; 3 → failed ``wecom_cap_hit`` (WeCom's own cap:
  the customer already received another mass message); 0 → still waiting.

A task whose creation had no answer (a timeout: its messages are ``unknown``) is looked up
in ``get_groupmsg_list_v2`` after a couple of minutes; found, its messages become ``sent``
and it is polled like the others. Nothing like it there once ``NOT_CREATED_AFTER`` has
passed: it was never created, its messages are queued and sent again. More than one match
stays unknown (an operator decides).

A task the member has not sent within ``WECOM_MASS_TASK_HOURS`` (default 72) is closed: its
waiting messages fail as ``not_confirmed`` and the staff task expires. A 45009 stops the
round for that workspace (nothing is lost: the next round asks again).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F

from siyu.channels.base import Receipt
from siyu.core import clock
from siyu.core.errors import InvalidInput
from siyu.messaging.models import OutboundMessage, WecomMassTask
from siyu.messaging.services import record_receipts
from siyu.messaging.wecom_mass import SOURCE_TYPE
from siyu.org.models import Workspace

log = logging.getLogger("siyu.wecom.poll")

STATUS = {
    1: ("delivered", "", ""),
    2: ("failed", "not_friend", "客户已不是该员工的好友 / not a friend of the sender any more"),
    3: (
        "failed",
        "wecom_cap_hit",
        "客户已收到其他群发，超出企业微信上限 / cap hit: already received another mass message",
    ),
}
NOT_CONFIRMED = ("not_confirmed", "员工未在时限内确认发送 / the staff member did not send the task in time")
REMINDS_PER_DAY = 3
# A creation without an answer is looked up after this long (no live call takes that long).
UNANSWERED_AFTER = dt.timedelta(minutes=2)


def task_window() -> dt.timedelta:
    return dt.timedelta(hours=float(getattr(settings, "WECOM_MASS_TASK_HOURS", 72)))


def open_tasks(workspace_id: int):
    return WecomMassTask.objects.filter(workspace_id=workspace_id, status=WecomMassTask.Status.OPEN).exclude(msgid="")


def poll_workspace(workspace: Workspace, *, now: dt.datetime | None = None, **client_options: Any) -> dict[str, Any]:
    """Poll every open task of ``workspace``, least recently polled first."""
    from siyu.wecom.client import RateLimited, WecomError
    from siyu.wecom.services import client_for
    from siyu.workbench.services import close_tasks

    now = now or clock.now()
    summary = {"tasks": 0, "changed": 0, "sent": 0, "expired": 0, "found": 0, "rate_limited": False, "errors": 0}
    tasks = list(open_tasks(workspace.pk).order_by(F("last_polled_at").asc(nulls_first=True), "id"))
    unanswered = list(
        WecomMassTask.objects.filter(
            workspace_id=workspace.pk, status=WecomMassTask.Status.CREATING,
            created_at__lt=now - UNANSWERED_AFTER, created_at__gte=now - task_window(),
        ).order_by("id")
    )  # fmt: skip
    if not tasks and not unanswered:
        return summary
    with client_for(workspace, **client_options) as client:
        try:
            summary["found"] = sum(_find_unanswered(client, task, now) for task in unanswered)
        except RateLimited:
            summary["rate_limited"] = True
            return summary
        if summary["found"]:
            tasks = list(open_tasks(workspace.pk).order_by(F("last_polled_at").asc(nulls_first=True), "id"))
        for task in tasks:
            try:
                changed, state = _poll_task(client, task, now)
            except RateLimited:
                summary["rate_limited"] = True
                break
            except WecomError:
                log.exception("polling WeCom task %s failed", task.msgid)
                summary["errors"] += 1
                if now - task.created_at > task_window() + dt.timedelta(days=1):
                    # WeCom keeps refusing to answer about it: stop asking, settle what waits,
                    # and take it off the sender's to-do list like any other expired task.
                    _expire(task)
                    WecomMassTask.objects.filter(pk=task.pk).update(
                        status=WecomMassTask.Status.EXPIRED, finished_at=now, last_polled_at=now
                    )
                    if task.sender_id:
                        close_tasks(
                            task.workspace_id, source_type=SOURCE_TYPE, source_id=task.msgid,
                            staff_ids=[task.sender_id], status="expired",
                        )  # fmt: skip
                continue
            summary["tasks"] += 1
            summary["changed"] += changed
            if state:
                summary[state] += 1
    return summary


def _find_unanswered(client, task: WecomMassTask, now: dt.datetime) -> int:
    """Did WeCom create the task whose creation had no answer? Found: record it and move its
    ``unknown`` messages to ``sent`` under its msgid (1). Certainly never created (nothing
    like it once ``NOT_CREATED_AFTER`` has passed): the task fails and its ``unknown``
    messages are queued again, to be sent anew (0). Otherwise leave them (0)."""
    from siyu.messaging.wecom_mass import created, lookup, not_created
    from siyu.wecom.client import RateLimited, WecomError

    try:
        msgid = lookup(client, task, now)
    except RateLimited:
        raise
    except WecomError:
        log.exception("looking up unanswered WeCom task %s failed", task.pk)
        return 0
    if msgid == "":
        with transaction.atomic():
            if not_created(task, now):
                OutboundMessage.objects.filter(
                    account_id=task.account_id, pk__in=task.message_ids, state=OutboundMessage.State.UNKNOWN
                ).update(
                    state=OutboundMessage.State.QUEUED, provider_ref="", sent_at=None, not_before=None,
                    claimed_by="", lease_until=None, error_code="not_created",
                    error_message="企业微信未创建该群发任务，重新发送 / WeCom never created the task: sent again",
                    updated_at=now,
                )  # fmt: skip
        return 0
    if not msgid:
        return 0
    created(task, msgid, [])
    OutboundMessage.objects.filter(
        account_id=task.account_id, pk__in=task.message_ids, state=OutboundMessage.State.UNKNOWN
    ).update(
        state=OutboundMessage.State.SENT, provider_ref=msgid, error_code="", error_message="", updated_at=clock.now()
    )
    return 1


def _pages(client, api: str, body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor = ""
    while True:
        data = client.post(
            f"externalcontact/{api}", {**body, **({"cursor": cursor} if cursor else {})}, idempotent=True
        )
        rows += data.get(key) or []
        cursor = str(data.get("next_cursor") or "")
        if not cursor:
            return rows


def _poll_task(client, task: WecomMassTask, now: dt.datetime) -> tuple[int, str]:
    """Ask WeCom about one task, write back what it says; (messages changed, 'sent'/'expired'/'')."""
    from siyu.workbench.services import close_tasks

    members = _pages(client, "get_groupmsg_task", {"msgid": task.msgid, "limit": 1000}, "task_list")
    mine = next((m for m in members if m.get("userid") == task.sender_userid), None)
    sent = bool(mine and int(mine.get("status") or 0) == 2)
    changed = 0
    waiting = 0
    state = ""
    if sent:
        results = _pages(
            client,
            "get_groupmsg_send_result",
            {"msgid": task.msgid, "userid": task.sender_userid, "limit": 1000},
            "send_list",
        )
        receipts = []
        counts = {1: 0, 2: 0, 3: 0}
        for row in results:
            status = int(row.get("status") or 0)
            if status not in STATUS:
                waiting += 1
                continue
            counts[status] += 1
            outcome, code, message = STATUS[status]
            at = _when(row.get("send_time")) or _when(mine.get("send_time"))
            receipts.append(
                Receipt(
                    status=outcome, provider_ref=task.msgid, to_address=str(row.get("external_userid") or ""),
                    error_code=code, error_message=message, at=at,
                )
            )  # fmt: skip
        changed += record_receipts(task.account_id, receipts)
        task.delivered, task.not_friend, task.cap_hit = counts[1], counts[2], counts[3]
        task.sent_at = task.sent_at or _when(mine.get("send_time")) or now
        if task.sender_id:
            close_tasks(task.workspace_id, source_type=SOURCE_TYPE, source_id=task.msgid, staff_ids=[task.sender_id])
        if not waiting and not _still_sending(task):
            task.status, task.finished_at, state = WecomMassTask.Status.SENT, now, "sent"
    if task.status == WecomMassTask.Status.OPEN and now - task.created_at > task_window() and not _still_sending(task):
        changed += _expire(task)
        if task.sender_id and not sent:
            close_tasks(
                task.workspace_id, source_type=SOURCE_TYPE, source_id=task.msgid, staff_ids=[task.sender_id],
                status="expired",
            )  # fmt: skip
        task.status = WecomMassTask.Status.SENT if sent else WecomMassTask.Status.EXPIRED
        task.finished_at, state = now, "sent" if sent else "expired"
    task.last_polled_at = now
    task.save(
        update_fields=["delivered", "not_friend", "cap_hit", "sent_at", "status", "finished_at", "last_polled_at"]
    )
    return changed, state


def _still_sending(task: WecomMassTask) -> bool:
    """Are some of the task's messages still ``sending`` (a worker died before recording
    them and recovery has not run yet)? Then the task stays open: results that found no row
    now are written back by a later poll, once recovery has recorded the rows."""
    return OutboundMessage.objects.filter(
        account_id=task.account_id, pk__in=task.message_ids, state=OutboundMessage.State.SENDING
    ).exists()


def _expire(task: WecomMassTask) -> int:
    """The task's messages still waiting fail as not confirmed."""
    code, message = NOT_CONFIRMED
    waiting = OutboundMessage.objects.filter(
        account_id=task.account_id, provider_ref=task.msgid, state=OutboundMessage.State.SENT
    ).values_list("to_address", flat=True)
    receipts = [
        Receipt(status="failed", provider_ref=task.msgid, to_address=a, error_code=code, error_message=message)
        for a in waiting
    ]
    return record_receipts(task.account_id, receipts)


def _when(value: Any) -> dt.datetime | None:
    try:
        seconds = int(value or 0)
    except (TypeError, ValueError):
        return None
    return dt.datetime.fromtimestamp(seconds, dt.UTC) if seconds > 0 else None


# ---- cancel -------------------------------------------------------------------------------------


def cancel(task: WecomMassTask, *, user=None, **client_options: Any) -> int:
    """Withdraw a task the staff member has not sent (``cancel_groupmsg_send``): its messages
    fail as ``cancelled`` and the staff task is cancelled. Returns the messages changed.

    WeCom is asked first whether the member sent it since the last poll; if so the results
    are polled and the cancel is refused."""
    from siyu.org.services import audit
    from siyu.wecom.client import WecomError
    from siyu.wecom.services import client_for
    from siyu.workbench.services import close_tasks

    if task.status != WecomMassTask.Status.OPEN or not task.msgid or task.sent_at is not None:
        raise InvalidInput("只能取消员工尚未发送的任务 / only a task not yet sent can be cancelled", field="task")
    workspace = Workspace.objects.get(pk=task.workspace_id)
    try:
        with client_for(workspace, **client_options) as client:
            # The stored sent_at is only as fresh as the last poll: ask first. WeCom may still
            # "cancel" a task the member already sent, and we would mark delivered customers
            # as cancelled (and stop counting them toward WeCom's cap).
            members = _pages(client, "get_groupmsg_task", {"msgid": task.msgid, "limit": 1000}, "task_list")
            mine = next((m for m in members if m.get("userid") == task.sender_userid), None)
            if mine and int(mine.get("status") or 0) == 2:
                _poll_task(client, task, clock.now())
                raise InvalidInput(
                    "员工已发送该群发，无法取消；结果已更新 / the staff member already sent it: "
                    "it cannot be cancelled (its results were fetched)",
                    field="task",
                )
            client.post("externalcontact/cancel_groupmsg_send", {"msgid": task.msgid})
    except WecomError as exc:
        raise InvalidInput(f"企业微信拒绝取消 / WeCom refused to cancel: {exc}", field="task") from None
    waiting = OutboundMessage.objects.filter(
        account_id=task.account_id, provider_ref=task.msgid, state=OutboundMessage.State.SENT
    ).values_list("to_address", flat=True)
    changed = record_receipts(
        task.account_id,
        [
            Receipt(status="failed", provider_ref=task.msgid, to_address=a, error_code="cancelled",
                    error_message="群发任务已取消 / the mass-send task was cancelled")
            for a in waiting
        ],
    )  # fmt: skip
    if task.sender_id:
        close_tasks(
            task.workspace_id, source_type=SOURCE_TYPE, source_id=task.msgid, staff_ids=[task.sender_id],
            status="cancelled",
        )  # fmt: skip
    now = clock.now()
    WecomMassTask.objects.filter(pk=task.pk).update(status=WecomMassTask.Status.CANCELLED, finished_at=now)
    audit(workspace=workspace, action="wecom_mass.cancel", target=f"wecom_mass_task:{task.pk}", user=user)
    return changed


# ---- remind ---------------------------------------------------------------------------------------


def reminders_left(task: WecomMassTask, now: dt.datetime | None = None) -> int:
    now = now or clock.now()
    recent = [t for t in task.reminded_at or [] if now - dt.datetime.fromisoformat(t) < dt.timedelta(hours=24)]
    return max(0, REMINDS_PER_DAY - len(recent))


def remind(task: WecomMassTask, *, user=None, **client_options: Any) -> int:
    """Ask WeCom to remind the sender (``remind_groupmsg_send``): at most 3 times in 24 hours,
    WeCom's limit, enforced here before calling. Returns the reminders left."""
    from siyu.org.services import audit
    from siyu.wecom.client import WecomError
    from siyu.wecom.services import client_for

    now = clock.now()
    if task.status != WecomMassTask.Status.OPEN or not task.msgid:
        raise InvalidInput("该群发任务已结束 / the task is no longer waiting", field="task")
    if task.sent_at is not None:
        raise InvalidInput("员工已发送，无需提醒 / the staff member already sent it", field="task")
    if reminders_left(task, now) <= 0:
        raise InvalidInput(
            "24 小时内最多提醒 3 次 / WeCom allows at most 3 reminders per task in 24 hours", field="task"
        )
    workspace = Workspace.objects.get(pk=task.workspace_id)
    try:
        with client_for(workspace, **client_options) as client:
            client.post("externalcontact/remind_groupmsg_send", {"msgid": task.msgid})
    except WecomError as exc:
        raise InvalidInput(f"企业微信拒绝提醒 / WeCom refused the reminder: {exc}", field="task") from None
    task.reminded_at = [*(task.reminded_at or []), now.isoformat()]
    task.save(update_fields=["reminded_at"])
    audit(workspace=workspace, action="wecom_mass.remind", target=f"wecom_mass_task:{task.pk}", user=user)
    return reminders_left(task, now)
