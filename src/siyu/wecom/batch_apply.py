"""The common callback events applied set-based: a burst of adds in a constant number of statements.

``services.handle_event`` applies one event with ~22 statements (OneID placement, relation,
owner, timeline, attribution). A burst of adds — a store opening, a live stream's QR code —
then outruns WeCom's 20-second welcome window. The inbox (``siyu.wecom.inbox``) hands this
module the batchable events of one claim:

- WeCom ``add_external_contact`` / ``add_half_external_contact``, ``del_external_contact`` /
  ``del_follow_user``;
- Official Account ``subscribe`` / ``SCAN`` / ``unsubscribe``;

and each kind is applied with a fixed number of statements: ``place_entries`` for all new
identities, one upsert of the relations, one UPDATE of the owners, one relation UPDATE for the
deletes, one insert and one update of the follow rows, ``record_system_events`` per source and
``acquisition.attribution_batch.record_adds`` for every add that names a channel code.

The result is the per-event path's, which stays the reference
(``tests/test_wecom_batch_apply.py`` compares them on random event sequences). Two things make
that hold:

- the claim gives at most one receipt per subject (contact / follower), so a batch never holds
  two events whose order matters for one subject;
- events of *different* subjects can still land on one customer (an OA follower and a WeCom
  contact linked by OneID). The first of them is batched; each later one is handed back and
  applied per event after the batch, in arrival order.

Anything unusual (an identity that does not normalise) is handed back too, so it gets the
per-event path's error and back-off. Welcome messages are queued when the transaction commits,
before anything else the round queues: they have 20 seconds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from siyu.acquisition.attribution_batch import Credit, pk_in, record_adds
from siyu.core import clock
from siyu.core.errors import InvalidInput, NotFound
from siyu.core.sql import PG_CASTS, adapters, pg_records, update_from_values
from siyu.customers.models import OfficialAccountFollow, StaffRelation
from siyu.customers.rules import IdentityKey, normalize_identity
from siyu.customers.services import Entry, lookup_identities, mark_changed, place_entries
from siyu.org.models import OrgUnit, Staff, Workspace
from siyu.tracking.services import record_system_events
from siyu.wecom import rules

ADDS = ("add_external_contact", "add_half_external_contact")
DELETES = {
    "del_external_contact": StaffRelation.Status.DELETED_BY_STAFF,
    "del_follow_user": StaffRelation.Status.DELETED_BY_CUSTOMER,
}
OA_EVENTS = ("subscribe", "scan", "unsubscribe")
RELATION_COLUMNS = (
    "workspace_id",
    "customer_id",
    "staff_id",
    "added_at",
    "add_way",
    "state",
    "remark",
    "description",
    "status",
    "status_changed_at",
)
RELATION_KINDS = ("int", "int", "int", "datetime", "int", "text", "text", "text", "text", "datetime")
RELATION_UPSERT = (
    f"INSERT INTO customers_staffrelation ({', '.join(RELATION_COLUMNS)}) VALUES {{values}} "
    "ON CONFLICT (staff_id, customer_id) DO UPDATE SET workspace_id = excluded.workspace_id, "
    "added_at = excluded.added_at, state = excluded.state, status = excluded.status, "
    "status_changed_at = excluded.status_changed_at"
)


def batchable(event: rules.Event) -> bool:
    """Whether the event is one this module applies (the others keep the per-event path)."""
    if isinstance(event, rules.ExternalContactEvent):
        return event.change_type in ADDS or event.change_type in DELETES
    return isinstance(event, rules.OaEvent) and event.event in OA_EVENTS


@dataclass
class _Item:
    order: int
    pk: int
    event: Any
    key: IdentityKey
    customer_id: int | None  # known before the batch (None: a new identity)
    at: dt.datetime


def apply(
    workspace: Workspace, receipts: list[tuple[int, rules.Event]], others: list[tuple[int, rules.Event]] = ()
) -> list[int]:
    """Apply the batchable ``(receipt id, event)`` pairs (in arrival order, one per subject).
    ``others`` are the round's contact events applied one by one (an edit, a failed transfer):
    an event on the customer of an earlier one of them is handed back, to follow it.

    Returns the receipt ids handed back for the per-event path, to be applied after this
    batch in the order given. Raises on any failure: the caller rolls the batch back and applies
    every receipt of it one by one."""
    handed_back: list[int] = []
    keyed: list[tuple[int, int, Any, IdentityKey]] = []
    for order, (pk, event) in enumerate(receipts):
        try:
            if isinstance(event, rules.ExternalContactEvent):
                if not event.user_id or not event.external_user_id:
                    continue  # nothing to apply, as in handle_event
                key = normalize_identity("wecom_external_userid", event.external_user_id)
            else:
                if not event.openid or not event.app_id:
                    continue
                key = normalize_identity("wechat_openid", event.openid, event.app_id)
        except InvalidInput:
            handed_back.append(pk)  # the per-event path records the error
            continue
        keyed.append((order, pk, event, key))
    earlier = _keys_of(others)
    known = lookup_identities(workspace.pk, [key for *_, key in keyed] + [key for _, key in earlier])
    now = clock.now()
    items: list[_Item] = []
    touched: set[int] = set()
    waiting = {known[key]: pk for pk, key in reversed(earlier) if key in known}  # customer -> first pk
    for order, pk, event, key in keyed:
        customer_id = known.get(key)
        if customer_id is not None:
            if customer_id in touched or waiting.get(customer_id, pk) < pk:
                handed_back.append(pk)  # a second event on this customer: after the batch
                continue
            touched.add(customer_id)
        items.append(_Item(order, pk, event, key, customer_id, event.at or now))
    if items:
        _apply_items(workspace, items)
    return handed_back


def _keys_of(events: list[tuple[int, rules.Event]]) -> list[tuple[int, IdentityKey]]:
    out = []
    for pk, event in events:
        if isinstance(event, rules.ExternalContactEvent) and event.external_user_id:
            try:
                out.append((pk, normalize_identity("wecom_external_userid", event.external_user_id)))
            except InvalidInput:
                continue
    return out


def _apply_items(workspace: Workspace, items: list[_Item]) -> None:
    adds = [i for i in items if isinstance(i.event, rules.ExternalContactEvent) and i.event.change_type in ADDS]
    deletes = [i for i in items if isinstance(i.event, rules.ExternalContactEvent) and i.event.change_type in DELETES]
    follows = [i for i in items if isinstance(i.event, rules.OaEvent) and i.event.event in ("subscribe", "scan")]
    unfollows = [i for i in items if isinstance(i.event, rules.OaEvent) and i.event.event == "unsubscribe"]
    staff = _staff(workspace, [i.event.user_id for i in adds], [i.event.user_id for i in deletes])
    _place(workspace, adds, "wecom")
    _place(workspace, follows, "official_account")
    wecom_events: list[tuple[int, str, dict[str, Any], dt.datetime]] = []
    credits: list[tuple[int, Credit, str]] = []  # (order, credit, welcome code)
    if adds:
        _upsert_relations(workspace, adds, staff)
        owners = sorted({i.customer_id: staff[i.event.user_id] for i in reversed(adds)}.items())
        update_from_values(
            "customers_customer",
            {"id": "int", "owner_staff_id": "int"},
            owners,
            where="{t}.owner_staff_id IS NULL AND " + pk_in(c for c, _ in owners),
        )
        for i in adds:
            event = i.event
            properties = {
                "staff_id": staff[event.user_id],
                "userid": event.user_id,
                "state": event.state,
                "half": event.change_type == "add_half_external_contact",
            }
            wecom_events.append((i.customer_id, "wecom_friend_added", properties, i.at))
            if event.state:
                credit = Credit(event.state, i.customer_id, staff[event.user_id], i.at)
                credits.append((i.order, credit, event.welcome_code))
    wecom_events += _delete_relations(workspace, deletes, staff)
    oa_events = _follow(workspace, follows, unfollows)
    for i in follows:
        if i.event.scene:
            credits.append((i.order, Credit(i.event.scene, i.customer_id, None, i.at), ""))
    record_system_events(workspace.pk, wecom_events, source="wecom")
    record_system_events(workspace.pk, oa_events, source="official_account")
    credits.sort(key=lambda c: c[0])
    welcomes = record_adds(workspace, [credit for _, credit, _ in credits])
    bodies = [
        welcome.body(code)
        for (_, _, code), welcome in zip(credits, welcomes, strict=True)
        if welcome is not None and code
    ]
    if bodies:
        queue_welcomes(workspace.pk, bodies)


def queue_welcomes(workspace_id: int, bodies: list[dict[str, Any]]) -> None:
    """Queue welcome messages for what the current transaction applies.

    With the database task backend (production) the task rows are written in this transaction:
    they commit together with the callbacks that produced them or not at all, so a worker dying
    right after the commit cannot lose a welcome (WeCom gives 20 seconds, once). Backends that
    run tasks outside this database get them once the transaction has committed."""
    from siyu.wecom import tasks

    if _database_backend(tasks.send_welcome_task) is not None:
        enqueue_welcomes(workspace_id, bodies)
    else:
        transaction.on_commit(lambda: enqueue_welcomes(workspace_id, bodies))


def _database_backend(task: Any) -> Any:
    try:
        from django_tasks_db.backend import DatabaseBackend
    except ImportError:
        return None
    backend = task.get_backend() if hasattr(task, "get_backend") else None
    return backend if isinstance(backend, DatabaseBackend) else None


def enqueue_welcomes(workspace_id: int, bodies: list[dict[str, Any]]) -> None:
    """Queue the welcome messages in one transaction (one commit, not one per message); with
    the database task backend, in one INSERT."""
    from siyu.wecom import tasks

    task = tasks.send_welcome_task
    with transaction.atomic():
        if not _bulk_enqueue(task, [(workspace_id, body) for body in bodies]):
            for body in bodies:
                task.enqueue(workspace_id, body)


def _bulk_enqueue(task: Any, calls: list[tuple[Any, ...]]) -> bool:
    """``DatabaseBackend.enqueue`` for many calls: the same rows (its pre_save default for
    ``run_after`` included) and signals, written with one ``bulk_create``. False for any other
    backend (the caller enqueues one by one)."""
    backend = _database_backend(task)
    if backend is None:
        return False
    from django_tasks.signals import task_enqueued
    from django_tasks_db.compat import normalize_json
    from django_tasks_db.models import DBTaskResult, get_date_max

    backend.validate_task(task)
    rows = [
        DBTaskResult(
            id=backend._get_id(),
            args_kwargs=normalize_json({"args": args, "kwargs": {}}),
            priority=task.priority,
            task_path=task.module_path,
            queue_name=task.queue_name,
            run_after=task.run_after or get_date_max(),
            backend_name=backend.alias,
        )
        for args in calls
    ]
    DBTaskResult.objects.bulk_create(rows)
    for row in rows:
        task_enqueued.send(type(backend), task_result=row.task_result)
    return True


def _staff(workspace: Workspace, adding: list[str], deleting: list[str]) -> dict[str, int]:
    """Staff ids by userid; members who add and are unknown are created at headquarters, as
    ``services.staff_for_userid`` does (in arrival order)."""
    wanted = set(adding) | set(deleting)
    if not wanted:
        return {}
    found = dict(Staff.objects.filter(workspace=workspace, wecom_userid__in=wanted).values_list("wecom_userid", "pk"))
    missing = list(dict.fromkeys(u for u in adding if u not in found))
    if missing:
        hq = OrgUnit.objects.filter(workspace=workspace, kind=OrgUnit.Kind.HQ).order_by("pk").first()
        if hq is None:
            raise NotFound(f"workspace {workspace.slug} has no headquarters unit")
        Staff.objects.bulk_create(
            [Staff(workspace=workspace, wecom_userid=u, org_unit=hq, name=u[:100]) for u in missing],
            ignore_conflicts=True,
        )
        found.update(
            Staff.objects.filter(workspace=workspace, wecom_userid__in=missing).values_list("wecom_userid", "pk")
        )
    return found


def _place(workspace: Workspace, items: list[_Item], source: str) -> None:
    """Every item's customer, found or created by its identity (one ``place_entries``)."""
    if not items:
        return
    entries = [Entry(index=n, keys=[i.key], profile={"source_channel": source}) for n, i in enumerate(items)]
    for item, placement in zip(items, place_entries(workspace, entries, source=source), strict=True):
        item.customer_id = placement.customer_id


