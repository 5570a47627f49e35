"""Writing WeCom customer groups (客户群) and their members as reconciliation read them.

``apply_groups`` takes what ``groupchat/list`` and ``groupchat/get`` returned and writes the
difference set-based: groups created or changed, groups no longer listed marked dismissed (only
after a complete list), members joined, changed, back again, or left.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from siyu.core.sql import ColumnType, insert_rows, update_from_values
from siyu.customers.rules import IdentityKey
from siyu.customers.services import lookup_identities, mark_changed
from siyu.wecom.sync_models import ExternalGroup, ExternalGroupMember

MEMBER_COLUMNS: dict[str, ColumnType] = {
    "workspace_id": "int",
    "group_id": "int",
    "member_id": "text",
    "type": "int",
    "customer_id": "int",
    "staff_id": "int",
    "join_time": "datetime",
    "join_scene": "int",
    "invitor": "text",
    "unionid": "text",
    "state": "text",
    "group_nickname": "text",
    "name": "text",
    "left_at": "datetime",
}
# Compared to decide whether a stored member changed (and what an update writes).
MEMBER_FIELDS = ("type", "customer_id", "staff_id", "join_time", "join_scene", "invitor", "unionid", "state")
MEMBER_FIELDS += ("group_nickname", "name")
GROUP_FIELDS = ("name", "owner_userid", "owner_staff_id", "notice", "wecom_status", "member_version", "created_at")


def _timestamp(seconds: Any) -> dt.datetime | None:
    try:
        value = int(seconds)
    except (TypeError, ValueError):
        return None
    return dt.datetime.fromtimestamp(value, tz=dt.UTC) if value > 0 else None


def _comparable(value: Any) -> Any:
    return int(value.timestamp()) if isinstance(value, dt.datetime) else value


def apply_groups(
    workspace_id: int,
    listed: dict[str, int],
    details: dict[str, dict[str, Any]],
    staff_ids: dict[str, int],
    *,
    now: dt.datetime,
    complete: bool,
) -> Counter[str]:
    """Write ``details`` (chat_id -> ``group_chat``) for the groups in ``listed`` (chat_id ->
    list status). With ``complete`` the list was read to the end, so groups missing from it
    are dismissed. Returns the counts for the run's report."""
    counts: Counter[str] = Counter()
    group_ids = _apply_group_rows(workspace_id, listed, details, staff_ids, now, complete, counts)
    _apply_members(workspace_id, details, group_ids, staff_ids, now, counts)
    return counts


def _apply_group_rows(
    workspace_id: int,
    listed: dict[str, int],
    details: dict[str, dict[str, Any]],
    staff_ids: dict[str, int],
    now: dt.datetime,
    complete: bool,
    counts: Counter[str],
) -> dict[str, int]:
    rows = ExternalGroup.objects.filter(workspace_id=workspace_id)
    if not complete:  # only the groups read (one callback's chat) can change
        rows = rows.filter(chat_id__in=list(details))
    existing = {g.chat_id: g for g in rows}
    new: list[ExternalGroup] = []
    changed: list[ExternalGroup] = []
    for chat_id, chat in details.items():
        owner = str(chat.get("owner") or "")
        values = {
            "name": str(chat.get("name") or "")[:200],
            "owner_userid": owner[:64],
            "owner_staff_id": staff_ids.get(owner),
            "notice": str(chat.get("notice") or ""),
            "wecom_status": listed.get(chat_id, 0),
            "member_version": str(chat.get("member_version") or "")[:64],
            "created_at": _timestamp(chat.get("create_time")),
        }
        group = existing.get(chat_id)
        if group is None:
            new.append(ExternalGroup(workspace_id=workspace_id, chat_id=chat_id, synced_at=now, **values))
            continue
        differs = any(_comparable(getattr(group, k)) != _comparable(v) for k, v in values.items())
        if differs or group.dismissed_at is not None:
            for key, value in values.items():
                setattr(group, key, value)
            group.dismissed_at, group.synced_at = None, now
            changed.append(group)
    ExternalGroup.objects.bulk_create(new, batch_size=1000)
    ExternalGroup.objects.bulk_update(changed, [*GROUP_FIELDS, "dismissed_at", "synced_at"], batch_size=1000)
    counts["groups_created"] += len(new)
    counts["groups_updated"] += len(changed)
    if complete:
        gone = [g.pk for chat_id, g in existing.items() if chat_id not in listed and g.dismissed_at is None]
        counts["groups_dismissed"] += ExternalGroup.objects.filter(pk__in=gone).update(dismissed_at=now)
    return dict(
        ExternalGroup.objects.filter(workspace_id=workspace_id, chat_id__in=list(details)).values_list("chat_id", "pk")
    )


