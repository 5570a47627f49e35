"""WeCom as a delivery channel: a broadcast's WeCom messages become mass-send tasks
(``externalcontact/add_msg_template``) that each staff member confirms in the WeCom app.

WeCom sends nothing itself: ``add_msg_template`` only creates a task for one member (the
``sender``), who must confirm it; only then do the customers receive it. So

- every message names its sender (``payload["sender"]``, a WeCom userid): the staff member
  whose friend the customer is, the owner first (``sender_sql``). A customer who is nobody's
  friend is suppressed as ``not_friend`` when the broadcast writes its rows;
- ``send`` groups a batch by (broadcast, sender, text, attachments) and creates one task per
  group of ≤10,000 customers. A message WeCom accepted is ``sent`` with the task's msgid as
  ``provider_ref`` (meaning: waiting for the member), one in ``fail_list`` is ``failed``
  (``not_friend``). Polling (``messaging.wecom_poll``) later turns each into delivered or
  failed (``not_friend``, ``wecom_cap_hit``, ``not_confirmed``);
- each created task is a ``StaffTask`` (群发确认) on the member's to-do list;
- a ``WecomMassTask`` row is written *before* the call, so a worker that dies after WeCom
  created the task but before we recorded it is matched by ``recover`` (creator, text and time
  in ``get_groupmsg_list_v2``) rather than sent twice.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction

from siyu.channels.base import AccountConfig, Outcome, OutMessage, SendResult
from siyu.core import clock
from siyu.core.errors import NotFound
from siyu.core.sql import id_list_condition
from siyu.messaging.models import Broadcast, OutboundMessage, WecomMassTask
from siyu.org.models import Staff, Workspace

log = logging.getLogger("siyu.wecom.mass")

MAX_RECIPIENTS = 10_000  # external_userid per add_msg_template
MAX_TEXT_BYTES = 4000
SOURCE_TYPE = "wecom_group_msg"
# How far around an unrecorded task's creation recovery looks in get_groupmsg_list_v2.
MATCH_BEFORE = dt.timedelta(minutes=2)
MATCH_AFTER = dt.timedelta(hours=1)
# A task with no answer and nothing like it in the list this long after its intent was
# written was never created (the worker died before the call, or the request never reached
# WeCom): its messages are sent again. Long enough for the list API to catch up and for the
# call itself (made right after the intent, ≤ a lease) to have surely happened; and within
# MATCH_AFTER, so the window searched covers the whole attempt.
NOT_CREATED_AFTER = max(dt.timedelta(minutes=15), 2 * dt.timedelta(seconds=settings.DISPATCH_LEASE_SECONDS))
ATTACHMENT_TYPES = ("link", "miniprogram", "image", "video", "file")


def sender_sql(customer: str) -> str:
    """SQL for the WeCom userid that sends to ``customer`` (an SQL expression for its id): the
    customer's owner if they are still friends, else the most recently added active friend."""
    return (
        "(SELECT st.wecom_userid FROM customers_staffrelation r JOIN org_staff st ON st.id = r.staff_id "
        "JOIN customers_customer oc ON oc.id = r.customer_id "
        f"WHERE r.customer_id = {customer} AND r.status = 'active' AND st.status = 'active' "
        "AND st.wecom_userid IS NOT NULL AND st.wecom_userid <> '' "
        "ORDER BY CASE WHEN r.staff_id = oc.owner_staff_id THEN 0 ELSE 1 END, r.added_at DESC, r.id DESC LIMIT 1)"
    )


# Per-recipient variables: each would give every customer their own text, so their own task.
PER_RECIPIENT = ("customer", "staff", "store", "link", "unsubscribe_url")


