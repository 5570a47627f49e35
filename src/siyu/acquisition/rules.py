"""Pure rules for channel codes: schedules, who a rotating code adds to right now, states,
welcome attachments and what a WeCom error means to the operator. No database, no clock:
``now`` is always passed in (as a wall-clock time in the workspace's zone).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from siyu.core.errors import InvalidInput

DAY_MINUTES = 24 * 60
TIME = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")
STATE_CHARS = re.compile(r"^[A-Za-z0-9_\-.]{1,30}$")
MAX_ATTACHMENTS = 9  # WeCom send_welcome_msg


# ---- schedules -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """Weekdays (ISO 1-7) and minute ranges ``[start, end)``; empty means "always"."""

    weekdays: frozenset[int] = frozenset()
    ranges: tuple[tuple[int, int], ...] = ()

    @property
    def always(self) -> bool:
        return not self.weekdays and not self.ranges


def _minutes(text: Any, field: str) -> int:
    match = TIME.match(str(text).strip())
    if not match:
        raise InvalidInput(f"时间应为 HH:MM（如 09:30）/ time must be HH:MM: {text!r}", field=field)
    hours, minutes = int(match.group(1)), int(match.group(2))
    total = hours * 60 + minutes
    if total > DAY_MINUTES:
        raise InvalidInput(f"时间超出 24:00 / time after 24:00: {text!r}", field=field)
    return total


def parse_schedule(raw: Any, *, field: str = "schedule") -> Schedule:
    """``{"weekdays": [1, 2], "ranges": [["09:00", "18:00"]]}`` → Schedule; InvalidInput naming
    ``field`` otherwise. A range whose end is before its start crosses midnight."""
    if raw in (None, "", {}):
        return Schedule()
    if not isinstance(raw, dict) or set(raw) - {"weekdays", "ranges"}:
        raise InvalidInput('排班格式应为 {"weekdays": [...], "ranges": [[开始, 结束]]}', field=field)
    weekdays = raw.get("weekdays") or []
    if not isinstance(weekdays, list) or any(not isinstance(d, int) or not 1 <= d <= 7 for d in weekdays):
        raise InvalidInput("星期应为 1（周一）到 7（周日）/ weekdays are 1 (Mon) to 7 (Sun)", field=f"{field}.weekdays")
    ranges = []
    for index, pair in enumerate(raw.get("ranges") or []):
        where = f"{field}.ranges.{index}"
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise InvalidInput("时间段应为 [开始, 结束] / a range is [start, end]", field=where)
        start, end = _minutes(pair[0], where), _minutes(pair[1], where)
        if start in (end, DAY_MINUTES):
            raise InvalidInput("时间段的开始与结束不能相同 / a range cannot be empty", field=where)
        ranges.append((start, end))
    return Schedule(frozenset(weekdays), tuple(ranges))


def schedule_json(schedule: Schedule) -> dict[str, Any]:
    def hhmm(m: int) -> str:
        return f"{m // 60:02d}:{m % 60:02d}"

    if schedule.always:
        return {}
    return {"weekdays": sorted(schedule.weekdays), "ranges": [[hhmm(s), hhmm(e)] for s, e in schedule.ranges]}


def on_schedule(schedule: Schedule, local_now: dt.datetime) -> bool:
    """Is ``local_now`` (wall clock in the workspace zone) inside the schedule?

    A midnight-crossing range (22:00–02:00) belongs to the weekday it starts on: Friday
    22:00–02:00 covers Saturday 01:00, and not Friday 01:00.
    """
    if schedule.always:
        return True
    today = local_now.isoweekday()
    yesterday = (local_now - dt.timedelta(days=1)).isoweekday()
    minute = local_now.hour * 60 + local_now.minute

    def day_ok(day: int) -> bool:
        return not schedule.weekdays or day in schedule.weekdays

    if not schedule.ranges:
        return day_ok(today)
    for start, end in schedule.ranges:
        if start < end:
            if day_ok(today) and start <= minute < end:
                return True
        elif (day_ok(today) and minute >= start) or (day_ok(yesterday) and minute < end):
            return True
    return False


# ---- rotation --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    """One staff entry of a code, with how many adds it had today."""

    staff_id: int
    userid: str
    position: int = 0
    daily_cap: int = 0
    is_backup: bool = False
    schedule: Schedule = Schedule()
    adds_today: int = 0


@dataclass(frozen=True)
class Rotation:
    staff_ids: tuple[int, ...]
    userids: tuple[str, ...]
    using_backups: bool = False
    reason: str = ""  # why the list is what it is, for the operator (Chinese)
    skipped: dict[int, str] = field(default_factory=dict)  # staff id -> capped / off_schedule / no_userid


def _available(slot: Slot, local_now: dt.datetime) -> str:
    if not slot.userid:
        return "no_userid"
    if slot.daily_cap and slot.adds_today >= slot.daily_cap:
        return "capped"
    if not on_schedule(slot.schedule, local_now):
        return "off_schedule"
    return ""


def rotate(slots: Sequence[Slot], local_now: dt.datetime) -> Rotation:
    """Who the contact way should add to now.

    The primary staff in order who are on schedule and under their daily cap; when none is,
    the backups who are (a backup with no schedule and no cap is always there). When nobody
    is available the rotation is empty and ``reason`` says why; the caller then leaves the
    contact way as it is (WeCom refuses an empty user list).
    """
    ordered = sorted(slots, key=lambda s: (s.position, s.staff_id))
    skipped = {s.staff_id: why for s in ordered if (why := _available(s, local_now))}
    primary = [s for s in ordered if not s.is_backup and s.staff_id not in skipped]
    if primary:
        return Rotation(tuple(s.staff_id for s in primary), tuple(s.userid for s in primary), False, "", skipped)
    backups = [s for s in ordered if s.is_backup and s.staff_id not in skipped]
    if backups:
        return Rotation(
            tuple(s.staff_id for s in backups),
            tuple(s.userid for s in backups),
            True,
            "主成员均已达今日上限或不在排班时间，已切换到备用成员",
            skipped,
        )
    if not ordered:
        reason = "活码没有成员"
    elif all(why == "no_userid" for why in skipped.values()):
        reason = "成员都没有企业微信账号（userid）"
    else:
        reason = "所有成员（含备用）均已达今日上限、不在排班时间或没有企业微信账号"
    return Rotation((), (), False, reason, skipped)


# ---- states, attachments, contact ways -------------------------------------------------------


def default_state(code_id: int) -> str:
    """``c<base36 id>``: short, unique per workspace, well inside WeCom's 30 characters."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out, n = "", code_id
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return "c" + (out or "0")


