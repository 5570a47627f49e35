"""Broadcasts: audience, A/B split and holdout, preview, scheduling, cancel, report and lift."""

from __future__ import annotations

import datetime as dt

import pytest

from siyu.channels.models import SandboxMessage
from siyu.channels.services import create_account, record_opt_out, set_consent
from siyu.core.errors import InvalidInput
from siyu.customers.models import Customer, Identity
from siyu.messaging import broadcasts, dispatch
from siyu.messaging.broadcasts import VariantIn
from siyu.messaging.models import Broadcast, OutboundMessage
from siyu.messaging.rules import holdout_bucket, lift, variant_slot
from siyu.tags.models import CustomerTag, Tag, TagGroup
from siyu.tracking.models import Order
from tests.test_outbox import NOON, clock_at  # noqa: F401  (fixture)


@pytest.fixture
def audience(brand):
    """120 customers tagged 高意向, with phones and marketing consent except every 10th."""
    ws = brand.workspace
    group = TagGroup.objects.create(workspace=ws, name="意向")
    tag = Tag.objects.create(workspace=ws, group=group, name="高意向")
    people = []
    for n in range(120):
        c = Customer.objects.create(workspace=ws, name=f"客户{n}", created_at=NOON, updated_at=NOON)
        Identity.objects.create(workspace=ws, customer=c, type="phone", value=f"139{n:08d}", created_at=NOON)
        CustomerTag.objects.create(workspace=ws, customer=c, tag=tag, created_at=NOON)
        if n % 10:
            set_consent(ws.pk, c.pk, channel="sms", purpose="marketing", granted=True, source="test")
        people.append(c)
    return tag, people


@pytest.fixture
def sandbox(brand):
    return create_account(brand.workspace, name="沙箱", provider="sandbox", medium="sms", rate_per_second=10_000)


def make(brand, sandbox, tag, **kw):
    defaults = dict(
        name="双十二预热",
        account_id=sandbox.pk,
        tags_any=[tag.pk],
        variants=[VariantIn("A", 1, body="{{ customer.name }}，双十二提前购"), VariantIn("B", 1, body="双十二好礼")],
        holdout_percent=20,
    )
    defaults.update(kw)
    return broadcasts.create_broadcast(brand.workspace, **defaults)


def test_split_holdout_and_preview_match_what_dispatch_does(brand, sandbox, audience, clock_at):  # noqa: F811
    tag, people = audience
    record_opt_out(brand.workspace.pk, [people[1].pk], source="console")
    b = make(brand, sandbox, tag)
    preview = broadcasts.preview(b)
    assert preview["audience"] == 120
    expected_holdout = sum(1 for c in people if holdout_bucket(c.pk, b.pk) < 2000)
    assert preview["holdout"] == expected_holdout
    treated = [c for c in people if holdout_bucket(c.pk, b.pk) >= 2000]
    no_consent = sum(1 for c in treated if people.index(c) % 10 == 0)
    opted = 1 if holdout_bucket(people[1].pk, b.pk) >= 2000 else 0
    assert preview["suppressed"] == {k: v for k, v in {"no_consent": no_consent, "opted_out": opted}.items() if v}
    assert preview["would_send"] == len(treated) - no_consent - opted

    broadcasts.send(b)
    b.refresh_from_db()
    assert b.status == "sending" and b.audience_size == 120
    # Assignment in SQL equals the Python rule.
    for m in OutboundMessage.objects.filter(broadcast=b):
        labels = {v.pk: v.label for v in b.variants.all()}
        assert (m.state == "holdout") == (holdout_bucket(m.customer_id, b.pk) < 2000)
        assert labels[m.variant_id] == ["A", "B"][variant_slot(m.customer_id, b.pk, 2)]
    dispatch.run_once("w")
    assert SandboxMessage.objects.count() == preview["would_send"]
    report = broadcasts.report(b)
    assert report["audience"] == 120 and report["holdout"] == expected_holdout
    assert report["sent"] == report["delivered"] == preview["would_send"]
    assert report["suppressed"] == preview["suppressed"]
    assert {v["label"] for v in report["variants"]} == {"A", "B"}
    assert sum(v["sent"] for v in report["variants"]) == preview["would_send"]
    # Personalisation by variant: A carries the name.
    a_id = b.variants.get(label="A").pk
    first_a = OutboundMessage.objects.filter(broadcast=b, variant_id=a_id, state="delivered").first()
    assert first_a.body.startswith(Customer.objects.get(pk=first_a.customer_id).name + "，")
    broadcasts.finish_done(NOON)
    b.refresh_from_db()
    assert b.status == "sent"


def test_starting_twice_writes_each_recipient_once(brand, sandbox, audience, clock_at):  # noqa: F811
    tag, _people = audience
    b = make(brand, sandbox, tag)
    broadcasts.materialize(b, NOON)
    Broadcast.objects.filter(pk=b.pk).update(status="draft")  # as if a crash happened mid-start
    broadcasts.materialize(b, NOON)
    assert OutboundMessage.objects.filter(broadcast=b).count() == 120


