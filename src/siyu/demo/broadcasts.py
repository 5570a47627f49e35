"""The demo brand's reach: sandbox channel accounts, a few opt-outs, and three broadcasts —
one sent a week ago (with deliveries, clicks and orders, so its report shows lift against
the holdout), one scheduled for tomorrow morning and one draft."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable

from django.db import connection

from siyu.channels.models import ChannelAccount
from siyu.channels.services import compliance_settings, create_account
from siyu.core.sql import adapt
from siyu.messaging import broadcasts, dispatch
from siyu.messaging.broadcasts import VariantIn
from siyu.messaging.models import Broadcast, OutboundMessage
from siyu.org.models import Workspace
from siyu.segments.models import Segment
from siyu.tracking.services import ingest_orders, record_system_events


def build_broadcasts(workspace: Workspace, now: dt.datetime, rng: random.Random, echo: Callable[[str], None]) -> None:
    compliance_settings(workspace.pk)
    sms = create_account(workspace, name="短信（沙箱）", provider="sandbox", medium="sms", rate_per_second=50_000)
    create_account(workspace, name="邮件（沙箱）", provider="sandbox", medium="email", rate_per_second=50_000)
    _opt_outs(workspace, now)
    segment = (
        Segment.objects.filter(workspace=workspace, name="沉睡老客").first()
        or Segment.objects.filter(workspace=workspace).order_by("pk").first()
    )
    if segment is None:
        return
    started = (now - dt.timedelta(days=8)).replace(hour=10, minute=0)
    sent = broadcasts.create_broadcast(
        workspace,
        name="老客回购 · 会员日 8 折",
        account_id=sms.pk,
        segment_id=segment.pk,
        variants=[
            VariantIn(
                "A",
                1,
                body="{{ customer.name }}您好，会员日全场 8 折，券码 {{ coupon_code }}：{{ link('https://shop.example.com/member-day') }}",
            ),
            VariantIn(
                "B",
                1,
                body="好久不见！会员日专属 8 折券 {{ coupon_code }} 已到账，点击领取 {{ link('https://shop.example.com/member-day?v=b') }}",
            ),
        ],
        holdout_percent=10,
        coupon_code="VIP8ZHE",
        conversion_days=7,
    )
    broadcasts.materialize(sent, started)
    worker = "demo"
    while dispatch.run_once(worker, now=started).claimed:
        pass
    with connection.cursor() as cursor:
        # Dispatch stamps the real time; the demo's broadcast happened a week ago.
        cursor.execute(
            "UPDATE messaging_outboundmessage SET sent_at = %s, delivered_at = %s, gated_at = %s, created_at = %s, "
            "updated_at = %s WHERE broadcast_id = %s",
            [adapt(started, "datetime")] * 5 + [sent.pk],
        )
    broadcasts.finish_done(started + dt.timedelta(minutes=5))
    Broadcast.objects.filter(pk=sent.pk).update(
        created_at=started - dt.timedelta(hours=20), updated_at=started + dt.timedelta(minutes=5)
    )
    _clicks_and_orders(workspace, sent.pk, started, rng)
    report = broadcasts.report(sent)
    echo(
        f"群发 / broadcast: {report['audience']:,} audience, {report['sent']:,} sent, "
        f"{report['suppressed_total']:,} suppressed, {report['clicked']:,} clicked, {report['converted']:,} converted"
    )
    tomorrow = (now + dt.timedelta(days=1)).replace(hour=10, minute=0)
    scheduled = broadcasts.create_broadcast(
        workspace,
        name="双十二预热 · 高意向客户",
        account_id=sms.pk,
        segment_id=(Segment.objects.filter(workspace=workspace, name="高意向未购").first() or segment).pk,
        variants=[
            VariantIn(
                "A",
                1,
                body="{{ customer.name }}，您收藏的好物双十二直降，提前加购：{{ link('https://shop.example.com/1212') }}",
            )
        ],
        holdout_percent=10,
        scheduled_at=tomorrow,
    )
    broadcasts.send(scheduled, now=now)
    email = ChannelAccount.objects.get(workspace=workspace, name="邮件（沙箱）")
    broadcasts.create_broadcast(
        workspace,
        name="十二月会员通讯（草稿）",
        account_id=email.pk,
        segment_id=segment.pk,
        variants=[
            VariantIn(
                "A",
                1,
                subject="{{ brand.name }} 十二月会员通讯",
                body="{{ customer.name }}您好：\n本月新品与护肤课堂见 {{ link('https://shop.example.com/news/12') }}\n"
                "不想再收到？{{ unsubscribe_url }}",
            )
        ],
        holdout_percent=0,
    )


def _opt_outs(workspace: Workspace, now: dt.datetime) -> None:
    """One in fifty customers with a phone replied 退订 at some point."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO channels_optout (workspace_id, customer_id, source, detail, created_at) "
            "SELECT i.workspace_id, i.customer_id, 'sms_reply', '退订', %s FROM customers_identity i "
            "WHERE i.workspace_id = %s AND i.type = 'phone' AND i.customer_id %% 50 = 7 ON CONFLICT DO NOTHING",
            [adapt(now - dt.timedelta(days=20), "datetime"), workspace.pk],
        )


def _clicks_and_orders(workspace: Workspace, broadcast_id: int, started: dt.datetime, rng: random.Random) -> None:
    rows = list(OutboundMessage.objects.filter(broadcast_id=broadcast_id).values_list("id", "customer_id", "state"))
    delivered = [(mid, cid) for mid, cid, state in rows if state == "delivered"]
    clicked = [(mid, cid) for mid, cid in delivered if rng.random() < 0.12]
    at = started + dt.timedelta(hours=1)
    OutboundMessage.objects.filter(pk__in=[mid for mid, _ in clicked]).update(clicked_at=at)
    record_system_events(
        workspace.pk,
        [(cid, "link_clicked", {"message_id": mid, "broadcast_id": broadcast_id}, at) for mid, cid in clicked],
        source="link",
    )
    # Treated customers buy a little more often than the holdout: the lift the report measures.
    orders = []
    for mid, cid, state in rows:
        rate = 0.03 if state == "holdout" else (0.09 if (mid, cid) in clicked or rng.random() < 0.5 else 0.03)
        if rng.random() < rate:
            paid = started + dt.timedelta(days=rng.random() * 6.5)
            fen = rng.choice([12900, 19900, 29900, 45900])
            orders.append(
                {
                    "order_no": f"BC{broadcast_id}-{cid}",
                    "customer_id": cid,
                    "total_fen": fen,
                    "paid_fen": int(fen * 0.8),
                    "discount_fen": fen - int(fen * 0.8),
                    "paid_at": paid.isoformat(),
                    "channel": "mini_program",
                }
            )
    for start in range(0, len(orders), 1000):
        ingest_orders(workspace, orders[start : start + 1000], source="demo")