def check_text(body: str, *, field: str) -> None:
    """A WeCom mass message is one text for all of a staff member's customers (WeCom has no
    per-customer fields): refuse per-recipient variables and text over 4000 bytes."""
    from jinja2 import Environment, meta
    from jinja2.exceptions import TemplateSyntaxError

    from siyu.core.errors import InvalidInput

    try:
        used = meta.find_undeclared_variables(Environment().parse(body))
    except TemplateSyntaxError:
        return  # check_template names the syntax error
    personal = sorted(used & set(PER_RECIPIENT))
    if personal:
        raise InvalidInput(
            f"企业微信群发是同一段文字发给员工的全部客户，不能使用 {', '.join(personal)} 变量 / "
            "a WeCom mass message is one text for all recipients: no per-customer variables",
            field=field,
        )
    if len(body.encode()) > MAX_TEXT_BYTES:
        raise InvalidInput("企业微信群发文字最多 4000 字节 / at most 4000 bytes of text", field=field)


# ---- send ---------------------------------------------------------------------------------------


def _load(messages: Sequence[OutMessage]) -> dict[int, tuple[str, int | None, list[dict[str, Any]]]]:
    """(sender userid, broadcast id, attachments) per message: stored payloads in one query,
    senders the payload lacks resolved in one more."""
    cond, params = id_list_condition("o.id", [m.id for m in messages])
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT o.id, o.payload, o.broadcast_id FROM messaging_outboundmessage o WHERE {cond}", params)
        stored = {}
        for mid, payload, broadcast_id in cursor.fetchall():
            data = json.loads(payload) if isinstance(payload, str) else (payload or {})
            stored[mid] = (str(data.get("sender") or ""), broadcast_id, list(data.get("attachments") or []))
        missing = sorted({m.payload.get("customer_id") for m in messages if not stored.get(m.id, ("",))[0]} - {None})
        resolved: dict[int, str] = {}
        if missing:
            cond_c, params_c = id_list_condition("c.id", missing)
            cursor.execute(f"SELECT c.id, {sender_sql('c.id')} FROM customers_customer c WHERE {cond_c}", params_c)
            resolved = {cid: userid or "" for cid, userid in cursor.fetchall()}
    out = {}
    for m in messages:
        sender, broadcast_id, attachments = stored.get(m.id, ("", None, []))
        out[m.id] = (sender or resolved.get(m.payload.get("customer_id"), ""), broadcast_id, attachments)
    return out