def _upsert_relations(workspace: Workspace, adds: list[_Item], staff: dict[str, int]) -> None:
    """``StaffRelation.update_or_create`` for every add: one INSERT ... ON CONFLICT DO UPDATE."""
    rows = [
        (workspace.pk, i.customer_id, staff[i.event.user_id], i.at, 0, i.event.state[:64], "", "", "active", i.at)
        for i in adds
    ]
    if connection.vendor == "postgresql":
        # One JSON parameter: psycopg parses a statement with thousands of placeholders slowly.
        names = list(RELATION_COLUMNS)
        columns = ", ".join(f"{n} {PG_CASTS[k]}" for n, k in zip(names, RELATION_KINDS, strict=True))
        values = f"SELECT {', '.join(names)} FROM json_to_recordset(%s::json) AS v({columns})"
        sql = RELATION_UPSERT.replace("VALUES {values}", values)
        with connection.cursor() as cursor:
            cursor.execute(sql, [pg_records(names, rows)])
        return
    funcs = adapters(RELATION_KINDS)
    placeholder = "(" + ", ".join(["%s"] * len(RELATION_COLUMNS)) + ")"
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 1000):
            chunk = rows[start : start + 1000]
            params = [None if v is None else f(v) for row in chunk for v, f in zip(row, funcs, strict=True)]
            cursor.execute(RELATION_UPSERT.format(values=", ".join([placeholder] * len(chunk))), params)


