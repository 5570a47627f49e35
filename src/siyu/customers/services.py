"""OneID: upsert customers by any identity, link identities, merge profiles.

A batch is planned in memory first and written set-based afterwards:

1. every identity named in the batch is looked up in one query per type;
2. items are walked in order against an in-memory map ``identity -> customer``
   (new profiles get negative placeholder ids), deciding for each item which
   profile it lands on, which profiles it merges, and which identity conflicts
   it raises instead of merging;
3. new profiles and identities are bulk-inserted, merges are applied with a
   handful of UPDATE statements each, and profile changes are bulk-updated.

Merge rules (see ``siyu.customers.rules``): a record that names identities of two
profiles merges them into the survivor (identified before anonymous-only, then
the oldest). If both hold a different value of a "one per person" identity type
(external_userid, unionid, openid per app, app user id, member number), they are
not merged; an ``IdentityConflict`` is recorded for an operator instead.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Q

from siyu.channels.webhook.events import subscribed
from siyu.conversations.models import Message, RiskAlert
from siyu.core import clock
from siyu.core.batch import BatchResult, validate_items
from siyu.core.errors import InvalidInput, NotFound
from siyu.core.limits import valid_id
from siyu.core.sql import ColumnType, adapt, id_list_condition, insert_rows, text_list_condition, update_from_values
from siyu.customers.models import Customer, CustomerMerge, Identity, IdentityConflict, StaffRelation
from siyu.customers.rules import IdentityKey, normalize_identity, survivor_rank, unique_clashes
from siyu.customers.schemas import CustomerItem, IdentifyRequest, IdentityIn
from siyu.messaging.services import emit_domain_events
from siyu.org.models import OrgUnit, Staff, Workspace
from siyu.tags.models import CustomerTag, KeywordMatch, Tag, TagGroup, TagSource
from siyu.tracking.counters import rebuild_event_counts, rebuild_order_days
from siyu.tracking.models import Event, Order

PROFILE_FIELDS = ("name", "gender", "birthday", "province", "city", "source_detail")
DEFAULT_TAG_GROUP = "默认"
CUSTOMER_INSERT_COLUMNS: dict[str, ColumnType] = {
    "workspace_id": "int",
    "name": "text",
    "gender": "text",
    "birthday": "date",
    "province": "text",
    "city": "text",
    "attributes": "json",
    "source_channel": "text",
    "source_detail": "text",
    "store_id": "int",
    "owner_staff_id": "int",
    "first_seen_at": "datetime",
    "last_seen_at": "datetime",
    "created_at": "datetime",
    "updated_at": "datetime",
}
CUSTOMER_TAG_COLUMNS: dict[str, ColumnType] = {
    "workspace_id": "int",
    "customer_id": "int",
    "tag_id": "int",
    "source": "text",
    "source_ref": "text",
    "created_at": "datetime",
}
IDENTITY_INSERT_COLUMNS: dict[str, ColumnType] = {
    "workspace_id": "int",
    "customer_id": "int",
    "type": "text",
    "app_id": "text",
    "value": "text",
    "source": "text",
    "created_at": "datetime",
}
# Profile updates: NULL in a column means "not given, keep what is stored".
PROFILE_UPDATE_COLUMNS: dict[str, ColumnType] = {
    "id": "int",
    "name": "text",
    "gender": "text",
    "birthday": "date",
    "province": "text",
    "city": "text",
    "source_detail": "text",
    "source_channel": "text",
    "store_id": "int",
    "owner_staff_id": "int",
    "attributes": "json",
    "updated_at": "datetime",
}
NOT_PROFILE_FIELDS = ("id", "attributes", "updated_at")


def profile_assignments() -> dict[str, str]:
    keep = {name: f"COALESCE(v.{name}, {{t}}.{name})" for name in PROFILE_UPDATE_COLUMNS if name not in ("id",)}
    # First touch wins: the acquisition channel is only set while empty.
    keep["source_channel"] = (
        "CASE WHEN {t}.source_channel = '' THEN COALESCE(v.source_channel, '') ELSE {t}.source_channel END"
    )
    # Custom attributes merge key by key (given keys overwrite).
    if connection.vendor == "postgresql":
        keep["attributes"] = "COALESCE({t}.attributes, '{}'::jsonb) || COALESCE(v.attributes, '{}'::jsonb)"
    else:
        keep["attributes"] = "json_patch(COALESCE({t}.attributes, '{}'), COALESCE(v.attributes, '{}'))"
    keep["updated_at"] = "v.updated_at"
    return keep


# Retries of a whole batch when a concurrent writer stored the same identity first.
CONCURRENT_RETRIES = 3


@dataclass
class Entry:
    """One record to place: its identities, profile changes, and optionally a known customer."""

    index: int
    keys: list[IdentityKey]
    profile: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] | None = None
    tags: list[tuple[str, str]] = field(default_factory=list)
    anchor_id: int | None = None  # a live customer id the record is known to belong to


@dataclass
class Placement:
    customer_id: int
    merged_ids: list[int] = field(default_factory=list)
    conflict_ids: list[int] = field(default_factory=list)


def normalize_keys(identities: list[IdentityIn], field_prefix: str = "identities") -> list[IdentityKey]:
    """Normalise a record's identities; at most one value per unique slot within one record."""
    keys: list[IdentityKey] = []
    for position, identity in enumerate(identities):
        try:
            key = normalize_identity(identity.type, identity.value, identity.app_id)
        except InvalidInput as exc:
            raise InvalidInput(exc.message, field=f"{field_prefix}.{position}.{exc.field or 'value'}") from None
        if key not in keys:
            keys.append(key)
    slots = [key.slot for key in keys if key.is_unique_type]
    clashes = unique_clashes(keys, keys) if len(slots) != len(set(slots)) else []
    if clashes:
        a, b = clashes[0]
        raise InvalidInput(
            f"one record names two different {a.type} values ({a.value}, {b.value}); a person has only one",
            field=field_prefix,
        )
    return keys


