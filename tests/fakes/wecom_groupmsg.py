"""Customer mass messages (客户群发) on the fake WeCom server: ``add_msg_template``,
``get_groupmsg_task``, ``get_groupmsg_send_result`` (cursor paging), ``remind_groupmsg_send``
(≤3 per 24 h), ``cancel_groupmsg_send`` and ``get_groupmsg_list_v2``.

Importing this module adds the routes to ``tests.fakes.wecom.ROUTES``; state lives on the
``FakeWecom`` instance (attributes added on first use). A task is only created, as in WeCom:
``confirm_group_message(fake, msgid, userid)`` plays the staff member pressing "send", which
delivers to each customer unless they are no longer the member's friend (status 2) or already
received as many mass messages this month as the month has days (status 3, WeCom's cap).
"""

from __future__ import annotations

import calendar
import datetime as dt
import secrets
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from tests.fakes.wecom import ROUTES, FakeWecom, error, ok

CHINA = ZoneInfo("Asia/Shanghai")
MAX_EXTERNAL = 10_000
MAX_TEXT_BYTES = 4000
REMINDS_PER_DAY = 3
REMIND_LIMIT_ERRCODE = 41097  # [U] the code WeCom uses is not documented; the limit is


@dataclass
class GroupMsg:
    msgid: str
    creator: str
    create_time: int
    text: str
    attachments: list[dict[str, Any]]
    external_userids: list[str]  # the sendable ones
    status: int = 0  # 0 not sent / 2 sent (per the single sender)
    send_time: int = 0
    results: dict[str, int] = field(default_factory=dict)  # external_userid -> 1 / 2 / 3
    reminders: list[float] = field(default_factory=list)
    cancelled: bool = False
    create_type: int = 0  # 0 made through the API, 1 by the member or an admin in WeCom itself


def group_msgs(fake: FakeWecom) -> dict[str, GroupMsg]:
    return fake.__dict__.setdefault("_group_msgs", {})


def received(fake: FakeWecom) -> dict[str, list[float]]:
    """external_userid -> when each mass message reached them (for WeCom's monthly cap)."""
    return fake.__dict__.setdefault("_group_received", {})


def received_elsewhere(fake: FakeWecom, external_userid: str, count: int) -> None:
    """The customer got ``count`` mass messages this month that we did not send (another tool)."""
    with fake.lock:
        received(fake).setdefault(external_userid, []).extend([fake.now()] * count)


def _is_friend(fake: FakeWecom, external_userid: str, userid: str) -> bool:
    contact = fake.contacts.get(external_userid)
    return contact is not None and any(f.userid == userid for f in contact.follows)


def _month_cap(now: float) -> tuple[float, int]:
    today = dt.datetime.fromtimestamp(now, CHINA).date()
    start = dt.datetime.combine(today.replace(day=1), dt.time(0), tzinfo=CHINA).timestamp()
    return start, calendar.monthrange(today.year, today.month)[1]


def _page(items: list[Any], body: dict[str, Any], *, max_limit: int, default: int) -> tuple[list[Any], str] | None:
    try:
        limit = int(body.get("limit") or default)
        offset = int(body.get("cursor") or 0)
    except (TypeError, ValueError):
        return None
    if not (1 <= limit <= max_limit):
        return None
    page = items[offset : offset + limit]
    return page, str(offset + limit) if offset + limit < len(items) else ""