def _delete_relations(
    workspace: Workspace, deletes: list[_Item], staff: dict[str, int]
) -> list[tuple[int, str, dict[str, Any], dt.datetime]]:
    """``services.friend_deleted`` for every delete: relations of known customers and staff get
    the new status; those that existed go on the timeline."""
    wanted = [(i, staff[i.event.user_id]) for i in deletes if i.customer_id is not None and i.event.user_id in staff]
    if not wanted:
        return []
    relations = {
        (s, c): pk
        for pk, s, c in StaffRelation.objects.filter(customer_id__in={i.customer_id for i, _ in wanted}).values_list(
            "pk", "staff_id", "customer_id"
        )
    }
    rows, events = [], []
    for item, staff_id in wanted:
        pk = relations.get((staff_id, item.customer_id))
        if pk is None:
            continue
        status = DELETES[item.event.change_type]
        rows.append((pk, status, item.at))
        properties = {"staff_id": staff_id, "userid": item.event.user_id, "by": status, "source": item.event.source}
        events.append((item.customer_id, "wecom_friend_deleted", properties, item.at))
    if rows:
        columns = {"id": "int", "status": "text", "status_changed_at": "datetime"}
        update_from_values("customers_staffrelation", columns, rows, where=pk_in(r[0] for r in rows))
        mark_changed(workspace.pk, [e[0] for e in events])
    return events


