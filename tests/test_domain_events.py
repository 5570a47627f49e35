"""Domain events reach webhook subscribers through the outbox: one row per event and subscriber,
idempotent, and nothing (after one lookup) when nobody subscribes."""

from __future__ import annotations

import base64
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from siyu.channels.base import Outcome, OutMessage
from siyu.channels.models import ChannelAccount
from siyu.channels.services import account_config, create_account, disable_account
from siyu.channels.webhook.channel import WebhookChannel
from siyu.customers.models import Customer
from siyu.customers.services import upsert_customers
from siyu.messaging.models import OutboundMessage
from siyu.segments.models import SegmentMembership
from siyu.segments.services import refresh_workspace, save_segment
from siyu.tracking.models import Order
from siyu.tracking.services import ingest_orders
from tests.fakes.webhook_receiver import FakeWebhookReceiver

SECRET = "whsec_" + base64.b64encode(b"acme-crm-webhook-signing-key-32b").decode()


def webhook(brand, *events: str, name: str = "CRM") -> ChannelAccount:
    return create_account(
        brand.workspace,
        name=name,
        provider="webhook",
        medium="app",
        settings={"url": "http://127.0.0.1:9/unused", "events": list(events)},
        secrets={"signing_secret": SECRET},
    )


def events(account: ChannelAccount | None = None) -> list[OutboundMessage]:
    rows = OutboundMessage.objects.filter(purpose="system").order_by("id")
    return list(rows.filter(account=account) if account is not None else rows)


def event_json(row: OutboundMessage) -> dict:
    parsed = json.loads(row.body)
    assert row.payload == {"event": parsed}
    return parsed


def order(order_no: str, phone: str = "13800000001", **extra) -> dict:
    return {
        "order_no": order_no,
        "identity": {"type": "phone", "value": phone},
        "total_fen": 39900,
        "paid_at": "2026-11-11T00:00:01+08:00",
        **extra,
    }


def person(phone: str, **extra) -> dict:
    return {"identities": [{"type": "phone", "value": phone}], **extra}


def test_a_paid_order_queues_one_order_paid_event_and_a_replay_queues_none(brand):
    crm = webhook(brand, "order.paid")
    ingest_orders(brand.workspace, [order("A1"), order("R1", status="refunded")], source="api")
    ingest_orders(brand.workspace, [order("A1")], source="api")

    [row] = events()
    paid = Order.objects.get(order_no="A1")
    assert (row.account_id, row.purpose, row.state, row.medium) == (crm.pk, "system", "queued", "app")
    assert row.idempotency_key == f"evt:{crm.pk}:order.paid:A1"
    assert row.customer_id == paid.customer_id
    event = event_json(row)
    assert event["type"] == "order.paid"
    assert event["data"] == {
        "order_id": paid.pk,
        "order_no": "A1",
        "customer_id": paid.customer_id,
        "total_fen": 39900,
        "paid_fen": 39900,
        "currency": "CNY",
        "paid_at": paid.paid_at.isoformat(),
        "store_id": None,
        "channel": "",
    }


def test_the_queued_event_is_delivered_signed_to_the_brands_endpoint(brand):
    receiver = FakeWebhookReceiver(SECRET).start()
    try:
        crm = create_account(
            brand.workspace,
            name="CRM",
            provider="webhook",
            medium="app",
            settings={"url": receiver.url, "events": ["order.paid"]},
            secrets={"signing_secret": SECRET},
        )
        ingest_orders(brand.workspace, [order("A7")], source="api")
        [row] = events()
        out = OutMessage(row.id, row.to_address, row.subject, row.body, row.purpose, row.idempotency_key, row.payload)
        [result] = WebhookChannel().send(account_config(crm), [out])
    finally:
        receiver.stop()
    assert result.outcome is Outcome.DELIVERED
    assert receiver.processed[row.idempotency_key]["data"]["order_no"] == "A7"
    assert receiver.bad_signatures == 0


def test_a_new_customer_queues_customer_created_once(brand):
    crm = webhook(brand, "customer.created")
    first = upsert_customers(brand.workspace, [person("13800000002", name="林")], source="api")
    upsert_customers(brand.workspace, [person("13800000002", city="上海")], source="api")

    [row] = events(crm)
    assert row.idempotency_key == f"evt:{crm.pk}:customer.created:{first.ids[0]}"
    assert event_json(row)["data"] == {"customer_id": first.ids[0], "source": "api"}