def check_state(state: str) -> str:
    state = state.strip()
    if not STATE_CHARS.match(state):
        raise InvalidInput(
            "state 为 1–30 位字母、数字或 _ - . / state is 1-30 letters, digits, _ - or .", field="state"
        )
    return state


def _text(value: Any, field: str, limit: int, *, required: bool = True) -> str:
    text = str(value or "").strip()
    if required and not text:
        raise InvalidInput("必填 / required", field=field)
    if len(text) > limit:
        raise InvalidInput(f"不能超过 {limit} 字 / at most {limit} characters", field=field)
    return text


def _url(value: Any, field: str, *, required: bool = True) -> str:
    url = _text(value, field, 1000, required=required)
    if url and not re.match(r"^https?://\S+$", url):
        raise InvalidInput("应为 http(s):// 网址 / must be an http(s) URL", field=field)
    return url


def check_attachments(raw: Any, *, extra: int = 0) -> list[dict[str, Any]]:
    """Validate welcome attachments in WeCom's shape (image by media_id or pic_url, link,
    miniprogram) and return them cleaned; ``extra`` counts attachments added later (the
    group QR), since WeCom takes at most 9 in all."""
    if raw in (None, ""):
        return []
    if not isinstance(raw, list):
        raise InvalidInput("附件应为列表 / attachments must be a list", field="welcome_attachments")
    if len(raw) + extra > MAX_ATTACHMENTS:
        raise InvalidInput(
            f"附件最多 {MAX_ATTACHMENTS} 个（含群二维码）/ at most {MAX_ATTACHMENTS} attachments",
            field="welcome_attachments",
        )
    out = []
    for index, item in enumerate(raw):
        where = f"welcome_attachments.{index}"
        kind = item.get("msgtype") if isinstance(item, dict) else None
        body = item.get(kind) if isinstance(item, dict) and kind else None
        if kind not in ("image", "link", "miniprogram") or not isinstance(body, dict):
            raise InvalidInput("附件类型应为 image、link 或 miniprogram", field=f"{where}.msgtype")
        if kind == "image":
            media_id = _text(body.get("media_id"), f"{where}.image.media_id", 200, required=False)
            pic_url = _url(body.get("pic_url"), f"{where}.image.pic_url", required=False)
            if not media_id and not pic_url:
                raise InvalidInput("图片需要 media_id 或 pic_url", field=f"{where}.image.pic_url")
            clean = {"media_id": media_id} if media_id else {"pic_url": pic_url}
        elif kind == "link":
            clean = {
                "title": _text(body.get("title"), f"{where}.link.title", 128),
                "url": _url(body.get("url"), f"{where}.link.url"),
            }
            if body.get("picurl"):
                clean["picurl"] = _url(body.get("picurl"), f"{where}.link.picurl")
            if body.get("desc"):
                clean["desc"] = _text(body.get("desc"), f"{where}.link.desc", 512)
        else:
            clean = {
                "title": _text(body.get("title"), f"{where}.miniprogram.title", 64),
                "pic_media_id": _text(body.get("pic_media_id"), f"{where}.miniprogram.pic_media_id", 200),
                "appid": _text(body.get("appid"), f"{where}.miniprogram.appid", 64),
                "page": _text(body.get("page"), f"{where}.miniprogram.page", 300),
            }
        out.append({"msgtype": kind, kind: clean})
    return out


