"""The providers' inbound pushes, parsed: delivery reports become ``Receipt``s, replies
(上行) become ``Reply``s. Pure functions; ``inbound`` and ``messaging`` apply them."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from siyu.channels.base import Receipt
from siyu.channels.sms import numbers
from siyu.core import clock
from siyu.core.errors import InvalidInput


@dataclass(frozen=True)
class Reply:
    """One SMS a customer sent back (上行)."""

    phone: str  # outbox form (see ``numbers.canonical``)
    content: str
    at: dt.datetime
    # Stable per reply, so a provider retrying its push records it once.
    key: str
    sign_name: str = ""


# ---- inbound: SmsReport and SmsUp (HTTP batch push) ---------------------------------------


def parse_aliyun_reports(items: list[Any]) -> tuple[list[Receipt], list[str]]:
    """SmsReport items to receipts; returns (receipts, one problem per bad item)."""
    receipts, problems = [], []
    for n, item in enumerate(items):
        try:
            if not isinstance(item, dict) or not isinstance(item.get("success"), bool):
                raise ValueError("needs an object with a boolean 'success'")
            out_id = str(item.get("out_id") or "").strip()
            biz_id = str(item.get("biz_id") or "").strip()
            phone = numbers.from_provider(str(item.get("phone_number") or ""))
            if not out_id.isdigit() and not biz_id:
                raise ValueError("needs out_id or biz_id")
            receipts.append(
                Receipt(
                    status="delivered" if item["success"] else "failed",
                    message_id=int(out_id) if out_id.isdigit() and len(out_id) <= 18 else None,
                    provider_ref=biz_id,
                    to_address=phone,
                    error_code=str(item.get("err_code") or "")[:64],
                    error_message=str(item.get("err_msg") or "")[:500],
                    at=numbers.china_time(item.get("report_time")),
                )
            )
        except (ValueError, InvalidInput) as exc:
            problems.append(f"[{n}] {getattr(exc, 'message', exc)}")
    return receipts, problems


def parse_aliyun_replies(items: list[Any]) -> tuple[list[Reply], list[str]]:
    """SmsUp items (``phone_number, send_time, content, sign_name, dest_code, sequence_id``)."""
    replies, problems = [], []
    for n, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise ValueError("needs an object")
            sequence_id = str(item.get("sequence_id") or "").strip()
            content = item.get("content")
            if not sequence_id or not isinstance(content, str):
                raise ValueError("needs sequence_id and content")
            replies.append(
                Reply(
                    phone=numbers.from_provider(str(item.get("phone_number") or "")),
                    content=content,
                    at=numbers.china_time(item.get("send_time")) or clock.now(),
                    key=f"aliyun:{sequence_id}",
                    sign_name=str(item.get("sign_name") or ""),
                )
            )
        except (ValueError, InvalidInput) as exc:
            problems.append(f"[{n}] {getattr(exc, 'message', exc)}")
    return replies, problems


# ---- inbound: status callbacks and replies -----------------------------------------------


def parse_tencent_statuses(items: list[Any]) -> tuple[list[Receipt], list[str]]:
    """Status callback items (``user_receive_time, nationcode, mobile, report_status, errmsg,
    description, sid``) to receipts, matched by SerialNo (``sid``) alone: it is per number."""
    receipts, problems = [], []
    for n, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise ValueError("needs an object")
            sid = str(item.get("sid") or "").strip()
            status = item.get("report_status")
            if not sid or status not in ("SUCCESS", "FAIL"):
                raise ValueError("needs sid and report_status SUCCESS|FAIL")
            receipts.append(
                Receipt(
                    status="delivered" if status == "SUCCESS" else "failed",
                    provider_ref=sid,
                    error_code="" if status == "SUCCESS" else str(item.get("errmsg") or "")[:64],
                    error_message=str(item.get("description") or "")[:500],
                    at=numbers.china_time(item.get("user_receive_time")),
                )
            )
        except ValueError as exc:
            problems.append(f"[{n}] {exc}")
    return receipts, problems


def parse_tencent_replies(items: list[Any]) -> tuple[list[Reply], list[str]]:
    """Reply callback objects (``extend, mobile, nationcode, sign, text, time``)."""
    replies, problems = [], []
    for n, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise ValueError("needs an object")
            text, when = item.get("text"), item.get("time")
            if isinstance(when, str) and when.strip().isdigit():
                when = int(when)
            if not isinstance(text, str) or not isinstance(when, int | float) or isinstance(when, bool):
                raise ValueError("needs text and a unix time")
            phone = numbers.from_provider(str(item.get("mobile") or ""), str(item.get("nationcode") or ""))
            # No reply id in this callback: a retried push repeats number, time and text.
            key = f"tencent:{int(when)}:{phone}:{_digest(text)}"
            replies.append(
                Reply(
                    phone=phone,
                    content=text,
                    at=dt.datetime.fromtimestamp(int(when), dt.UTC),
                    key=key,
                    sign_name=str(item.get("sign") or ""),
                )
            )
        except (ValueError, InvalidInput, OverflowError, OSError) as exc:
            problems.append(f"[{n}] {getattr(exc, 'message', exc)}")
    return replies, problems


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:12]
