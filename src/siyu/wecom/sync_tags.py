"""Corp tags (企业标签) both ways, and the customer tags WeCom's follow info carries.

Linking rules (the contract with operators):

- a siyu ``TagGroup`` with a ``wecom_group_id`` is *linked*: that is what marks a group for
  sync. Groups pulled from WeCom are linked; a siyu group with the same name as a WeCom group
  (and no link yet) is adopted, as is a tag with the same name in a linked group;
- siyu tags without a ``wecom_tag_id`` in a linked group are created in WeCom (``add_corp_tag``);
- WeCom is the master of linked tags: renamed, re-ordered or moved there -> the same in siyu;
  deleted there -> deleted in siyu (with its assignments). A linked group WeCom no longer has
  is unlinked, keeping its siyu-only tags;
- customer tags from follow info are stored with source ``wecom``; reconciliation removes only
  those, never a tag someone set in siyu.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from typing import Any

from django.db import connection, transaction

from siyu.channels.webhook.events import subscribed
from siyu.core.sql import ColumnType, id_list_condition, insert_rows
from siyu.customers.services import mark_changed
from siyu.messaging.services import emit_domain_events
from siyu.tags.models import CustomerTag, Tag, TagGroup, TagSource
from siyu.wecom.client import ConfigError, NetworkError, RateLimited, WecomClient, WecomError

TAG_INSERT: dict[str, ColumnType] = {
    "workspace_id": "int",
    "customer_id": "int",
    "tag_id": "int",
    "source": "text",
    "source_ref": "text",
    "created_at": "datetime",
}
SOURCE_REF = "wecom_sync"


def pull_corp_tags(
    workspace_id: int,
    groups: list[dict[str, Any]],
    *,
    tag_ids: set[str] | None = None,
    group_ids: set[str] | None = None,
) -> Counter[str]:
    """Make siyu's linked groups and tags what ``get_corp_tag_list`` says (call in a transaction).

    Without ``tag_ids`` / ``group_ids`` ``groups`` is the whole list: linked tags and groups
    missing from it are deleted / unlinked. With them (a callback about those ids, answered by
    ``get_corp_tag_list`` filtered to them) only those tags, and the tags of those groups, can
    be deleted, and only those groups unlinked."""
    partial = tag_ids is not None or group_ids is not None
    tag_ids, group_ids = tag_ids or set(), group_ids or set()
    counts: Counter[str] = Counter()
    siyu_groups = list(TagGroup.objects.filter(workspace_id=workspace_id))
    by_gid = {g.wecom_group_id: g for g in siyu_groups if g.wecom_group_id}
    names = {g.name: g for g in siyu_groups}
    tags = list(Tag.objects.filter(workspace_id=workspace_id))
    by_tid = {t.wecom_tag_id: t for t in tags if t.wecom_tag_id}
    tag_names = {(t.group_id, t.name): t for t in tags}
    seen_tags: set[str] = set()
    new_tags: list[Tag] = []
    for wgroup in groups:
        group = _pull_group(workspace_id, wgroup, by_gid, names, counts)
        for wtag in wgroup.get("tag") or []:
            if wtag.get("deleted"):
                continue
            tid, name, order = str(wtag["id"]), str(wtag.get("name", ""))[:100], int(wtag.get("order") or 0)
            seen_tags.add(tid)
            tag = by_tid.get(tid)
            if tag is None:
                adopt = tag_names.get((group.pk, name))
                if adopt is None or adopt.wecom_tag_id:
                    new = Tag(workspace_id=workspace_id, group=group, name=name, sort=order, wecom_tag_id=tid)
                    new_tags.append(new)
                    tag_names[(group.pk, name)] = new
                    continue
                tag = adopt
            if _update_tag(tag, group, tid, name, order, tag_names):
                counts["corp_tags_updated"] += 1
    Tag.objects.bulk_create(new_tags)
    counts["corp_tags_created"] += len(new_tags)
    group_gid = {g.pk: g.wecom_group_id for g in siyu_groups}
    gone = [
        t.pk
        for t in by_tid.values()
        if t.wecom_tag_id not in seen_tags
        and (not partial or t.wecom_tag_id in tag_ids or group_gid.get(t.group_id) in group_ids)
    ]
    if gone:
        Tag.objects.filter(pk__in=gone).delete()
        counts["corp_tags_deleted"] += len(gone)
    live_groups = {str(g["group_id"]) for g in groups}
    stale = TagGroup.objects.filter(workspace_id=workspace_id).exclude(wecom_group_id="")
    if partial:
        stale = stale.filter(wecom_group_id__in=group_ids)
    counts["tag_groups_unlinked"] += stale.exclude(wecom_group_id__in=live_groups).update(wecom_group_id="")
    return counts


def _pull_group(
    workspace_id: int,
    wgroup: dict[str, Any],
    by_gid: dict[str, TagGroup],
    names: dict[str, TagGroup],
    counts: Counter[str],
) -> TagGroup:
    gid, name, order = str(wgroup["group_id"]), str(wgroup.get("group_name", ""))[:100], int(wgroup.get("order") or 0)
    group = by_gid.get(gid)
    if group is None:
        adopt = names.get(name)
        if adopt is not None and not adopt.wecom_group_id:
            group = adopt
        else:
            # A siyu group linked elsewhere holds the name: keep both, told apart.
            label = name if adopt is None else f"{name[:80]}（{gid[-8:]}）"
            group = TagGroup.objects.create(workspace_id=workspace_id, name=label, sort=order, wecom_group_id=gid)
            names[label] = by_gid[gid] = group
            counts["tag_groups_created"] += 1
            return group
    changed = []
    if group.wecom_group_id != gid:
        group.wecom_group_id = gid
        changed.append("wecom_group_id")
    if group.name != name and name not in names:
        names.pop(group.name, None)
        group.name, names[name] = name, group
        changed.append("name")
    if group.sort != order:
        group.sort = order
        changed.append("sort")
    if changed:
        group.save(update_fields=changed)
        counts["tag_groups_updated"] += 1
    return group


def _update_tag(tag: Tag, group: TagGroup, tid: str, name: str, order: int, names: dict[tuple[int, str], Tag]) -> bool:
    changed = []
    if tag.wecom_tag_id != tid:
        tag.wecom_tag_id = tid
        changed.append("wecom_tag_id")
    if tag.group_id != group.pk and (group.pk, tag.name) not in names:
        names.pop((tag.group_id, tag.name), None)
        tag.group, names[(group.pk, tag.name)] = group, tag
        changed.append("group")
    if tag.name != name and (tag.group_id, name) not in names:
        names.pop((tag.group_id, tag.name), None)
        tag.name, names[(tag.group_id, name)] = name, tag
        changed.append("name")
    if tag.sort != order:
        tag.sort = order
        changed.append("sort")
    if changed:
        tag.save(update_fields=changed)
    return bool(changed)


def push_corp_tags(client: WecomClient, workspace_id: int, live_groups: set[str]) -> tuple[int, Counter[str], str]:
    """siyu tags without a WeCom id in a linked group -> ``add_corp_tag``, one call per group.

    Returns (calls made, counts, error text or ""). A code WeCom gives for one group (a name it
    refuses, the 3,000-tag cap) is reported and the other groups still sync; throttling,
    network and configuration errors end the run.
    """
    counts: Counter[str] = Counter()
    error = ""
    pending: dict[str, list[Tag]] = defaultdict(list)
    for tag in Tag.objects.filter(workspace_id=workspace_id, wecom_tag_id="").select_related("group"):
        if tag.group.wecom_group_id in live_groups:
            pending[tag.group.wecom_group_id].append(tag)
    for gid, tags in sorted(pending.items()):
        body = {"group_id": gid, "tag": [{"name": t.name, "order": max(t.sort, 0)} for t in tags]}
        try:
            answer = client.post("externalcontact/add_corp_tag", body)
        except (ConfigError, RateLimited, NetworkError):
            raise
        except WecomError as exc:
            counts["corp_tags_push_failed"] += len(tags)
            error = f"推送标签到企业微信失败：错误码 {exc.errcode}（{', '.join(t.name for t in tags)[:200]}）"
            continue
        created = (answer.get("tag_group") or {}).get("tag") or []
        ids = {str(t.get("name")): str(t.get("id")) for t in created}
        for tag in tags:
            if ids.get(tag.name):
                counts["corp_tags_pushed"] += Tag.objects.filter(pk=tag.pk, wecom_tag_id="").update(
                    wecom_tag_id=ids[tag.name]
                )
    return len(pending), counts, error


def apply_customer_tags(
    workspace_id: int,
    wanted_tags: dict[int, set[int]],
    linked: set[int],
    *,
    now: dt.datetime,
    complete: bool,
    only_customers: bool = False,
) -> Counter[str]:
    """Add the linked tags WeCom's follow info gives each customer; with ``complete`` (every
    member's contacts were read) also remove ``wecom``-sourced ones WeCom no longer has. With
    ``only_customers`` only the customers in ``wanted_tags`` are looked at (one contact's
    edit), not the whole workspace."""
    counts: Counter[str] = Counter()
    existing: dict[tuple[int, int], tuple[int, str]] = {}
    if linked:
        condition, params = id_list_condition("tag_id", sorted(linked))
        if only_customers:
            customers, customer_params = id_list_condition("customer_id", sorted(wanted_tags))
            condition, params = f"{condition} AND {customers}", [*params, *customer_params]
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, customer_id, tag_id, source FROM tags_customertag WHERE workspace_id = %s AND {condition}",
                [workspace_id, *params],
            )
            existing = {(c, t): (pk, source) for pk, c, t, source in cursor.fetchall()}
    wanted = {(c, t) for c, tags in wanted_tags.items() for t in tags}
    add = sorted(wanted - set(existing))
    remove: list[tuple[int, int]] = []
    if complete:  # otherwise a follow not read yet may still carry the tag
        remove = [(pk, c) for (c, t), (pk, src) in existing.items() if src == TagSource.WECOM and (c, t) not in wanted]
    with transaction.atomic():
        insert_rows(
            "tags_customertag",
            TAG_INSERT,
            [(workspace_id, c, t, TagSource.WECOM, SOURCE_REF, now) for c, t in add],
            ignore_conflicts=True,
        )
        if remove:
            condition, params = id_list_condition("id", [pk for pk, _ in remove])
            with connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM tags_customertag WHERE {condition}", params)
        mark_changed(workspace_id, {c for c, _ in add} | {c for _, c in remove})
    counts["tags_added"] += len(add)
    counts["tags_removed"] += len(remove)
    if add and subscribed(workspace_id, "tag.added"):
        rows = CustomerTag.objects.filter(
            workspace_id=workspace_id, source=TagSource.WECOM, source_ref=SOURCE_REF, created_at=now
        ).values_list("pk", "customer_id", "tag_id")
        emit_domain_events(
            workspace_id,
            "tag.added",
            [{"customer_id": c, "tag_id": t, "source": "wecom"} for _, c, t in rows],
            keys=[f"tag.added:{pk}" for pk, _, _ in rows],
        )
    return counts