def _attachments(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The payload's attachments as WeCom wants them (≤9; link / miniprogram / media ids)."""
    return [a for a in items if isinstance(a, dict) and a.get("msgtype") in ATTACHMENT_TYPES][:9]


def send(account: AccountConfig, messages: Sequence[OutMessage]) -> list[SendResult]:
    """Create one mass-send task per (broadcast, sender, text, attachments); see the module doc."""
    from siyu.wecom.client import ConfigError, NetworkError, RateLimited, WecomError
    from siyu.wecom.services import client_for

    workspace = Workspace.objects.get(pk=account.workspace_id)
    try:
        client = client_for(workspace, max_wait=5.0)
    except NotFound:
        return [
            SendResult(m.id, Outcome.ACCOUNT, error_code="wecom_not_configured", error_message="企业微信尚未配置")
            for m in messages
        ]
    results: list[SendResult] = []
    info = _load(messages)
    groups: dict[tuple, list[OutMessage]] = {}
    for m in messages:
        sender, broadcast_id, attachments = info[m.id]
        if not sender:
            results.append(SendResult(m.id, Outcome.REJECTED, error_code="not_friend", error_message="无可用发送员工"))
            continue
        if len(m.body.encode()) > MAX_TEXT_BYTES:
            results.append(
                SendResult(m.id, Outcome.REJECTED, error_code="text_too_long", error_message="文本超过 4000 字节")
            )
            continue
        key = (broadcast_id, sender, m.body, json.dumps(_attachments(attachments), sort_keys=True, ensure_ascii=False))
        groups.setdefault(key, []).append(m)
    stop: SendResult | None = None  # an answer that holds for every call after it (blocked, broken)
    with client:
        for (broadcast_id, sender, text, attachments), members in groups.items():
            for start in range(0, len(members), MAX_RECIPIENTS):
                chunk = members[start : start + MAX_RECIPIENTS]
                if stop is not None:
                    results += [
                        SendResult(m.id, stop.outcome, error_code=stop.error_code, retry_after=stop.retry_after)
                        for m in chunk
                    ]
                    continue
                intent = _intent(account, broadcast_id, sender, text, chunk)
                body: dict[str, Any] = {
                    "chat_type": "single",
                    "external_userid": [m.to_address for m in chunk],
                    "sender": sender,
                    "text": {"content": text},
                }
                if json.loads(attachments):
                    body["attachments"] = json.loads(attachments)
                try:
                    data = client.post("externalcontact/add_msg_template", body)
                except RateLimited as exc:
                    _failed(intent)
                    stop = SendResult(0, Outcome.TRANSIENT, error_code="45009", retry_after=exc.retry_after)
                    results += [
                        SendResult(m.id, Outcome.TRANSIENT, error_code="45009", retry_after=exc.retry_after)
                        for m in chunk
                    ]
                    continue
                except ConfigError as exc:
                    _failed(intent)
                    stop = SendResult(0, Outcome.ACCOUNT, error_code=str(exc.errcode))
                    results += [
                        SendResult(m.id, Outcome.ACCOUNT, error_code=str(exc.errcode), error_message=exc.message_zh)
                        for m in chunk
                    ]
                    continue
                except NetworkError as exc:
                    # The task may exist: never resent automatically (the intent stays 'creating').
                    results += [
                        SendResult(m.id, Outcome.UNKNOWN, error_code="network", error_message=exc.errmsg[:500])
                        for m in chunk
                    ]
                    continue
                except WecomError as exc:
                    _failed(intent)
                    if exc.errcode == -1:  # still busy after the client's retries
                        results += [SendResult(m.id, Outcome.TRANSIENT, error_code="-1") for m in chunk]
                    else:  # 41048: no sendable customer; 40058 / 40096 / 41054 ...: refused
                        results += [
                            SendResult(
                                m.id, Outcome.REJECTED, error_code=str(exc.errcode), error_message=exc.errmsg[:500]
                            )
                            for m in chunk
                        ]
                    continue
                msgid = str(data.get("msgid") or "")
                fail_list = [str(x) for x in data.get("fail_list") or []]
                created(intent, msgid, fail_list)
                results += _results_for(chunk, msgid, set(fail_list))
    return results


def _results_for(chunk: Sequence[OutMessage], msgid: str, fail_list: set[str]) -> list[SendResult]:
    return [
        SendResult(m.id, Outcome.REJECTED, provider_ref=msgid, error_code="not_friend", error_message="非员工好友")
        if m.to_address in fail_list
        else SendResult(m.id, Outcome.SENT, provider_ref=msgid)
        for m in chunk
    ]


def _intent(account: AccountConfig, broadcast_id: int | None, sender: str, text: str, chunk) -> WecomMassTask:
    staff_id = (
        Staff.objects.filter(workspace_id=account.workspace_id, wecom_userid=sender)
        .values_list("pk", flat=True)
        .first()
    )
    return WecomMassTask.objects.create(
        workspace_id=account.workspace_id,
        account_id=account.id,
        broadcast_id=broadcast_id,
        sender_id=staff_id,
        sender_userid=sender,
        text=text,
        message_ids=[m.id for m in chunk],
        recipients=len(chunk),
        created_at=clock.now(),
    )


def _failed(intent: WecomMassTask) -> None:
    WecomMassTask.objects.filter(pk=intent.pk).update(status=WecomMassTask.Status.FAILED, finished_at=clock.now())


def created(intent: WecomMassTask, msgid: str, fail_list: list[str]) -> None:
    """WeCom created the task: record its msgid, stamp it on the outbox rows it carries and put
    it on the sender's to-do list — all in one transaction.

    Together because a worker can die right after: the stamped rows are what polling matches
    results against (``record_receipts`` by msgid + external_userid, rows still ``sending``
    included), and ``recover`` only calls this for tasks without a msgid, so a msgid saved
    alone would leave the results with nothing to land on and the member without a task.
    """
    from siyu.workbench.models import StaffTask
    from siyu.workbench.services import NewTask, upsert_tasks

    title = "企业微信群发"
    if intent.broadcast_id:
        name = Broadcast.objects.filter(pk=intent.broadcast_id).values_list("name", flat=True).first()
        title = f"群发：{name}" if name else title
    workspace = Workspace.objects.filter(pk=intent.workspace_id).only("time_zone").first()
    zone = ZoneInfo(getattr(workspace, "time_zone", "") or "UTC")
    with transaction.atomic():
        WecomMassTask.objects.filter(pk=intent.pk).update(
            msgid=msgid, fail_list=fail_list, status=WecomMassTask.Status.OPEN
        )
        OutboundMessage.objects.filter(account_id=intent.account_id, pk__in=intent.message_ids, provider_ref="").update(
            provider_ref=msgid
        )
        if intent.sender_id is None:
            return
        upsert_tasks(
            intent.workspace_id,
            [
                NewTask(
                    staff_id=intent.sender_id,
                    kind=StaffTask.Kind.GROUP_MESSAGE,
                    title=title,
                    due_on=clock.now().astimezone(zone).date(),
                    source_type=SOURCE_TYPE,
                    source_id=msgid,
                    script=intent.text,
                    audience=max(0, intent.recipients - len(fail_list)),
                )
            ],
        )


# ---- recover ------------------------------------------------------------------------------------


def recover(account: AccountConfig, messages: Sequence[OutMessage]) -> dict[int, SendResult | None]:
    """What WeCom has for messages a dead worker left ``sending``.

    No task row names the message: the call was never made (safe to send again). A row with a
    msgid: WeCom created it. A row still ``creating``: look for the task in
    ``get_groupmsg_list_v2`` (``lookup``: same creator, text and attachments, made through the
    API, created around then, not one of ours already); exactly one match is it; nothing at
    all once ``NOT_CREATED_AFTER`` has passed means it was never created (sent again); anything
    else is left out (→ unknown, never resent; polling asks again later).
    """
    from siyu.wecom.client import WecomError
    from siyu.wecom.services import client_for

    ids = {m.id for m in messages}
    by_address = {m.id: m.to_address for m in messages}
    earliest = min((_attempted(m) for m in messages), default=clock.now()) - dt.timedelta(days=1)
    tasks = [
        t
        for t in WecomMassTask.objects.filter(account_id=account.id, created_at__gte=earliest).order_by("id")
        if ids & set(t.message_ids)
    ]
    answers: dict[int, SendResult | None] = dict.fromkeys(ids)
    client = None
    for task in tasks:
        carried = ids & set(task.message_ids)
        if task.status == WecomMassTask.Status.FAILED:
            continue  # WeCom refused the call: nothing was created
        msgid = task.msgid
        fail_list = set(task.fail_list)
        if not msgid:
            try:
                if client is None:
                    client = client_for(Workspace.objects.get(pk=account.workspace_id), max_wait=5.0)
                found = lookup(client, task, clock.now())
            except (WecomError, NotFound):
                log.exception("cannot look up WeCom task %s", task.pk)
                found = None
            if found == "" and not_created(task, clock.now()):
                continue  # certainly never created: the messages are queued again (None)
            if not found:
                for mid in carried:
                    answers.pop(mid, None)  # cannot tell
                continue
            msgid = found
            created(task, msgid, [])
        for mid in carried:
            if by_address[mid] in fail_list:
                answers[mid] = SendResult(mid, Outcome.REJECTED, provider_ref=msgid, error_code="not_friend")
            else:
                answers[mid] = SendResult(mid, Outcome.SENT, provider_ref=msgid)
    if client is not None:
        client.close()
    return answers


def _attempted(message: OutMessage) -> dt.datetime:
    raw = message.payload.get("attempted_at")
    try:
        at = dt.datetime.fromisoformat(str(raw)) if raw else clock.now()
    except ValueError:
        return clock.now()
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)  # SQLite hands back UTC without a zone