def parse_tag_name(raw: str) -> tuple[str, str]:
    group, sep, name = raw.strip().partition("/")
    if not sep:
        group, name = DEFAULT_TAG_GROUP, group
    group, name = group.strip(), name.strip()
    if not name or not group or len(name) > 100 or len(group) > 100:
        raise InvalidInput(f"'{raw}' is not a tag name ('group/tag' or 'tag', up to 100 characters)", field="tags")
    return group, name


def upsert_customers(workspace: Workspace, items: list[Any], *, source: str) -> BatchResult:
    """Validate raw customer items (``CustomerItem`` dicts) one by one and upsert the good ones.

    Returns a BatchResult whose ``ids[i]`` is the live customer id item i landed on.
    """
    result = BatchResult(ids=[None] * len(items))
    stores = {u.code: u.pk for u in OrgUnit.objects.filter(workspace=workspace).exclude(code="").only("code")}
    entries: list[Entry] = []
    staff_codes: dict[int, str] = {}
    for index, item in validate_items(CustomerItem, items, result):
        assert isinstance(item, CustomerItem)
        try:
            entries.append(_entry_from_item(index, item, stores))
        except InvalidInput as exc:
            result.reject(index, exc.field or "", exc.message)
            continue
        if item.owner_wecom_userid:
            staff_codes[index] = item.owner_wecom_userid
    if staff_codes:
        staff = dict(
            Staff.objects.filter(workspace=workspace, wecom_userid__in=set(staff_codes.values())).values_list(
                "wecom_userid", "pk"
            )
        )
        kept = []
        for entry in entries:
            code = staff_codes.get(entry.index)
            if code is not None and code not in staff:
                result.reject(entry.index, "owner_wecom_userid", f"no staff member with WeCom user id '{code}'")
                continue
            if code is not None:
                entry.profile["owner_staff_id"] = staff[code]
            kept.append(entry)
        entries = kept
    placements = place_entries(workspace, entries, source=source)
    for entry, placement in zip(entries, placements, strict=True):
        result.ids[entry.index] = placement.customer_id
    result.accepted = len(entries)
    result.errors.sort(key=lambda e: e.index)
    return result