def _apply_members(
    workspace_id: int,
    details: dict[str, dict[str, Any]],
    group_ids: dict[str, int],
    staff_ids: dict[str, int],
    now: dt.datetime,
    counts: Counter[str],
) -> None:
    externals = {
        str(m.get("userid"))
        for chat in details.values()
        for m in chat.get("member_list") or []
        if int(m.get("type") or 0) == 2 and m.get("userid")
    }
    customers = {
        key.value: cid
        for key, cid in lookup_identities(
            workspace_id, [IdentityKey("wecom_external_userid", "", e) for e in sorted(externals)]
        ).items()
    }
    wanted: dict[tuple[int, str], dict[str, Any]] = {}
    for chat_id, chat in details.items():
        for member in chat.get("member_list") or []:
            member_id = str(member.get("userid") or "")[:64]
            if not member_id:
                continue
            kind = int(member.get("type") or 2)
            invitor = member.get("invitor") or {}
            wanted[(group_ids[chat_id], member_id)] = {
                "type": kind,
                "customer_id": customers.get(member_id) if kind == 2 else None,
                "staff_id": staff_ids.get(member_id) if kind == 1 else None,
                "join_time": _timestamp(member.get("join_time")),
                "join_scene": int(member.get("join_scene") or 0),
                "invitor": str(invitor.get("userid") or "")[:64] if isinstance(invitor, dict) else "",
                "unionid": str(member.get("unionid") or "")[:128],
                "state": str(member.get("state") or "")[:64],
                "group_nickname": str(member.get("group_nickname") or "")[:100],
                "name": str(member.get("name") or "")[:100],
            }
    stored = ExternalGroupMember.objects.filter(group_id__in=list(group_ids.values())).values_list(
        "pk", "group_id", "member_id", "left_at", *MEMBER_FIELDS
    )
    existing = {(row[1], row[2]): row for row in stored}
    inserts, updates, left = [], [], []
    touched: set[int] = set()
    for (group_id, member_id), values in wanted.items():
        row = existing.get((group_id, member_id))
        if row is None:
            inserts.append((workspace_id, group_id, member_id, *(values[f] for f in MEMBER_FIELDS), None))
            counts["members_joined"] += 1
        else:
            old = dict(zip(MEMBER_FIELDS, row[4:], strict=True))
            same = all(_comparable(old[f]) == _comparable(values[f]) for f in MEMBER_FIELDS)
            if same and row[3] is None:
                continue
            updates.append((row[0], *(values[f] for f in MEMBER_FIELDS)))
            counts["members_joined" if row[3] is not None else "members_updated"] += 1
        if values["customer_id"]:
            touched.add(values["customer_id"])
    for (group_id, member_id), row in existing.items():
        if (group_id, member_id) not in wanted and row[3] is None:
            left.append((row[0], now))
            customer_id = row[4 + MEMBER_FIELDS.index("customer_id")]
            if customer_id:
                touched.add(customer_id)
    insert_rows(
        "wecom_externalgroupmember",
        {k: MEMBER_COLUMNS[k] for k in ("workspace_id", "group_id", "member_id", *MEMBER_FIELDS, "left_at")},
        inserts,
        ignore_conflicts=True,
    )
    update_columns = {"id": "int", **{f: MEMBER_COLUMNS[f] for f in MEMBER_FIELDS}}
    update_from_values(
        "wecom_externalgroupmember",
        update_columns,
        updates,
        assignments={**{f: f"v.{f}" for f in MEMBER_FIELDS}, "left_at": "NULL"},
    )
    update_from_values(
        "wecom_externalgroupmember",
        {"id": "int", "left_at": "datetime"},
        left,
        where="{t}.left_at IS NULL",
    )
    counts["members_left"] += len(left)
    counts["members_seen"] += len(wanted)
    mark_changed(workspace_id, touched)