def lookup(client, task: WecomMassTask, now: dt.datetime) -> str | None:
    """What WeCom has for a task whose creation got no answer: its msgid (exactly one task
    matches), '' (certainly not created: nothing even resembling it in a window that has
    surely passed, see ``NOT_CREATED_AFTER``) or None (cannot tell yet, or more than one)."""
    exact, loose = _candidates(client, task)
    if len(exact) == 1:
        return exact[0]
    if not loose and now - task.created_at >= NOT_CREATED_AFTER:
        return ""
    return None


def not_created(task: WecomMassTask, now: dt.datetime) -> bool:
    """Record that WeCom never created ``task`` (guarded: only a row still ``creating``), so
    recovery and polling stop asking and its messages can be sent again."""
    return bool(
        WecomMassTask.objects.filter(pk=task.pk, status=WecomMassTask.Status.CREATING, msgid="").update(
            status=WecomMassTask.Status.FAILED, finished_at=now
        )
    )


def _attachments_of(task: WecomMassTask) -> list[dict[str, Any]]:
    """The attachments ``task`` was created with: every message of a task shares them (they
    are part of the grouping key in ``send``), so the first message's payload tells."""
    payload = (
        OutboundMessage.objects.filter(account_id=task.account_id, pk__in=task.message_ids[:1])
        .values_list("payload", flat=True)
        .first()
    )
    data = json.loads(payload) if isinstance(payload, str) else (payload or {})
    return _attachments(list(data.get("attachments") or []))