def _entry_from_item(index: int, item: CustomerItem, stores: dict[str, int]) -> Entry:
    keys = normalize_keys(item.identities)
    profile: dict[str, Any] = {}
    for name in PROFILE_FIELDS:
        value = getattr(item, name)
        if value is not None:
            profile[name] = value
    if item.source_channel:
        profile["source_channel"] = item.source_channel
    if item.store_code:
        if item.store_code not in stores:
            raise InvalidInput(f"no store with code '{item.store_code}'", field="store_code")
        profile["store_id"] = stores[item.store_code]
    tags = [parse_tag_name(raw) for raw in item.tags or []]
    return Entry(index=index, keys=keys, profile=profile, attributes=item.attributes, tags=tags)


def link_identities(workspace: Workspace, raw: dict[str, Any], *, source: str) -> dict[str, Any]:
    """``IdentifyRequest``: all identities are one person. Returns
    ``{"customer_id", "merged_ids", "conflicts": [conflict ids]}``."""
    probe = BatchResult()
    valid = validate_items(IdentifyRequest, [raw], probe)
    if probe.errors:
        error = probe.errors[0]
        raise InvalidInput(error.message, field=error.field or None)
    request = valid[0][1]
    assert isinstance(request, IdentifyRequest)
    keys = normalize_keys(request.identities)
    anchor = None
    if request.customer_id is not None:
        anchor = live_customer_id(workspace.pk, request.customer_id)
        if anchor is None:
            raise NotFound(f"no customer with id {request.customer_id}", field="customer_id")
    [placement] = place_entries(workspace, [Entry(index=0, keys=keys, anchor_id=anchor)], source=source)
    return {
        "customer_id": placement.customer_id,
        "merged_ids": placement.merged_ids,
        "conflicts": placement.conflict_ids,
    }


def live_customer_id(workspace_id: int, customer_id: int) -> int | None:
    """The id a (possibly merged) customer id resolves to now, or None if unknown in this workspace."""
    return live_customer_ids(workspace_id, [customer_id]).get(customer_id)


def lookup_identities(workspace_id: int, keys: list[IdentityKey]) -> dict[IdentityKey, int]:
    """Who holds each identity now (identities always sit on live customers): one query per slot."""
    by_slot: dict[tuple[str, str], set[str]] = defaultdict(set)
    for key in keys:
        by_slot[(key.type, key.app_id)].add(key.value)
    found: dict[IdentityKey, int] = {}
    with connection.cursor() as cursor:
        for (type_, app_id), values in by_slot.items():
            condition, params = text_list_condition("value", sorted(values))
            cursor.execute(
                "SELECT value, customer_id FROM customers_identity "
                f"WHERE workspace_id = %s AND type = %s AND app_id = %s AND {condition}",
                [workspace_id, type_, app_id, *params],
            )
            for value, customer_id in cursor.fetchall():
                found[IdentityKey(type_, app_id, value)] = customer_id
    return found


def live_customer_ids(workspace_id: int, customer_ids: list[int]) -> dict[int, int]:
    """Map each known id to the live survivor it resolves to (merge chains are kept one hop long)."""
    resolved: dict[int, int] = {}
    wanted = {i for i in customer_ids if valid_id(i)}  # out-of-range ids exist nowhere
    for _ in range(5):  # chains are flattened on merge; a few hops only matter mid-merge
        if not wanted:
            break
        condition, params = id_list_condition("id", sorted(wanted))
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, merged_into_id FROM customers_customer WHERE workspace_id = %s AND {condition}",
                [workspace_id, *params],
            )
            rows = cursor.fetchall()
        nxt: set[int] = set()
        for pk, merged_into in rows:
            if merged_into is None:
                resolved[pk] = pk
            else:
                nxt.add(merged_into)
                resolved[pk] = merged_into
        wanted = nxt - {pk for pk, target in resolved.items() if target == pk}
    # Follow recorded hops to the end.
    for start in list(resolved):
        seen = set()
        target = resolved[start]
        while resolved.get(target, target) != target and target not in seen:
            seen.add(target)
            target = resolved[target]
        resolved[start] = target
    asked = set(customer_ids)
    return {pk: target for pk, target in resolved.items() if pk in asked}


