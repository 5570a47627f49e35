"""Callback events that need an API read before they can be applied (PROTOCOLS.md §2.2).

The events only say *that* something changed (a member edited a contact, a group changed, a
corp tag changed); what it is now comes from ``externalcontact/get``, ``groupchat/get`` or
``get_corp_tag_list``, written with the same code reconciliation uses (``sync_tags``,
``sync_groups``). They run in the inbox (``siyu.wecom.inbox``), never in the endpoint: a
failed or throttled read raises, and the receipt is retried with back-off.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from siyu.core import clock
from siyu.core.errors import InvalidInput
from siyu.customers.models import Customer, StaffRelation
from siyu.customers.rules import IdentityKey, normalize_identity
from siyu.customers.services import Entry, lookup_identities, mark_changed, place_entries
from siyu.org.models import Staff, Workspace
from siyu.tags.models import CustomerTag, Tag, TagSource
from siyu.tracking.services import record_system_events
from siyu.wecom import rules
from siyu.wecom.client import WecomClient, WecomError
from siyu.wecom.sync_groups import apply_groups
from siyu.wecom.sync_models import ExternalGroup
from siyu.wecom.sync_tags import apply_customer_tags, pull_corp_tags

NOT_A_CONTACT = {40096, 84061}  # invalid external_userid / no longer an external contact
CHAT_NOT_FOUND = 40050
CORP_TAG = 1  # follow_user.tags[].type: 1 corp tag, 2 personal tag, 3 rule tag
GENDERS = {1: "m", 2: "f"}


def _client(workspace: Workspace) -> WecomClient:
    from siyu.wecom.services import client_for

    return client_for(workspace)


def _timestamp(seconds: Any) -> dt.datetime | None:
    try:
        value = int(seconds)
    except (TypeError, ValueError):
        return None
    return dt.datetime.fromtimestamp(value, tz=dt.UTC) if value > 0 else None


# ---- edit_external_contact ---------------------------------------------------------------------


def read_contact(client: WecomClient, external_userid: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """``externalcontact/get`` with every page of follow users; None when WeCom no longer
    knows the contact (nothing to apply)."""
    follows: list[dict[str, Any]] = []
    cursor = ""
    while True:
        query: dict[str, Any] = {"external_userid": external_userid}
        if cursor:
            query["cursor"] = cursor
        try:
            answer = client.get("externalcontact/get", **query)
        except WecomError as exc:
            if exc.errcode in NOT_A_CONTACT:
                return None
            raise
        follows.extend(answer.get("follow_user") or [])
        cursor = str(answer.get("next_cursor") or "")
        if not cursor:
            return answer.get("external_contact") or {}, follows


def contact_edited(workspace: Workspace, event: rules.ExternalContactEvent) -> None:
    """A member edited a contact (remark, description, tags): re-read it and apply the
    relation's remark and description, the customer's corp tags (``wecom``-sourced ones WeCom
    dropped are removed; tags set in siyu stay), a missing name and the unionid identity. What
    changed goes on the timeline as ``wecom_contact_edited``."""
    from siyu.wecom.services import staff_for_userid

    with _client(workspace) as client:
        read = read_contact(client, event.external_user_id)
    if read is None:
        return
    contact, follows = read
    follow = next((f for f in follows if str(f.get("userid")) == event.user_id), None)
    if follow is None:
        return  # the member no longer has the contact: del_external_contact says so
    at = event.at or clock.now()
    staff = staff_for_userid(workspace, event.user_id)
    customer_id = _place_contact(workspace, event.external_user_id, contact, staff.pk)
    if customer_id is None:
        return
    changes: dict[str, Any] = {}
    remark, description = str(follow.get("remark") or "")[:100], str(follow.get("description") or "")[:200]
    relation = StaffRelation.objects.filter(staff=staff, customer_id=customer_id).first()
    if relation is None:
        StaffRelation.objects.create(
            workspace=workspace,
            staff=staff,
            customer_id=customer_id,
            added_at=_timestamp(follow.get("createtime")) or at,
            add_way=int(follow.get("add_way") or 0),
            state=str(follow.get("state") or "")[:64],
            remark=remark,
            description=description,
            status=StaffRelation.Status.ACTIVE,
            status_changed_at=at,
        )
        changes.update(remark=remark, description=description)
    elif (relation.remark, relation.description) != (remark, description):
        if relation.remark != remark:
            changes["remark"] = remark
        if relation.description != description:
            changes["description"] = description
        relation.remark, relation.description = remark, description
        relation.save(update_fields=["remark", "description"])
    name = str(contact.get("name") or "")[:100]
    if name and Customer.objects.filter(pk=customer_id, name="").update(name=name, updated_at=clock.now()):
        changes["name"] = name
    changes.update(_apply_contact_tags(workspace, customer_id, follows))
    if changes:
        properties = {"staff_id": staff.pk, "userid": event.user_id, **changes}
        record_system_events(workspace.pk, [(customer_id, "wecom_contact_edited", properties, at)], source="wecom")
        mark_changed(workspace.pk, [customer_id])


def _place_contact(workspace: Workspace, external_userid: str, contact: dict[str, Any], staff_id: int) -> int | None:
    """The customer of the contact, linking its unionid (OneID decides merges) or creating it
    (a missed add) with WeCom's name and the editing member as owner."""
    try:
        keys = [normalize_identity("wecom_external_userid", external_userid)]
        if contact.get("unionid"):
            keys.append(normalize_identity("wechat_unionid", str(contact["unionid"])))
    except InvalidInput:
        return None
    known = lookup_identities(workspace.pk, keys)
    if all(k in known for k in keys) and len({known[k] for k in keys}) == 1:
        return known[keys[0]]
    profile: dict[str, Any] = {}
    if not known:
        profile = {"name": str(contact.get("name") or "")[:100], "source_channel": "wecom", "owner_staff_id": staff_id}
        if contact.get("gender") in GENDERS:
            profile["gender"] = GENDERS[contact["gender"]]
    [placement] = place_entries(workspace, [Entry(index=0, keys=keys, profile=profile)], source="wecom")
    return placement.customer_id


