"""Pure parsing of callback XML into typed events, and the dedupe keys of events.

No database, no HTTP: the views decrypt, these functions read, ``services.handle_event`` acts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

# Callback bodies are a few hundred bytes; group events with member lists stay far below this.
MAX_XML_BYTES = 256 * 1024
_DECLARATIONS = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
MAX_DEDUPE_KEY = 300


class BadXml(ValueError):
    """Not the small, declaration-free XML document the platforms send."""


def parse_xml(body: bytes) -> dict[str, Any]:
    """``<xml><A>1</A><B><Item>..</Item><Item>..</Item></B></xml>`` -> ``{"A": "1", "B": {"Item": [..]}}``.

    A document type declaration or entity is refused before parsing: the platforms never send
    one, and it is the door to entity-expansion and external-entity attacks.
    """
    if len(body) > MAX_XML_BYTES:
        raise BadXml("XML body too large")
    if _DECLARATIONS.search(body):
        raise BadXml("XML declarations (DOCTYPE / ENTITY) are not accepted")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise BadXml(f"malformed XML: {exc}") from None
    value = _element_value(root)
    return value if isinstance(value, dict) else {}


def _element_value(element: ET.Element) -> Any:
    children = list(element)
    if not children:
        return (element.text or "").strip()
    out: dict[str, Any] = {}
    for child in children:
        value = _element_value(child)
        if child.tag in out:  # repeated tags (<Item>) become a list
            if not isinstance(out[child.tag], list):
                out[child.tag] = [out[child.tag]]
            out[child.tag].append(value)
        else:
            out[child.tag] = value
    return out


def _text(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name, "")
    return value if isinstance(value, str) else ""


def _int(payload: dict[str, Any], name: str) -> int | None:
    value = _text(payload, name)
    try:
        return int(value)
    except ValueError:
        return None


def create_time(payload: dict[str, Any]) -> dt.datetime | None:
    seconds = _int(payload, "CreateTime")
    if seconds is None or not 0 < seconds < 4_102_444_800:  # before 2100
        return None
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


# ---- WeCom events ------------------------------------------------------------------------


@dataclass(frozen=True)
class ExternalContactEvent:
    """``Event=change_external_contact`` (add / add_half / edit / del / del_follow_user / transfer_fail)."""

    change_type: str
    user_id: str
    external_user_id: str
    state: str = ""
    welcome_code: str = ""
    source: str = ""  # del_external_contact: DELETE_BY_TRANSFER when an on-job transfer removed it
    fail_reason: str = ""  # transfer_fail: customer_refused / customer_limit_exceed
    at: dt.datetime | None = None


@dataclass(frozen=True)
class ExternalChatEvent:
    """``Event=change_external_chat`` (create / update / dismiss)."""

    change_type: str
    chat_id: str
    update_detail: str = ""
    join_scene: int | None = None
    quit_scene: int | None = None
    member_change_count: int | None = None
    member_changes: list[str] = field(default_factory=list)
    last_member_version: str = ""
    member_version: str = ""
    at: dt.datetime | None = None


@dataclass(frozen=True)
class ExternalTagEvent:
    """``Event=change_external_tag`` on a corp tag or tag group."""

    change_type: str
    tag_id: str
    tag_type: str  # tag / tag_group
    strategy_id: str = ""
    at: dt.datetime | None = None


@dataclass(frozen=True)
class OaEvent:
    """An Official Account push: subscribe / unsubscribe / SCAN (and other events, kept as is)."""

    event: str
    openid: str
    app_user_name: str  # ToUserName: the account's original id (gh_...)
    event_key: str = ""
    scene: str = ""  # the parametric QR code's scene (qrscene_ prefix removed)
    ticket: str = ""
    at: dt.datetime | None = None
    app_id: str = ""  # the configured account's app id (not in the XML; set by the receiver)


@dataclass(frozen=True)
class OtherEvent:
    """Anything not modelled yet: stored in the receipt and acknowledged."""

    event: str
    change_type: str = ""
    at: dt.datetime | None = None


WecomEvent = ExternalContactEvent | ExternalChatEvent | ExternalTagEvent | OtherEvent
Event = WecomEvent | OaEvent


def parse_wecom_event(payload: dict[str, Any]) -> WecomEvent:
    event = _text(payload, "Event")
    change_type = _text(payload, "ChangeType")
    at = create_time(payload)
    if event == "change_external_contact":
        return ExternalContactEvent(
            change_type=change_type,
            user_id=_text(payload, "UserID"),
            external_user_id=_text(payload, "ExternalUserID"),
            state=_text(payload, "State"),
            welcome_code=_text(payload, "WelcomeCode"),
            source=_text(payload, "Source"),
            fail_reason=_text(payload, "FailReason"),
            at=at,
        )
    if event == "change_external_chat":
        changes = payload.get("MemChangeList")
        items = changes.get("Item", []) if isinstance(changes, dict) else []
        return ExternalChatEvent(
            change_type=change_type,
            chat_id=_text(payload, "ChatId"),
            update_detail=_text(payload, "UpdateDetail"),
            join_scene=_int(payload, "JoinScene"),
            quit_scene=_int(payload, "QuitScene"),
            member_change_count=_int(payload, "MemChangeCnt"),
            member_changes=[i for i in (items if isinstance(items, list) else [items]) if isinstance(i, str)],
            last_member_version=_text(payload, "LastMemVer"),
            member_version=_text(payload, "CurMemVer"),
            at=at,
        )
    if event == "change_external_tag":
        return ExternalTagEvent(
            change_type=change_type,
            tag_id=_text(payload, "Id"),
            tag_type=_text(payload, "TagType"),
            strategy_id=_text(payload, "StrategyId"),
            at=at,
        )
    return OtherEvent(event=event or _text(payload, "MsgType") or _text(payload, "InfoType"), change_type=change_type)


def wecom_dedupe_key(payload: dict[str, Any]) -> str:
    """(Event, ChangeType, UserID, ExternalUserID, CreateTime), plus the chat / tag id for those
    events (two groups created in one second are two events)."""
    parts = [_text(payload, name) for name in ("Event", "ChangeType", "UserID", "ExternalUserID", "CreateTime")]
    extra = _text(payload, "ChatId") or _text(payload, "Id") or _text(payload, "MsgId")
    if extra:
        parts.append(extra)
    return _bounded("|".join(parts))


def wecom_subject(payload: dict[str, Any]) -> str:
    """What a WeCom event is about, for ordering: events of one subject are applied in the
    order they arrived (an add and the delete that follows it, a chat's updates)."""
    if external := _text(payload, "ExternalUserID"):
        return f"contact|{external}"[:128]
    if chat := _text(payload, "ChatId"):
        return f"chat|{chat}"[:128]
    if _text(payload, "Event") == "change_external_tag":
        return "corp_tags"  # one corp tag list: its changes apply one at a time, in order
    return ""


# ---- Official Account --------------------------------------------------------------------


def parse_oa_event(payload: dict[str, Any], app_id: str = "") -> OaEvent | OtherEvent:
    if _text(payload, "MsgType") != "event":
        return OtherEvent(event=_text(payload, "MsgType"), at=create_time(payload))
    event = _text(payload, "Event")
    key = _text(payload, "EventKey")
    normalized = event.lower()
    if normalized == "subscribe":
        scene = key[len("qrscene_") :] if key.startswith("qrscene_") else ""
    elif normalized == "scan":
        scene = key
    else:
        scene = ""
    return OaEvent(
        event=normalized,
        openid=_text(payload, "FromUserName"),
        app_user_name=_text(payload, "ToUserName"),
        event_key=key,
        scene=scene,
        ticket=_text(payload, "Ticket"),
        at=create_time(payload),
        app_id=app_id,
    )


def oa_dedupe_key(payload: dict[str, Any]) -> str:
    """Messages carry a MsgId; events are identified by (FromUserName, CreateTime, Event)."""
    msg_id = _text(payload, "MsgId") or _text(payload, "MsgID")
    if msg_id:
        return _bounded(f"msg|{msg_id}")
    return _bounded("|".join(_text(payload, n) for n in ("FromUserName", "CreateTime", "Event", "EventKey")))


def oa_subject(payload: dict[str, Any]) -> str:
    follower = _text(payload, "FromUserName")
    return f"openid|{follower}"[:128] if follower else ""


def _bounded(key: str) -> str:
    if len(key) <= MAX_DEDUPE_KEY:
        return key
    return "sha256|" + hashlib.sha256(key.encode()).hexdigest()