def place_entries(
    workspace: Workspace, entries: list[Entry], *, source: str, mark_seen: bool = True
) -> list[Placement]:
    """Place every entry on a live customer (creating and merging as needed); one transaction.

    ``mark_seen=False`` leaves new profiles' first/last seen empty for the caller to set from
    the activity that named them (an event's own time, not the time it arrived).
    """
    for attempt in range(CONCURRENT_RETRIES):
        try:
            with transaction.atomic():
                placements = _Planner(workspace, source, mark_seen).run(entries)
                mark_changed(workspace.pk, [p.customer_id for p in placements])
                return placements
        except IntegrityError:
            # Another writer stored one of our identities between our read and write:
            # plan again, now seeing it.
            if attempt == CONCURRENT_RETRIES - 1:
                raise
    raise AssertionError("unreachable")


class _Planner:
    def __init__(self, workspace: Workspace, source: str, mark_seen: bool) -> None:
        self.workspace = workspace
        self.mark_seen = mark_seen
        self.source = source
        self.now = clock.now()
        self.owner: dict[IdentityKey, int] = {}  # identity -> customer id (negative: not stored yet)
        self.keys_of: dict[int, set[IdentityKey]] = defaultdict(set)
        self.alias: dict[int, int] = {}  # merged -> survivor, within this batch
        self.next_pending = -1
        self.pending_profiles: dict[int, dict[str, Any]] = {}
        self.pending_attributes: dict[int, dict[str, Any]] = {}
        self.new_identities: list[tuple[IdentityKey, int]] = []
        self.merges: list[tuple[int, int]] = []  # (survivor, merged) in order
        self.conflicts: list[tuple[int, int, IdentityKey, IdentityKey, int]] = []  # a, b, a_key, b_key, entry
        self.changes: dict[int, dict[str, Any]] = defaultdict(dict)
        self.attr_changes: dict[int, dict[str, Any]] = defaultdict(dict)
        self.tag_requests: list[tuple[int, str, str]] = []

    # -- planning ---------------------------------------------------------------
    def resolve(self, customer_id: int) -> int:
        while customer_id in self.alias:
            customer_id = self.alias[customer_id]
        return customer_id

    def preload(self, entries: list[Entry]) -> None:
        keys = {key for entry in entries for key in entry.keys}
        self.owner.update(lookup_identities(self.workspace.pk, list(keys)))
        anchors = {e.anchor_id for e in entries if e.anchor_id is not None}
        self.load_keys(set(self.owner.values()) | anchors)

    def load_keys(self, customer_ids: set[int]) -> None:
        """Every identity of these customers: what a merge would bring together."""
        ordered = sorted(customer_ids)
        with connection.cursor() as cursor:
            for start in range(0, len(ordered), 5000):
                condition, params = id_list_condition("customer_id", ordered[start : start + 5000])
                cursor.execute(
                    f"SELECT customer_id, type, app_id, value FROM customers_identity WHERE {condition}", params
                )
                for customer_id, type_, app_id, value in cursor.fetchall():
                    key = IdentityKey(type_, app_id, value)
                    self.keys_of[customer_id].add(key)
                    self.owner[key] = customer_id
        for customer_id in customer_ids:
            self.keys_of.setdefault(customer_id, set())

    def new_customer(self) -> int:
        pending = self.next_pending
        self.next_pending -= 1
        self.pending_profiles[pending] = {}
        self.keys_of[pending] = set()
        return pending

    def plan(self, entry: Entry) -> Placement:
        candidates = {self.resolve(self.owner[k]) for k in entry.keys if k in self.owner}
        if entry.anchor_id is not None:
            candidates.add(self.resolve(entry.anchor_id))
        placement = Placement(customer_id=0)
        if not candidates:
            survivor = self.new_customer()
        else:
            ranked = sorted(candidates, key=lambda c: survivor_rank(c, self.keys_of[c]))
            if entry.anchor_id is not None:
                # An explicitly named customer is where the record lands.
                anchor = self.resolve(entry.anchor_id)
                ranked.remove(anchor)
                ranked.insert(0, anchor)
            survivor = ranked[0]
            for other in ranked[1:]:
                clashes = unique_clashes(self.keys_of[survivor], self.keys_of[other])
                if clashes:
                    mine, theirs = clashes[0]
                    self.conflicts.append((survivor, other, mine, theirs, entry.index))
                    continue
                self.alias[other] = survivor
                self.keys_of[survivor] |= self.keys_of.pop(other)
                self.merges.append((survivor, other))
                placement.merged_ids.append(other)
        # Identities nobody holds yet join the survivor unless they clash with one of its slots;
        # a clashing one starts its own profile, linked to the survivor by a conflict.
        spill: int | None = None
        fresh = not candidates  # a new profile: the record's own keys never clash with each other
        for key in entry.keys:
            if key in self.owner:
                continue
            clash = [] if fresh else unique_clashes(self.keys_of[survivor], [key])
            target = survivor
            if clash:
                if spill is None:
                    spill = self.new_customer()
                    self.conflicts.append((survivor, spill, clash[0][0], key, entry.index))
                target = spill
            self.owner[key] = target
            self.keys_of[target].add(key)
            self.new_identities.append((key, target))
        if entry.profile:
            self.changes[survivor].update(entry.profile)
        if entry.attributes:
            self.attr_changes[survivor].update(entry.attributes)
        for group, name in entry.tags:
            self.tag_requests.append((survivor, group, name))
        placement.customer_id = survivor
        return placement

    # -- writing ----------------------------------------------------------------
    def run(self, entries: list[Entry]) -> list[Placement]:
        self.preload(entries)
        placements = [self.plan(entry) for entry in entries]
        real = self.create_pending()
        for survivor, merged in self.merges:
            merge_customers(
                self.workspace.pk,
                survivor=real.get(self.resolve(survivor), self.resolve(survivor)),
                merged=real.get(merged, merged),
                reason=f"identity link via {self.source}",
                now=self.now,
            )
        insert_rows(
            "customers_identity",
            IDENTITY_INSERT_COLUMNS,
            [
                (self.workspace.pk, real.get(cid, cid), key.type, key.app_id, key.value, self.source, self.now)
                for key, cid in self.new_identities
            ],
        )
        self.apply_profile_changes(real)
        self.apply_tags(real)
        conflict_ids = self.record_conflicts(real)
        self.emit_created(real)
        for placement in placements:
            placement.customer_id = real.get(self.resolve(placement.customer_id), self.resolve(placement.customer_id))
            placement.merged_ids = [real.get(m, m) for m in placement.merged_ids]
        for entry_index, conflict_id in conflict_ids:
            for entry, placement in zip(entries, placements, strict=True):
                if entry.index == entry_index:
                    placement.conflict_ids.append(conflict_id)
        return placements

    def create_pending(self) -> dict[int, int]:
        pending = sorted(self.pending_profiles, reverse=True)  # -1, -2, ...: creation order
        if not pending:
            return {}
        seen = self.now if self.mark_seen else None
        rows = []
        for pid in pending:
            changes = self.changes.pop(pid, {})
            rows.append(
                (
                    self.workspace.pk,
                    changes.get("name") or "",
                    changes.get("gender") or "",
                    changes.get("birthday"),
                    changes.get("province") or "",
                    changes.get("city") or "",
                    self.attr_changes.pop(pid, {}),
                    changes.get("source_channel") or self.source,
                    changes.get("source_detail") or "",
                    changes.get("store_id"),
                    changes.get("owner_staff_id"),
                    seen,
                    seen,
                    self.now,
                    self.now,
                )
            )
        ids = insert_rows("customers_customer", CUSTOMER_INSERT_COLUMNS, rows, returning_id=True)
        return dict(zip(pending, ids, strict=True))

    def apply_profile_changes(self, real: dict[int, int]) -> None:
        merged_changes: dict[int, dict[str, Any]] = defaultdict(dict)
        merged_attrs: dict[int, dict[str, Any]] = defaultdict(dict)
        for cid, changes in self.changes.items():
            merged_changes[real.get(self.resolve(cid), self.resolve(cid))].update(changes)
        for cid, attrs in self.attr_changes.items():
            merged_attrs[real.get(self.resolve(cid), self.resolve(cid))].update(attrs)
        touched = sorted(cid for cid in set(merged_changes) | set(merged_attrs) if cid > 0)
        if not touched:
            return
        rows = []
        for cid in touched:
            changes = merged_changes.get(cid, {})
            rows.append(
                (
                    cid,
                    *(changes.get(name) for name in PROFILE_UPDATE_COLUMNS if name not in NOT_PROFILE_FIELDS),
                    merged_attrs.get(cid),
                    self.now,
                )
            )
        update_from_values("customers_customer", PROFILE_UPDATE_COLUMNS, rows, assignments=profile_assignments())

    def apply_tags(self, real: dict[int, int]) -> None:
        if not self.tag_requests:
            return
        tags = ensure_tags(self.workspace, {(group, name) for _, group, name in self.tag_requests})
        source = TagSource.API if self.source == "api" else TagSource.IMPORT
        rows = {
            (real.get(self.resolve(cid), self.resolve(cid)), tags[(group, name)])
            for cid, group, name in self.tag_requests
        }
        insert_rows(
            "tags_customertag",
            CUSTOMER_TAG_COLUMNS,
            [(self.workspace.pk, cid, tag_id, source, self.source, self.now) for cid, tag_id in sorted(rows)],
            ignore_conflicts=True,
        )
        if subscribed(self.workspace.pk, "tag.added"):
            # Only the tags this batch really added (a customer may have carried some already).
            names = {tag_id: key for key, tag_id in tags.items()}
            added = CustomerTag.objects.filter(
                workspace_id=self.workspace.pk,
                created_at=self.now,
                source_ref=self.source,
                customer_id__in={cid for cid, _ in rows},
                tag_id__in={tag_id for _, tag_id in rows},
            ).values_list("pk", "customer_id", "tag_id")
            events = [
                (f"tag.added:{pk}", {"customer_id": c, "tag_id": t, "group": names[t][0], "tag": names[t][1]})
                for pk, c, t in added
            ]
            emit_domain_events(
                self.workspace.pk, "tag.added", [item for _, item in events], keys=[key for key, _ in events]
            )

    def emit_created(self, real: dict[int, int]) -> None:
        """``customer.created`` for the profiles this batch created and did not merge away."""
        created = [cid for pending, cid in real.items() if pending not in self.alias]
        emit_domain_events(
            self.workspace.pk,
            "customer.created",
            [{"customer_id": cid, "source": self.source} for cid in created],
            keys=[f"customer.created:{cid}" for cid in created],
        )

    def record_conflicts(self, real: dict[int, int]) -> list[tuple[int, int]]:
        out = []
        for a, b, a_key, b_key, entry_index in self.conflicts:
            a_id, b_id = real.get(self.resolve(a), self.resolve(a)), real.get(self.resolve(b), self.resolve(b))
            if a_id == b_id:
                continue
            existing = IdentityConflict.objects.filter(
                Q(customer_id=a_id, other_customer_id=b_id) | Q(customer_id=b_id, other_customer_id=a_id),
                workspace=self.workspace,
                # A pair an operator already kept apart is not raised again.
                status__in=[IdentityConflict.Status.OPEN, IdentityConflict.Status.DISMISSED],
            ).first()
            if existing is None:
                existing = IdentityConflict.objects.create(
                    workspace=self.workspace,
                    customer_id=a_id,
                    other_customer_id=b_id,
                    identity_type=a_key.type,
                    app_id=a_key.app_id,
                    value=a_key.value,
                    other_value=b_key.value,
                    context={"source": self.source},
                    created_at=self.now,
                )
            out.append((entry_index, existing.pk))
        return out