def _add_msg_template(fake: FakeWecom, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    if body.get("chat_type", "single") != "single":
        return error(40058, "fake: only chat_type single")
    externals = body.get("external_userid") or []
    sender = body.get("sender") or ""
    if not isinstance(externals, list) or len(externals) > MAX_EXTERNAL:
        return error(40058, "field external_userid exceed max length")
    content = (body.get("text") or {}).get("content") or ""
    if len(content.encode()) > MAX_TEXT_BYTES:
        return error(40058, "field text.content exceed max length")
    attachments = body.get("attachments") or []
    if len(attachments) > 9:
        return error(40058, "field attachments exceed max length")
    if not content and not attachments:
        return error(40058, "text or attachments required")
    if sender in fake.invisible_users:
        return error(60011, "no privilege to access/modify contact/party/agent")
    sendable = [e for e in externals if _is_friend(fake, e, sender)] if sender else list(externals)
    fail_list = [e for e in externals if e not in sendable]
    if not sendable:
        return error(41048, "no customer can be sent")
    msgid = "msgGAQQ" + secrets.token_hex(8)
    with fake.lock:
        group_msgs(fake)[msgid] = GroupMsg(msgid, sender, int(fake.now()), content, attachments, sendable)
    return ok(fail_list=fail_list, msgid=msgid)


def _find(fake: FakeWecom, body: dict[str, Any]) -> GroupMsg | None:
    return group_msgs(fake).get(str(body.get("msgid") or ""))


def _get_groupmsg_task(fake: FakeWecom, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    msg = _find(fake, body)
    if msg is None:
        return error(40058, "invalid msgid")
    tasks = [{"userid": msg.creator, "status": msg.status, **({"send_time": msg.send_time} if msg.status else {})}]
    paged = _page(tasks, body, max_limit=1000, default=500)
    if paged is None:
        return error(40058, "invalid limit or cursor")
    page, cursor = paged
    return ok(next_cursor=cursor, task_list=page)


def _get_groupmsg_send_result(fake: FakeWecom, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    msg = _find(fake, body)
    if msg is None:
        return error(40058, "invalid msgid")
    if body.get("userid") != msg.creator:
        return ok(next_cursor="", send_list=[])
    rows = []
    for ext in msg.external_userids:
        status = msg.results.get(ext, 0)
        row = {"external_userid": ext, "userid": msg.creator, "status": status}
        if status == 1:
            row["send_time"] = msg.send_time
        rows.append(row)
    paged = _page(rows, body, max_limit=1000, default=500)
    if paged is None:
        return error(40058, "invalid limit or cursor")
    page, cursor = paged
    return ok(next_cursor=cursor, send_list=page)


def _remind(fake: FakeWecom, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    msg = _find(fake, body)
    if msg is None:
        return error(40058, "invalid msgid")
    now = fake.now()
    with fake.lock:
        recent = [t for t in msg.reminders if now - t < 86400]
        if len(recent) >= REMINDS_PER_DAY:
            return error(REMIND_LIMIT_ERRCODE, "remind times exceed limit")
        msg.reminders.append(now)
    return ok()


def _cancel(fake: FakeWecom, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    msg = _find(fake, body)
    if msg is None:
        return error(40058, "invalid msgid")
    msg.cancelled = True
    return ok()


def _list_v2(fake: FakeWecom, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    try:
        start, end = int(body["start_time"]), int(body["end_time"])
    except (KeyError, TypeError, ValueError):
        return error(40058, "start_time and end_time required")
    if end < start or end - start > 31 * 86400:
        return error(40058, "time range exceeds one month")
    creator = body.get("creator") or ""
    items = [
        {
            "msgid": m.msgid,
            "creator": m.creator,
            "create_type": m.create_type,
            "create_time": str(m.create_time),
            "text": {"content": m.text},
            "attachments": m.attachments,
        }
        for m in sorted(group_msgs(fake).values(), key=lambda m: m.create_time)
        if start <= m.create_time <= end and (not creator or m.creator == creator)
    ]
    paged = _page(items, body, max_limit=100, default=50)
    if paged is None:
        return error(40058, "invalid limit or cursor")
    page, cursor = paged
    return ok(next_cursor=cursor, group_msg_list=page)


def confirm_group_message(fake: FakeWecom, msgid: str, userid: str) -> dict[str, int]:
    """The member sends the task: each customer gets 1 (sent), 2 (not a friend any more) or 3
    (WeCom's monthly cap already reached). Returns the results."""
    msg = group_msgs(fake)[msgid]
    assert msg.creator == userid and msg.status == 0 and not msg.cancelled
    now = fake.now()
    month_start, cap = _month_cap(now)
    with fake.lock:
        msg.status, msg.send_time = 2, int(now)
        for ext in msg.external_userids:
            got = [t for t in received(fake).get(ext, []) if t >= month_start]
            if not _is_friend(fake, ext, userid):
                msg.results[ext] = 2
            elif len(got) >= cap:
                msg.results[ext] = 3
            else:
                msg.results[ext] = 1
                received(fake).setdefault(ext, []).append(now)
    return dict(msg.results)


ROUTES.update(
    {
        ("POST", "externalcontact/add_msg_template"): _add_msg_template,
        ("POST", "externalcontact/get_groupmsg_task"): _get_groupmsg_task,
        ("POST", "externalcontact/get_groupmsg_send_result"): _get_groupmsg_send_result,
        ("POST", "externalcontact/remind_groupmsg_send"): _remind,
        ("POST", "externalcontact/cancel_groupmsg_send"): _cancel,
        ("POST", "externalcontact/get_groupmsg_list_v2"): _list_v2,
    }
)
