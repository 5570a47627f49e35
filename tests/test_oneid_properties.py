"""Property-based OneID tests: for any sequence of upserts, links, events, orders and
messages, linked identities resolve to one survivor (or to profiles held apart by a
recorded conflict), no unique identity slot is doubled, and no event, order or
message is lost or duplicated."""

from __future__ import annotations

import os

from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siyu.conversations.models import Message
from siyu.core import clock
from siyu.customers.models import Customer, Identity, IdentityConflict
from siyu.customers.rules import IdentityKey, unique_clashes
from siyu.customers.services import link_identities, live_customer_id, upsert_customers
from siyu.tracking.models import Event, Order
from siyu.tracking.services import ingest_events, ingest_orders

# A small pool so that sequences collide often: two people's worth of unique ids, shared phones.
POOL = [
    ("phone", "13800000001", ""),
    ("phone", "13800000002", ""),
    ("email", "a@example.com", ""),
    ("member_no", "M1", ""),
    ("member_no", "M2", ""),
    ("wecom_external_userid", "wmA", ""),
    ("wecom_external_userid", "wmB", ""),
    ("wechat_openid", "oA", "wxapp"),
    ("anonymous_id", "dev1", ""),
    ("anonymous_id", "dev2", ""),
]

identity_sets = st.lists(st.sampled_from(POOL), min_size=1, max_size=3, unique=True)
operation = st.one_of(
    st.tuples(st.just("upsert"), identity_sets),
    st.tuples(st.just("link"), identity_sets),
    st.tuples(st.just("event"), st.sampled_from(POOL)),
    st.tuples(st.just("event_by_id"), st.integers(min_value=0, max_value=20)),
    st.tuples(st.just("order"), st.sampled_from(POOL)),
    st.tuples(st.just("message"), st.sampled_from(POOL)),
)


def as_json(identity):
    type_, value, app_id = identity
    return {"type": type_, "value": value, **({"app_id": app_id} if app_id else {})}


def one_per_person(identities):
    """Items naming two values of one unique slot are rejected by design; keep the first."""
    kept, slots = [], set()
    for type_, value, app_id in identities:
        key = IdentityKey(type_, app_id, value)
        if key.is_unique_type and key.slot in slots:
            continue
        slots.add(key.slot)
        kept.append((type_, value, app_id))
    return kept


@settings(
    max_examples=int(os.environ.get("SIYU_HYPOTHESIS_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(operation, min_size=1, max_size=12))
def test_any_sequence_keeps_oneid_invariants(brand, ops):
    ws = brand.workspace
    with transaction.atomic():
        returned_ids: list[int] = []
        linked_sets: list[list[tuple[str, str, str]]] = []
        events = orders = messages = 0
        for n, (kind, arg) in enumerate(ops):
            if kind == "upsert":
                identities = one_per_person(arg)
                result = upsert_customers(ws, [{"identities": [as_json(i) for i in identities]}], source="t")
                assert not result.errors
                returned_ids.append(result.ids[0])
                linked_sets.append(identities)
            elif kind == "link":
                identities = one_per_person(arg)
                answer = link_identities(ws, {"identities": [as_json(i) for i in identities]}, source="t")
                returned_ids.append(answer["customer_id"])
                linked_sets.append(identities)
            elif kind == "event":
                result = ingest_events(
                    ws, [{"identity": as_json(arg), "name": "e", "timestamp": "2026-11-01T00:00:00"}], source="t"
                )
                events += result.accepted
                linked_sets.append([arg])
            elif kind == "event_by_id" and returned_ids:
                cid = returned_ids[arg % len(returned_ids)]
                result = ingest_events(
                    ws,
                    [{"customer_id": cid, "name": "e", "timestamp": "2026-11-01T00:00:00", "event_id": f"ev{n}"}],
                    source="t",
                )
                assert result.accepted == 1 and not result.errors
                events += 1
            elif kind == "order":
                result = ingest_orders(
                    ws,
                    [{"identity": as_json(arg), "order_no": f"O{n}", "total_fen": 100, "paid_at": "2026-11-01T00:00"}],
                    source="t",
                )
                assert result.accepted == 1
                orders += 1
                linked_sets.append([arg])
            elif kind == "message":
                # A WeCom message arrives from whoever holds this identity (created if new).
                cid = upsert_customers(ws, [{"identities": [as_json(arg)]}], source="t").ids[0]
                Message.objects.create(workspace=ws, customer_id=cid, direction="in", text="价格", sent_at=clock.now())
                messages += 1
                linked_sets.append([arg])

        live = set(Customer.objects.filter(workspace=ws, merged_into__isnull=True).values_list("pk", flat=True))
        keys_of: dict[int, set[IdentityKey]] = {}
        owner: dict[IdentityKey, int] = {}
        for cid, type_, app_id, value in Identity.objects.filter(workspace=ws).values_list(
            "customer_id", "type", "app_id", "value"
        ):
            key = IdentityKey(type_, app_id, value)
            owner[key] = cid
            keys_of.setdefault(cid, set()).add(key)

        # Every identity belongs to a live profile; merged profiles hold nothing.
        assert set(owner.values()) <= live
        for model in (Event, Order, Message):
            assert set(model.objects.filter(workspace=ws).values_list("customer_id", flat=True)) <= live
        # Nothing lost, nothing duplicated.
        assert Event.objects.filter(workspace=ws).count() == events
        assert Order.objects.filter(workspace=ws).count() == orders
        assert Message.objects.filter(workspace=ws).count() == messages
        # No live profile holds two values of a one-per-person identity type.
        for keys in keys_of.values():
            assert not unique_clashes(keys, keys)
        # Every id ever answered still resolves to a live profile.
        for cid in returned_ids:
            assert live_customer_id(ws.pk, cid) in live
        # Identities named together resolve to one survivor, unless held apart by an open conflict.
        open_pairs = {
            frozenset(p)
            for p in IdentityConflict.objects.filter(workspace=ws, status="open").values_list(
                "customer_id", "other_customer_id"
            )
        }
        for identities in linked_sets:
            holders = {owner[IdentityKey(t, a, v)] for t, v, a in identities}
            if len(holders) > 1:
                for holder in holders:
                    assert any(holder in pair and (pair - {holder}) <= holders for pair in open_pairs)
        # A conflict is only ever recorded between profiles that really clash.
        for pair in open_pairs:
            a, b = sorted(pair)
            assert a != b and unique_clashes(keys_of.get(a, set()), keys_of.get(b, set())), (a, b)
        transaction.set_rollback(True)