def ensure_tags(workspace: Workspace, names: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Tag ids for (group, name) pairs, creating missing groups and tags."""
    groups = {g.name: g for g in TagGroup.objects.filter(workspace=workspace, name__in={g for g, _ in names})}
    for group_name in {g for g, _ in names} - set(groups):
        groups[group_name], _ = TagGroup.objects.get_or_create(workspace=workspace, name=group_name)
    out: dict[tuple[str, str], int] = {}
    existing = Tag.objects.filter(group__in=groups.values(), name__in={n for _, n in names}).values_list(
        "group__name", "name", "pk"
    )
    for group_name, name, pk in existing:
        out[(group_name, name)] = pk
    for group_name, name in names - set(out):
        tag, _ = Tag.objects.get_or_create(workspace=workspace, group=groups[group_name], name=name)
        out[(group_name, name)] = tag.pk
    return out


def merge_customers(
    workspace_id: int, *, survivor: int, merged: int, reason: str, now: dt.datetime | None = None
) -> CustomerMerge:
    """Fold ``merged`` into ``survivor`` with set-based UPDATEs; the old id keeps resolving."""
    now = now or clock.now()
    if survivor == merged:
        raise InvalidInput("a customer cannot be merged into itself", field="customer_id")
    moved = {
        "identities": Identity.objects.filter(customer_id=merged).update(customer_id=survivor),
        "events": Event.objects.filter(customer_id=merged).update(customer_id=survivor),
        "orders": Order.objects.filter(customer_id=merged).update(customer_id=survivor),
        "messages": Message.objects.filter(customer_id=merged).update(customer_id=survivor),
    }
    # Tags and relations are unique per customer: drop the merged copy where the survivor has one.
    survivor_tags = CustomerTag.objects.filter(customer_id=survivor).values("tag_id")
    CustomerTag.objects.filter(customer_id=merged, tag_id__in=survivor_tags).delete()
    moved["tags"] = CustomerTag.objects.filter(customer_id=merged).update(customer_id=survivor)
    survivor_staff = StaffRelation.objects.filter(customer_id=survivor).values("staff_id")
    StaffRelation.objects.filter(customer_id=merged, staff_id__in=survivor_staff).delete()
    moved["relations"] = StaffRelation.objects.filter(customer_id=merged).update(customer_id=survivor)
    _merge_reach(workspace_id, survivor, merged, now)
    # Keyword matches keep counting toward the survivor's min_matches; alerts follow the customer.
    KeywordMatch.objects.filter(customer_id=merged).update(customer_id=survivor)
    RiskAlert.objects.filter(customer_id=merged).update(customer_id=survivor)
    IdentityConflict.objects.filter(customer_id=merged).update(customer_id=survivor)
    IdentityConflict.objects.filter(other_customer_id=merged).update(other_customer_id=survivor)
    IdentityConflict.objects.filter(
        customer_id=survivor, other_customer_id=survivor, status=IdentityConflict.Status.OPEN
    ).update(status=IdentityConflict.Status.MERGED, resolved_at=now)

    keep = Customer.objects.select_for_update().get(pk=survivor)
    gone = Customer.objects.select_for_update().get(pk=merged)
    for name in (*PROFILE_FIELDS, "source_channel"):
        if not getattr(keep, name) and getattr(gone, name):
            setattr(keep, name, getattr(gone, name))
    for name in ("store_id", "owner_staff_id"):
        if getattr(keep, name) is None and getattr(gone, name) is not None:
            setattr(keep, name, getattr(gone, name))
    keep.attributes = {**(gone.attributes or {}), **(keep.attributes or {})}
    seen = [t for t in (keep.first_seen_at, gone.first_seen_at) if t]
    keep.first_seen_at = min(seen) if seen else None
    seen = [t for t in (keep.last_seen_at, gone.last_seen_at) if t]
    keep.last_seen_at = max(seen) if seen else None
    keep.created_at = min(keep.created_at, gone.created_at)
    keep.updated_at = now
    keep.save()
    Customer.objects.filter(pk=merged).update(merged_into_id=survivor, updated_at=now)
    # Keep chains one hop long: whoever pointed at the merged profile now points at the survivor.
    Customer.objects.filter(merged_into_id=merged).update(merged_into_id=survivor)
    # Day counters follow the events and orders; both profiles are re-evaluated by segments
    # (the merged one leaves every segment, the survivor may enter new ones).
    time_zone = Workspace.objects.values_list("time_zone", flat=True).get(pk=workspace_id)
    rebuild_event_counts(workspace_id, time_zone, [survivor, merged])
    rebuild_order_days(workspace_id, time_zone, [survivor, merged])
    mark_changed(workspace_id, [survivor, merged])
    return CustomerMerge.objects.create(
        workspace_id=workspace_id, survivor_id=survivor, merged_id=merged, reason=reason, moved=moved, created_at=now
    )


def _merge_reach(workspace_id: int, survivor: int, merged: int, now: dt.datetime) -> None:
    """Refusals survive a merge: an opt-out of either profile binds the survivor, a withdrawn
    consent beats a grant, and messages still waiting to go follow the customer (the gate
    decides them again for the survivor)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO channels_optout (workspace_id, customer_id, source, detail, created_at) "
            "SELECT workspace_id, %s, source, detail, created_at FROM channels_optout WHERE customer_id = %s "
            "ON CONFLICT DO NOTHING",
            [survivor, merged],
        )
        cursor.execute("DELETE FROM channels_optout WHERE customer_id = %s", [merged])
        # A withdrawal on the merged profile overrides the survivor's grant for the same channel and purpose.
        cursor.execute(
            "UPDATE customers_consent SET status = 'revoked', source = m.source, updated_at = %s "
            "FROM customers_consent m WHERE customers_consent.customer_id = %s AND m.customer_id = %s "
            "AND m.channel = customers_consent.channel AND m.purpose = customers_consent.purpose "
            "AND m.status = 'revoked' AND customers_consent.status <> 'revoked'",
            [adapt(now, "datetime"), survivor, merged],
        )
        cursor.execute(
            "DELETE FROM customers_consent WHERE customer_id = %s AND EXISTS (SELECT 1 FROM customers_consent s "
            "WHERE s.customer_id = %s AND s.channel = customers_consent.channel "
            "AND s.purpose = customers_consent.purpose)",
            [merged, survivor],
        )
        cursor.execute("UPDATE customers_consent SET customer_id = %s WHERE customer_id = %s", [survivor, merged])
        cursor.execute(
            "UPDATE messaging_outboundmessage SET customer_id = %s, to_address = '' "
            "WHERE customer_id = %s AND state IN ('queued', 'held')",
            [survivor, merged],
        )


