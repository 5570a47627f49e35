"""Attribution of many adds at once: ``record_add``'s rules in a constant number of statements.

The callback inbox applies bursts of add / follow events in batches (``siyu.wecom.batch_apply``);
calling ``attribution.record_add`` per add would cost ~10 statements each. ``record_adds`` takes
the adds in arrival order and applies exactly the same rules, deciding in Python over rows read
once and writing each table once:

- the code by ``state`` (one query for every state, tags prefetched);
- live customer ids, the customers (locked, as ``record_add`` locks one), which of them already
  have an add, and which (code, customer, time) adds exist (a retried event writes nothing);
- per add, in order: first touch, ``latest_source`` (an older add never replaces a newer one),
  owner and store when empty, the code's tags, ``channel_code_added`` on the timeline and the
  welcome message rendered for the customer as it is after the add;
- then one INSERT of the adds, one UPDATE of the customers, one INSERT of the tags, one
  ``record_system_events`` and one ``mark_changed``.

``attribution.record_add`` stays the reference; ``tests/test_wecom_batch_apply.py`` applies the
same random events both ways and compares the outcome.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection

from siyu.acquisition.attribution import GENERIC_SOURCES, apply_touch
from siyu.acquisition.models import ChannelCode, ChannelCodeAdd
from siyu.acquisition.welcome import Welcome, welcome_payload
from siyu.core import clock
from siyu.core.sql import insert_rows, update_from_values
from siyu.customers.models import Customer
from siyu.customers.services import live_customer_ids, mark_changed
from siyu.org.models import Staff, Workspace
from siyu.tags.models import TagSource
from siyu.tracking.services import record_system_events

ADD_COLUMNS = {"workspace_id": "int", "code_id": "int", "customer_id": "int", "staff_id": "int", "at": "datetime"}
ADD_COLUMNS["first_touch"] = "bool"
TAG_COLUMNS = {
    "workspace_id": "int",
    "customer_id": "int",
    "tag_id": "int",
    "source": "text",
    "source_ref": "text",
    "created_at": "datetime",
}
PROFILE_COLUMNS = {
    "id": "int",
    "attributes": "json",
    "source_channel": "text",
    "source_detail": "text",
    "owner_staff_id": "int",
    "store_id": "int",
    "updated_at": "datetime",
}


def pk_in(ids) -> str:
    """``update_from_values``' ``where`` naming the rows by primary key: the planner then reads
    them through the index instead of joining the whole table against the values (integers
    only, so they are written inline)."""
    literal = ",".join(str(int(i)) for i in ids)
    if connection.vendor == "postgresql":
        return "{t}.id = ANY('{" + literal + "}'::bigint[])"
    return "{t}.id IN (" + literal + ")"


@dataclass(frozen=True)
class Credit:
    """One add or follow to attribute, as ``record_add`` takes it."""

    state: str
    customer_id: int
    staff_id: int | None
    at: dt.datetime


def codes_for_states(workspace: Workspace, states: set[str]) -> dict[str, ChannelCode]:
    """``code_for_state`` for many states: one query (and one for their tags)."""
    wanted = {s.strip() for s in states if s and s.strip() and len(s.strip()) <= 64}
    if not wanted:
        return {}
    codes = (
        ChannelCode.objects.filter(workspace=workspace, state__in=wanted)
        .select_related("store", "workspace", "group_qr_material")
        .prefetch_related("tags")
    )
    return {code.state: code for code in codes}


def record_adds(workspace: Workspace, credits: Sequence[Credit]) -> list[Welcome | None]:
    """``record_add`` for each credit in order; returns each one's welcome (or None)."""
    out: list[Welcome | None] = [None] * len(credits)
    codes = codes_for_states(workspace, {c.state for c in credits})
    todo = [(n, c, codes[c.state.strip()]) for n, c in enumerate(credits) if c.state.strip() in codes]
    if not todo:
        return out
    live = live_customer_ids(workspace.pk, sorted({c.customer_id for _, c, _ in todo}))
    todo = [(n, c, code, live[c.customer_id]) for n, c, code in todo if c.customer_id in live]
    if not todo:
        return out
    ids = sorted({cid for *_, cid in todo})
    customers = Customer.objects.filter(pk__in=ids)
    if connection.vendor == "postgresql":
        customers = customers.select_for_update(of=("self",))
    customer_of = {c.pk: c for c in customers.order_by("pk")}
    having_adds = set(
        ChannelCodeAdd.objects.filter(customer_id__in=ids).values_list("customer_id", flat=True).distinct()
    )
    existing = set(
        ChannelCodeAdd.objects.filter(customer_id__in=ids, code_id__in={code.pk for _, _, code, _ in todo}).values_list(
            "code_id", "customer_id", "at"
        )
    )
    staff_of = Staff.objects.in_bulk({c.staff_id for _, c, _, _ in todo if c.staff_id})
    now = clock.now()
    adds, tags, events, event_ids, dirty, tagged = [], {}, [], [], {}, set()
    for n, credit, code, cid in todo:
        customer = customer_of.get(cid)
        if customer is None or (code.pk, cid, credit.at) in existing:
            continue
        existing.add((code.pk, cid, credit.at))
        first_touch = (
            customer.source_channel in GENERIC_SOURCES and not customer.source_detail and cid not in having_adds
        )
        having_adds.add(cid)
        adds.append((workspace.pk, code.pk, cid, credit.staff_id, credit.at, first_touch))
        apply_touch(customer, code, credit.staff_id, credit.at, first_touch, now)
        dirty[cid] = customer
        for tag in code.tags.all():
            # The first add to bring a tag writes it (ignore_conflicts in record_add).
            tags.setdefault(
                (cid, tag.pk),
                (workspace.pk, cid, tag.pk, TagSource.RULE, f"channel_code:{code.pk}", credit.at),
            )
            tagged.add(cid)
        properties = {"code_id": code.pk, "code": code.name, "state": code.state, "staff_id": credit.staff_id}
        properties["first_touch"] = first_touch
        events.append((cid, "channel_code_added", properties, credit.at))
        event_ids.append(f"channel_code_added:{code.pk}:{cid}:{int(credit.at.timestamp())}")
        payload = welcome_payload(code, customer, staff_of.get(credit.staff_id) if credit.staff_id else None)
        out[n] = payload if payload.text or payload.attachments else None
    if not adds:
        return out
    # A plain INSERT: an add another worker wrote meanwhile raises IntegrityError, and the
    # caller applies the events one by one (``record_add`` then skips the repeat).
    insert_rows("acquisition_channelcodeadd", ADD_COLUMNS, adds)
    update_from_values(
        "customers_customer",
        PROFILE_COLUMNS,
        [
            (c.pk, c.attributes or {}, c.source_channel, c.source_detail, c.owner_staff_id, c.store_id, now)
            for c in dirty.values()
        ],
        where=pk_in(dirty),
    )
    if tags:
        insert_rows("tags_customertag", TAG_COLUMNS, list(tags.values()), ignore_conflicts=True)
        mark_changed(workspace.pk, tagged)
    record_system_events(workspace.pk, events, source="acquisition", event_ids=event_ids)
    return out