def _apply_contact_tags(workspace: Workspace, customer_id: int, follows: list[dict[str, Any]]) -> dict[str, Any]:
    """The customer's linked corp tags become the union of every follow's corp tags."""
    tag_of = dict(Tag.objects.filter(workspace=workspace).exclude(wecom_tag_id="").values_list("wecom_tag_id", "pk"))
    wanted = {
        tag_of[str(t.get("tag_id"))]
        for f in follows
        for t in f.get("tags") or []
        if int(t.get("type") or CORP_TAG) == CORP_TAG and str(t.get("tag_id")) in tag_of
    }
    linked = set(tag_of.values())
    have = dict(CustomerTag.objects.filter(customer_id=customer_id, tag_id__in=linked).values_list("tag_id", "source"))
    added = sorted(wanted - set(have))
    removed = sorted(t for t, source in have.items() if source == TagSource.WECOM and t not in wanted)
    if not added and not removed:
        return {}
    apply_customer_tags(
        workspace.pk, {customer_id: wanted}, linked, now=clock.now(), complete=True, only_customers=True
    )
    return {"tags_added": added, "tags_removed": removed}


# ---- transfer_fail -----------------------------------------------------------------------------


def transfer_failed(workspace: Workspace, event: rules.ExternalContactEvent) -> None:
    """An on-job transfer (在职继承) failed: the customer refused or the takeover member is at
    the cap. The handover app records it against its transfer; the timeline says so."""
    from siyu.handover.services import transfer_failed as record_failure  # the handover app owns transfers

    at = event.at or clock.now()
    record_failure(
        workspace,
        takeover_userid=event.user_id,
        external_userid=event.external_user_id,
        reason=event.fail_reason,
        at=at,
    )
    key = normalize_identity("wecom_external_userid", event.external_user_id)
    customer_id = lookup_identities(workspace.pk, [key]).get(key)
    if customer_id is not None:
        properties = {"takeover_userid": event.user_id, "reason": event.fail_reason}
        record_system_events(workspace.pk, [(customer_id, "wecom_transfer_failed", properties, at)], source="wecom")