def _follow(
    workspace: Workspace, follows: list[_Item], unfollows: list[_Item]
) -> list[tuple[int, str, dict[str, Any], dt.datetime]]:
    """``services.oa_followed`` / ``oa_unfollowed`` for every follower: the follow rows (one
    insert, one update) and the timeline rows."""
    if not follows and not unfollows:
        return []
    existing = {
        (f.app_id, f.openid): f
        for f in OfficialAccountFollow.objects.filter(
            workspace=workspace, openid__in={i.event.openid for i in follows + unfollows}
        )
    }
    new, updates, events = [], [], []
    for i in follows:
        event = i.event
        follow = existing.get((event.app_id, event.openid))
        subscribing = event.event == "subscribe"
        if follow is None:
            new.append(
                OfficialAccountFollow(
                    workspace=workspace,
                    customer_id=i.customer_id,
                    app_id=event.app_id,
                    openid=event.openid,
                    subscribed=True,
                    scene=event.scene[:64],
                    subscribed_at=i.at,
                )
            )
        elif subscribing or not follow.subscribed:
            updates.append((follow.pk, i.customer_id, True, i.at, None, event.scene[:64]))
        name = "oa_subscribed" if subscribing else "oa_scanned"
        events.append((i.customer_id, name, {"app_id": event.app_id, "scene": event.scene}, i.at))
    for i in unfollows:
        follow = existing.get((i.event.app_id, i.event.openid))
        if follow is None or not follow.subscribed:
            continue
        updates.append((follow.pk, follow.customer_id, False, follow.subscribed_at, i.at, follow.scene))
        if i.customer_id is not None:
            events.append((i.customer_id, "oa_unsubscribed", {"app_id": i.event.app_id}, i.at))
    if new:
        OfficialAccountFollow.objects.bulk_create(new)
    if updates:
        columns = {
            "id": "int",
            "customer_id": "int",
            "subscribed": "bool",
            "subscribed_at": "datetime",
            "unsubscribed_at": "datetime",
            "scene": "text",
        }
        update_from_values("customers_officialaccountfollow", columns, updates, where=pk_in(u[0] for u in updates))
    return events