def contact_way_type(kind: str) -> int:
    """WeCom's contact way ``type``: 1 for a single-staff code, 2 (multi) for the others.
    The type cannot change later (update_contact_way has no ``type``)."""
    return 1 if kind == "staff" else 2


# WeCom errcode -> what the operator should do (Chinese first).
SYNC_ERRORS: dict[int, tuple[str, str]] = {
    41045: (
        "企业通过 API 创建的「联系我」二维码已达上限：请归档不再使用的活码后重试。",
        "The corp reached WeCom's quota of API-made contact ways: archive codes you no longer use.",
    ),
    40058: (
        "企业微信认为参数不正确（如成员列表或 state 过长）。",
        "WeCom rejected a parameter (e.g. the staff list or the state is too long).",
    ),
    60011: (
        "有成员不在自建应用的可见范围内：请在应用「可见范围」中加入这些成员后重试。",
        "Some staff are outside the app's visibility: add them to the app's 可见范围.",
    ),
    84074: (
        "应用没有客户联系权限：请在「客户联系 → API → 可调用接口的应用」中加入本应用。",
        "The app has no customer-contact permission: add it under 客户联系 → API.",
    ),
    41054: ("有成员尚未激活企业微信。", "Some staff have not activated WeCom."),
    48002: ("应用无权调用该接口：请在「客户联系 → API」中授权本应用。", "The app may not call this API."),
}


def sync_error_message(errcode: int | None, errmsg: str = "") -> str:
    known = SYNC_ERRORS.get(errcode or 0)
    if known:
        detail = f"（{errmsg[:120]}）" if errcode == 40058 and errmsg else ""
        return f"{known[0]}{detail} / {known[1]}"
    if errcode is None:
        return f"无法连接企业微信，请稍后重试 / cannot reach WeCom: {errmsg[:120]}"
    return f"企业微信返回错误码 {errcode} / WeCom answered errcode {errcode}: {errmsg[:120]}"


def sync_error_field(errcode: int | None) -> str:
    return "staff" if errcode in (60011, 41054) else "wecom"