# ---- change_external_chat ----------------------------------------------------------------------


def chat_changed(workspace: Workspace, event: rules.ExternalChatEvent) -> None:
    """create / update: re-read the group (``groupchat/get``) and write it like reconciliation;
    members added or removed also land on their customers' timelines. dismiss: ``dismissed_at``."""
    at = event.at or clock.now()
    if event.change_type == "dismiss":
        ExternalGroup.objects.filter(workspace=workspace, chat_id=event.chat_id, dismissed_at__isnull=True).update(
            dismissed_at=at
        )
        return
    with _client(workspace) as client:
        try:
            answer = client.post(
                "externalcontact/groupchat/get", {"chat_id": event.chat_id, "need_name": 1}, idempotent=True
            )
        except WecomError as exc:
            if exc.errcode == CHAT_NOT_FOUND:
                return
            raise
    chat = answer.get("group_chat") or {}
    if not chat:
        return
    userids = {str(chat.get("owner") or "")} | {
        str(m.get("userid")) for m in chat.get("member_list") or [] if int(m.get("type") or 0) == 1
    }
    staff_ids = dict(
        Staff.objects.filter(workspace=workspace, wecom_userid__in=userids).values_list("wecom_userid", "pk")
    )
    status = (
        ExternalGroup.objects.filter(workspace=workspace, chat_id=event.chat_id)
        .values_list("wecom_status", flat=True)
        .first()
    )
    apply_groups(
        workspace.pk, {event.chat_id: status or 0}, {event.chat_id: chat}, staff_ids, now=clock.now(), complete=False
    )
    if event.update_detail in ("add_member", "del_member") and event.member_changes:
        _member_timeline(workspace, event, str(chat.get("name") or ""), at)


def _member_timeline(workspace: Workspace, event: rules.ExternalChatEvent, name: str, at: dt.datetime) -> None:
    keys = [IdentityKey("wecom_external_userid", "", m) for m in event.member_changes]
    customers = lookup_identities(workspace.pk, keys)
    joined = event.update_detail == "add_member"
    properties: dict[str, Any] = {"chat_id": event.chat_id, "group_name": name}
    if joined:
        properties["join_scene"] = event.join_scene
    else:
        properties["quit_scene"] = event.quit_scene
    label = "wecom_group_joined" if joined else "wecom_group_left"
    rows = [(customers[k], label, properties, at) for k in keys if k in customers]
    record_system_events(workspace.pk, rows, source="wecom")


# ---- change_external_tag -----------------------------------------------------------------------


def corp_tags_changed(workspace: Workspace, event: rules.ExternalTagEvent) -> None:
    """A corp tag or tag group was created, renamed, deleted or re-ordered in WeCom: read that
    tag (or group) with ``get_corp_tag_list`` and apply it like reconciliation, deleting it in
    siyu when WeCom no longer has it. ``shuffle`` (a new order) reads the whole list."""
    if not event.tag_id and event.change_type != "shuffle":
        return
    if event.change_type == "shuffle":
        body: dict[str, Any] = {}
        scope: dict[str, set[str]] = {}
    elif event.tag_type == "tag_group":
        body, scope = {"group_id": [event.tag_id]}, {"group_ids": {event.tag_id}}
    else:
        body, scope = {"tag_id": [event.tag_id]}, {"tag_ids": {event.tag_id}}
    with _client(workspace) as client:
        answer = client.post("externalcontact/get_corp_tag_list", body, idempotent=True)
    groups = [g for g in answer.get("tag_group") or [] if not g.get("deleted")]
    pull_corp_tags(workspace.pk, groups, **scope)