def test_report_lift_against_holdout(brand, sandbox, audience, clock_at):  # noqa: F811
    tag, _people = audience
    b = make(brand, sandbox, tag, conversion_days=7)
    broadcasts.send(b)
    dispatch.run_once("w")
    rows = list(OutboundMessage.objects.filter(broadcast=b).values_list("customer_id", "state"))
    treated = [c for c, s in rows if s != "holdout"]
    control = [c for c, s in rows if s == "holdout"]
    # Half of the treated buy within the window, a tenth of the control; one late order doesn't count.
    buyers = treated[: len(treated) // 2] + control[: len(control) // 10]
    for n, cid in enumerate(buyers):
        Order.objects.create(workspace=brand.workspace, customer_id=cid, order_no=f"o{n}", total_fen=10000,
                             paid_fen=9900, paid_at=NOON + dt.timedelta(days=2), created_at=NOON, updated_at=NOON)  # fmt: skip
    Order.objects.create(workspace=brand.workspace, customer_id=treated[-1], order_no="late", total_fen=1,
                         paid_fen=1, paid_at=NOON + dt.timedelta(days=8), created_at=NOON, updated_at=NOON)  # fmt: skip
    report = broadcasts.report(b)
    assert report["treated"]["size"] == len(treated) and report["control"]["size"] == len(control)
    assert report["converted"] == len(treated) // 2
    assert report["revenue_fen"] == 9900 * (len(treated) // 2)
    expected = lift(len(treated), len(treated) // 2, len(control), len(control) // 10)
    assert report["lift"]["difference"] == pytest.approx(expected.difference)
    assert report["lift"]["low"] < report["lift"]["difference"] < report["lift"]["high"]
    assert report["lift"]["significant"] is True


def test_lift_statistics():
    assert lift(0, 0, 10, 1) is None
    result = lift(1000, 100, 1000, 80)
    assert result.difference == pytest.approx(0.02)
    # Wald interval: 0.02 ± 1.96 * sqrt(.1*.9/1000 + .08*.92/1000)
    assert result.high - result.difference == pytest.approx(1.96 * (0.09 / 1000 + 0.0736 / 1000) ** 0.5)
    assert result.significant is False


def test_schedule_and_cancel(brand, sandbox, audience, clock_at):  # noqa: F811
    tag, _ = audience
    later = NOON + dt.timedelta(hours=2)
    b = make(brand, sandbox, tag, scheduled_at=later)
    broadcasts.send(b)
    b.refresh_from_db()
    assert b.status == "scheduled" and not OutboundMessage.objects.filter(broadcast=b).exists()
    dispatch.run_once("w", now=NOON + dt.timedelta(hours=1))
    assert not OutboundMessage.objects.filter(broadcast=b).exists()
    clock_at(later)
    dispatch.run_once("w")
    b.refresh_from_db()
    assert b.status == "sent" and SandboxMessage.objects.exists()

    c = make(brand, sandbox, tag, name="取消的群发")
    broadcasts.send(c)
    stopped = broadcasts.cancel(c)
    assert stopped == OutboundMessage.objects.filter(broadcast=c, reason="cancelled").count() > 0
    dispatch.run_once("w")
    assert not OutboundMessage.objects.filter(broadcast=c, state__in=["sent", "delivered"]).exists()
    with pytest.raises(InvalidInput):
        broadcasts.send(c)


def test_validation_before_anything_is_sent(brand, sandbox, audience):
    tag, _ = audience
    with pytest.raises(InvalidInput) as err:
        make(brand, sandbox, tag, variants=[VariantIn("A", body="ok"), VariantIn("B", body="{{ customer.phone }}")])
    assert err.value.field == "variants.1.body"
    with pytest.raises(InvalidInput) as err:
        make(brand, sandbox, tag, variants=[VariantIn("A", body="x"), VariantIn("A", body="y")])
    assert err.value.field == "variants.1.label"
    with pytest.raises(InvalidInput) as err:
        make(brand, sandbox, tag, tags_any=[999999])
    assert err.value.field == "tags_any.0"
    with pytest.raises(InvalidInput) as err:
        make(brand, sandbox, tag, holdout_percent=80)
    assert err.value.field == "holdout_percent"
    email = create_account(brand.workspace, name="邮件", provider="sandbox", medium="email")
    with pytest.raises(InvalidInput) as err:
        make(brand, email, tag, variants=[VariantIn("A", body="hello")])
    assert err.value.field == "variants.0.subject"
    assert not Broadcast.objects.exists()


def test_a_service_broadcast_needs_a_service_template(brand, sandbox, audience):
    from siyu.content.models import MessageTemplate

    tag, _ = audience
    with pytest.raises(InvalidInput) as err:
        make(brand, sandbox, tag, purpose="service", variants=[VariantIn("A", body="大促来啦")])
    assert err.value.field == "variants.0.template_id"
    now = NOON
    promo = MessageTemplate.objects.create(workspace=brand.workspace, name="促销", medium="sms", purpose="marketing",
                                           body="大促来啦", created_at=now, updated_at=now)  # fmt: skip
    with pytest.raises(InvalidInput) as err:
        make(brand, sandbox, tag, purpose="service", variants=[VariantIn("A", template_id=promo.pk)])
    assert err.value.field == "variants.0.template_id"
    notice = MessageTemplate.objects.create(workspace=brand.workspace, name="停业通知", medium="sms", purpose="service",
                                            body="门店 12 月 1 日停业装修", created_at=now, updated_at=now)  # fmt: skip
    b = make(
        brand, sandbox, tag, purpose="service", holdout_percent=0, variants=[VariantIn("A", template_id=notice.pk)]
    )
    assert b.purpose == "service"