def test_tags_added_queue_tag_added_only_for_tags_the_customer_lacked(brand):
    crm = webhook(brand, "tag.added")
    result = upsert_customers(brand.workspace, [person("13800000003", tags=["会员/金卡"])], source="api")
    upsert_customers(brand.workspace, [person("13800000003", tags=["会员/金卡", "兴趣/护肤"])], source="api")

    added = [event_json(row)["data"] for row in events(crm)]
    customer_id = result.ids[0]
    assert [(d["customer_id"], d["group"], d["tag"]) for d in added] == [
        (customer_id, "会员", "金卡"),
        (customer_id, "兴趣", "护肤"),
    ]


def test_entering_a_segment_queues_segment_entered_per_stay(brand):
    crm = webhook(brand, "segment.entered")
    segment = save_segment(
        brand.workspace,
        name="上海客户",
        rule={"version": 1, "match": {"type": "field", "field": "city", "op": "eq", "value": "上海"}},
    )
    ids = upsert_customers(
        brand.workspace,
        [person("13800000011", city="上海"), person("13800000012", city="上海"), person("13800000013", city="杭州")],
        source="api",
    ).ids
    refresh_workspace(brand.workspace)
    refresh_workspace(brand.workspace)

    rows = events(crm)
    stays = dict(SegmentMembership.objects.filter(segment=segment).values_list("customer_id", "pk"))
    assert sorted(r.customer_id for r in rows) == sorted(ids[:2])
    for row in rows:
        assert row.idempotency_key == f"evt:{crm.pk}:segment.entered:{stays[row.customer_id]}"
        event = event_json(row)
        assert event["type"] == "segment.entered"
        assert event["data"] == {"segment_id": segment.pk, "segment": "上海客户", "customer_id": row.customer_id}

    # Leaving and coming back is a new stay, told again.
    upsert_customers(brand.workspace, [person("13800000011", city="杭州")], source="api")
    refresh_workspace(brand.workspace)
    upsert_customers(brand.workspace, [person("13800000011", city="上海")], source="api")
    refresh_workspace(brand.workspace)
    assert sorted(r.customer_id for r in events(crm)) == sorted([ids[0], ids[0], ids[1]])


def test_every_subscriber_gets_its_own_row_and_others_get_none(brand):
    crm = webhook(brand, "order.paid", name="CRM")
    app = webhook(brand, "order.paid", "tag.added", name="App")
    bystander = webhook(brand, "tag.added", name="Tags only")
    ingest_orders(brand.workspace, [order("B1")], source="api")
    assert [len(events(a)) for a in (crm, app, bystander)] == [1, 1, 0]

    disable_account(app.pk, "410 Gone")
    ingest_orders(brand.workspace, [order("B2")], source="api")
    assert [len(events(a)) for a in (crm, app)] == [2, 1]


@pytest.mark.parametrize("subscribed_to", [None, "customer.opted_out"])
def test_without_a_subscriber_nothing_is_queued_and_each_path_costs_one_lookup(brand, subscribed_to):
    if subscribed_to:
        webhook(brand, subscribed_to)
    save_segment(
        brand.workspace,
        name="上海客户",
        rule={"version": 1, "match": {"type": "field", "field": "city", "op": "eq", "value": "上海"}},
    )
    with CaptureQueriesContext(connection) as queries:
        upsert_customers(brand.workspace, [person("13800000021", city="上海", tags=["会员/金卡"])], source="api")
        ingest_orders(brand.workspace, [order("C1", phone="13800000021")], source="api")
        refresh_workspace(brand.workspace)

    assert events() == []
    assert Customer.objects.filter(workspace=brand.workspace).count() == 1
    lookups = [q["sql"] for q in queries.captured_queries if "channels_channelaccount" in q["sql"]]
    outbox = [q["sql"] for q in queries.captured_queries if "messaging_outboundmessage" in q["sql"]]
    # customer.created, tag.added, order.paid, segment.entered: one account lookup each.
    assert len(lookups) == 4 and outbox == []