def merge_by_operator(workspace: Workspace, conflict_id: int, *, user=None) -> CustomerMerge:
    """An operator decides a conflict's two profiles are one person after all."""
    from siyu.org.services import audit

    with transaction.atomic():
        conflict = IdentityConflict.objects.select_for_update().filter(workspace=workspace, pk=conflict_id).first()
        if conflict is None or conflict.status != IdentityConflict.Status.OPEN:
            raise NotFound("no open identity conflict with this id", field="conflict_id")
        ids = live_customer_ids(workspace.pk, [conflict.customer_id, conflict.other_customer_id])
        survivor, merged = sorted({ids[conflict.customer_id], ids[conflict.other_customer_id]})
        record = merge_customers(workspace.pk, survivor=survivor, merged=merged, reason=f"conflict {conflict_id}")
        IdentityConflict.objects.filter(pk=conflict_id).update(
            status=IdentityConflict.Status.MERGED, resolved_at=clock.now()
        )
        audit(
            workspace=workspace,
            action="customer.merge",
            target=f"customer:{survivor}",
            user=user,
            details={"merged": merged, "conflict": conflict_id},
        )
    return record


def dismiss_conflict(workspace: Workspace, conflict_id: int, *, user=None) -> None:
    """An operator decides a conflict's two profiles are different people: keep them apart."""
    from siyu.org.services import audit

    with transaction.atomic():
        updated = IdentityConflict.objects.filter(
            workspace=workspace, pk=conflict_id, status=IdentityConflict.Status.OPEN
        ).update(status=IdentityConflict.Status.DISMISSED, resolved_at=clock.now())
        if not updated:
            raise NotFound("no open identity conflict with this id", field="conflict_id")
        audit(workspace=workspace, action="conflict.dismiss", target=f"conflict:{conflict_id}", user=user)


# An existing mark is updated, not skipped: the row lock makes a refresher that is draining
# marks wait for this transaction to commit, so it cannot drop the mark and miss the change.
MARK_CONFLICT = "ON CONFLICT (customer_id) DO UPDATE SET workspace_id = excluded.workspace_id"


def mark_changed(workspace_id: int, customer_ids: Iterable[int]) -> None:
    """Note that these customers' data changed, so segments re-evaluate them on the next refresh."""
    ids = sorted(set(customer_ids))
    if ids:
        condition, params = id_list_condition("c.id", ids)
        mark_changed_where(workspace_id, condition, params)


def mark_changed_where(workspace_id: int, condition: str, params: list[Any]) -> None:
    """Set-based ``mark_changed`` for every live customer ``c`` of the workspace matching ``condition``
    (SQL over ``customers_customer c``), e.g. those whose layer moved."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO customers_customerchange (customer_id, workspace_id) "
            f"SELECT c.id, c.workspace_id FROM customers_customer c WHERE c.workspace_id = %s AND ({condition}) "
            f"{MARK_CONFLICT}",
            [workspace_id, *params],
        )