def _same_attachments(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> bool:
    """Same kinds in the same order, and every field both sides have is equal (WeCom may echo
    an image as a pic_url where we sent a media_id, so absent fields are not a difference)."""
    theirs = [a for a in theirs if isinstance(a, dict)]
    if [a.get("msgtype") for a in ours] != [a.get("msgtype") for a in theirs]:
        return False
    for mine, other in zip(ours, theirs, strict=True):
        kind = mine.get("msgtype")
        a, b = mine.get(kind) or {}, other.get(kind) or {}
        if any(a[k] != b[k] for k in a.keys() & b.keys()):
            return False
    return True


def _candidates(client, task: WecomMassTask) -> tuple[list[str], list[str]]:
    """Tasks in ``get_groupmsg_list_v2`` around ``task``'s creation that are not already one of
    ours: (exact, loose). Loose: same creator and text, made through the API (``create_type``
    0 — one a member or admin made in WeCom itself is never ours). Exact: also the same
    attachments. Only an exact single match identifies the task; "not created" needs no loose
    match at all, so a difference in how WeCom echoes attachments can never cause a resend."""
    start = task.created_at - MATCH_BEFORE
    end = min(task.created_at + MATCH_AFTER, clock.now() + MATCH_BEFORE)
    known = set(
        WecomMassTask.objects.filter(workspace_id=task.workspace_id).exclude(msgid="").values_list("msgid", flat=True)
    )
    attachments = _attachments_of(task)
    exact: list[str] = []
    loose: list[str] = []
    cursor = ""
    while True:
        body = {
            "chat_type": "single",
            "start_time": int(start.timestamp()),
            "end_time": int(end.timestamp()),
            "creator": task.sender_userid,
            "filter_type": 0,
            "limit": 100,
        }
        if cursor:
            body["cursor"] = cursor
        data = client.post("externalcontact/get_groupmsg_list_v2", body, idempotent=True)
        for item in data.get("group_msg_list") or []:
            text = ((item.get("text") or {}).get("content")) or ""
            if (
                item.get("msgid") not in known
                and text == task.text
                and item.get("creator", task.sender_userid) == task.sender_userid
                and int(item.get("create_type") or 0) == 0
            ):
                loose.append(str(item["msgid"]))
                if _same_attachments(attachments, list(item.get("attachments") or [])):
                    exact.append(str(item["msgid"]))
        cursor = str(data.get("next_cursor") or "")
        if not cursor:
            break
    return exact, loose
