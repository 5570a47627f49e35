"""Layers: RFM quintiles and cells, lifecycle stages, the 1-9-90 pyramid, change marking, the console page.

All times are explicit: "now" is 2026-11-23 12:00 in Shanghai, and days are Shanghai calendar days.
"""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from siyu.conversations.models import Message
from siyu.core.errors import InvalidInput
from siyu.customers.models import Customer, CustomerChange
from siyu.segments import layer_rules as lr
from siyu.segments.layer_queries import customer_layers
from siyu.segments.layers import layer_settings, recompute_layers, update_layer_settings
from siyu.segments.models import CustomerLayer
from siyu.tracking.counters import add_event_counts, rebuild_order_days
from siyu.tracking.models import Event, Order
from tests.conftest import PASSWORD

TZ = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=TZ)
_order_numbers = itertools.count(1)


def local(days_ago: int, hour: int = 12, minute: int = 0) -> dt.datetime:
    """A Shanghai wall-clock time ``days_ago`` calendar days before NOW's day."""
    day = NOW.date() - dt.timedelta(days=days_ago)
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=TZ)


def customer(brand, *, seen_days_ago: int = 400, last_seen_days_ago: int | None = None, store=None, **attributes):
    first = local(seen_days_ago)
    return Customer.objects.create(
        workspace=brand.workspace,
        name=f"客户{next(_order_numbers)}",
        store=store,
        attributes=attributes,
        first_seen_at=first,
        last_seen_at=local(last_seen_days_ago) if last_seen_days_ago is not None else first,
        created_at=first,
        updated_at=first,
    )


def order(brand, who, at: dt.datetime, yuan: int, *, status="paid", refund_yuan: int = 0) -> None:
    """Store an order and update the day counters, as ingestion does."""
    Order.objects.create(
        workspace=brand.workspace,
        customer=who,
        order_no=f"O{next(_order_numbers)}",
        status=status,
        total_fen=yuan * 100,
        paid_fen=yuan * 100,
        refund_fen=refund_yuan * 100,
        paid_at=at,
        created_at=at,
        updated_at=at,
    )
    rebuild_order_days(brand.workspace.pk, brand.workspace.time_zone, [who.pk])


def event(brand, who, name: str, at: dt.datetime) -> None:
    """Store an event and count it into the day counters, as ingestion does."""
    Event.objects.create(workspace=brand.workspace, customer=who, name=name, occurred_at=at, received_at=NOW)
    add_event_counts(brand.workspace.pk, brand.workspace.time_zone, [(who.pk, name, at)])


def layer(who) -> CustomerLayer:
    return CustomerLayer.objects.get(customer=who)


# Pure rules


def test_quintile_spreads_ranks_evenly_and_ties_share_the_lowest_rank():
    assert [lr.quintile(rank, 10) for rank in range(1, 11)] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert lr.quintile(1, 1) == 1


def test_rfm_cells_name_the_eight_high_low_combinations():
    assert lr.rfm_cell(5, 5, 5) == "important_value"
    assert lr.rfm_cell(4, 1, 4) == "important_grow"
    assert lr.rfm_cell(3, 4, 5) == "important_keep"
    assert lr.rfm_cell(1, 1, 5) == "important_retain"
    assert lr.rfm_cell(5, 5, 3) == "general_value"
    assert lr.rfm_cell(5, 3, 3) == "general_grow"
    assert lr.rfm_cell(2, 4, 2) == "general_keep"
    assert lr.rfm_cell(3, 3, 3) == "general_retain"
    assert lr.rfm_cell(0, 0, 0) == ""
    assert str(lr.RFM_CELL_LABELS["important_value"]) == "重要价值客户"
    assert len(set(lr.RFM_CELLS.values())) == 8


def test_value_tier_follows_the_m_score():
    assert [lr.value_tier(m) for m in range(6)] == ["", "low", "low", "medium", "medium", "high"]


def test_pure_lifecycle_and_pyramid_rules():
    stages = {"new_days": 30, "active_days": 90, "at_risk_days": 180, "dormant_days": 365}
    buyer = {"days_since_first_seen": 500, "days_since_last_seen": 0}
    assert lr.lifecycle(days_since_first_order=30, days_since_last_order=3, **buyer, **stages) == "new"
    assert lr.lifecycle(days_since_first_order=31, days_since_last_order=31, **buyer, **stages) == "active"
    assert lr.lifecycle(days_since_first_order=400, days_since_last_order=366, **buyer, **stages) == "churned"
    prospect = {"days_since_first_order": None, "days_since_last_order": None}
    assert lr.lifecycle(**prospect, days_since_first_seen=5, days_since_last_seen=5, **stages) == "new"
    assert lr.lifecycle(**prospect, days_since_first_seen=99, days_since_last_seen=181, **stages) == "dormant"
    assert lr.pyramid_cuts(200) == (2, 20)
    assert lr.pyramid_cuts(50) == (1, 5)
    assert lr.community_score(invites=1, shares=1, messages=1, group_role="owner") == 5 + 3 + 1 + 20


def test_thresholds_must_widen_in_order():
    with pytest.raises(InvalidInput) as error:
        lr.check_thresholds(lr.Thresholds(new_days=100, active_days=90))
    assert error.value.field == "active_days"
    with pytest.raises(InvalidInput):
        lr.check_thresholds(lr.Thresholds(rfm_window_days=0))


# Recompute on the database


def test_rfm_scores_are_quintiles_within_the_workspace(brand):
    buyers = []
    for k in range(1, 6):
        # Buyer k: k orders of k*100 yuan, the last (6-k)*10 days ago. Buyer 5 is best on all three.
        who = customer(brand)
        for n in range(k):
            order(brand, who, local((6 - k) * 10 + n * 2), k * 100)
        buyers.append(who)
    never = customer(brand, seen_days_ago=100, last_seen_days_ago=3)
    lapsed = customer(brand)
    order(brand, lapsed, local(400), 5000)  # outside the 365-day window
    refunded = customer(brand)
    order(brand, refunded, local(5), 900, status="refunded")

    report = recompute_layers(brand.workspace, now=NOW)

    scores = [(layer(b).r_score, layer(b).f_score, layer(b).m_score) for b in buyers]
    assert scores == [(1, 1, 1), (2, 2, 2), (3, 3, 3), (4, 4, 4), (5, 5, 5)]
    best = layer(buyers[4])
    assert (best.rfm_cell, best.value_tier, best.frequency, best.monetary_fen) == ("important_value", "high", 5, 250000)
    assert best.last_order_day == local(10).date()
    assert layer(buyers[0]).rfm_cell == "general_retain"
    for nobody in (never, lapsed, refunded):
        row = layer(nobody)
        assert (row.r_score, row.f_score, row.m_score, row.rfm_cell, row.value_tier) == (0, 0, 0, "", "")
    assert layer(lapsed).last_order_day == local(400).date() and layer(never).last_order_day is None
    assert report.customers == 8
    assert report.rfm_cells == {"important_value": 2, "general_retain": 3}
    assert report.lifecycles["churned"] == 2


def test_equal_behaviour_gets_equal_scores_and_a_named_cell(brand):
    twins = [customer(brand) for _ in range(2)]
    for who in twins:
        order(brand, who, local(3), 800)
    small = [customer(brand) for _ in range(3)]
    for n, who in enumerate(small):
        order(brand, who, local(200 + n), 50)
    # Recent, one order, big spend: a customer worth developing.
    spender = customer(brand)
    order(brand, spender, local(1), 3000)
    frequent = customer(brand)
    for n in range(4):
        order(brand, frequent, local(300 + n), 60)

    recompute_layers(brand.workspace, now=NOW)

    a, b = (layer(w) for w in twins)
    assert (a.r_score, a.f_score, a.m_score) == (b.r_score, b.f_score, b.m_score)
    assert layer(spender).rfm_cell == "important_grow"
    assert layer(frequent).f_score == 5 and layer(frequent).r_score == 1


def test_monetary_is_paid_minus_refunds(brand):
    who = customer(brand)
    order(brand, who, local(2), 500, refund_yuan=200)
    recompute_layers(brand.workspace, now=NOW)
    assert layer(who).monetary_fen == 30000


@pytest.mark.parametrize(
    ("first_days", "last_days", "hour", "stage"),
    [
        (30, 30, 12, "new"),
        (31, 31, 12, "active"),
        (200, 90, 0, "active"),  # 00:10 local is the previous UTC day: still 90 local days
        (200, 91, 23, "at_risk"),  # 23:50 local
        (200, 180, 12, "at_risk"),
        (200, 181, 12, "dormant"),
        (400, 365, 12, "dormant"),
        (400, 366, 12, "churned"),
    ],
)
def test_lifecycle_boundaries_are_local_days(brand, first_days, last_days, hour, stage):
    who = customer(brand, seen_days_ago=500)
    order(brand, who, local(first_days), 100)
    order(brand, who, local(last_days, hour, 10 if hour == 0 else 50), 100)
    recompute_layers(brand.workspace, now=NOW)
    row = layer(who)
    assert (row.lifecycle, row.last_order_day) == (stage, local(last_days).date())
    assert customer_layers(who.pk, now=NOW).recency_days == last_days


def test_never_buyers_are_new_then_staged_by_last_seen(brand):
    fresh = customer(brand, seen_days_ago=10)
    browsing = customer(brand, seen_days_ago=100, last_seen_days_ago=5)
    silent = customer(brand, seen_days_ago=500, last_seen_days_ago=400)
    recompute_layers(brand.workspace, now=NOW)
    assert [layer(c).lifecycle for c in (fresh, browsing, silent)] == ["new", "active", "churned"]


def test_pyramid_top_one_percent_are_seeds_and_next_nine_percent_kocs(brand):
    people = Customer.objects.bulk_create(
        [
            Customer(
                workspace=brand.workspace, name=f"群友{n}", first_seen_at=local(50), created_at=NOW, updated_at=NOW
            )
            for n in range(200)
        ]
    )
    # The first 20 people sent 21, 20, ... 2 messages; everyone else one; all in the window.
    messages = []
    for n, who in enumerate(people):
        count = 21 - n if n < 20 else 1
        messages += [
            Message(workspace=brand.workspace, customer=who, direction="in", text="hi", sent_at=local(3))
            for _ in range(count)
        ]
    messages.append(Message(workspace=brand.workspace, customer=people[0], direction="out", sent_at=local(1)))
    Message.objects.bulk_create(messages)

    report = recompute_layers(brand.workspace, now=NOW)

    tiers = dict(CustomerLayer.objects.filter(workspace=brand.workspace).values_list("customer_id", "community_tier"))
    assert [tiers[p.pk] for p in people[:2]] == ["seed", "seed"]
    assert {tiers[p.pk] for p in people[2:20]} == {"koc"}
    assert {tiers[p.pk] for p in people[20:]} == {"ordinary"}
    assert report.community_tiers == {"seed": 2, "koc": 18, "ordinary": 180}
    assert layer(people[0]).community_score == 21


def test_community_score_weights_invites_shares_messages_and_group_roles(brand):
    host = customer(brand, group_role="owner")
    sharer = customer(brand)
    for name, days in [("invite", 1), ("share_poster", 2), ("share_content", 3), ("share_poster", 200)]:
        event(brand, sharer, name, local(days))
    Message.objects.create(workspace=brand.workspace, customer=sharer, direction="in", sent_at=local(1))
    quiet = customer(brand)
    recompute_layers(brand.workspace, now=NOW)
    # The share 200 days ago is outside the 90-day community window.
    assert layer(host).community_score == 20
    assert layer(sharer).community_score == 5 + 3 * 2 + 1
    assert (layer(quiet).community_score, layer(quiet).community_tier) == (0, "ordinary")


def test_only_changed_customers_are_marked_for_segments_and_settings_change_results(brand):
    early = customer(brand)
    order(brand, early, local(45), 300)
    steady = customer(brand)
    order(brand, steady, local(400), 300)
    order(brand, steady, local(10), 300)

    first = recompute_layers(brand.workspace, now=NOW)
    assert first.changed == 2
    assert set(CustomerChange.objects.values_list("customer_id", flat=True)) == {early.pk, steady.pk}

    CustomerChange.objects.all().delete()
    assert recompute_layers(brand.workspace, now=NOW).changed == 0
    assert not CustomerChange.objects.exists()

    assert layer(early).lifecycle == "active"
    update_layer_settings(
        brand.workspace, lr.Thresholds(new_days=60, active_days=90, at_risk_days=180, dormant_days=365)
    )
    again = recompute_layers(brand.workspace, now=NOW)
    assert layer(early).lifecycle == "new" and layer(steady).lifecycle == "active"
    assert again.changed == 1
    assert list(CustomerChange.objects.values_list("customer_id", flat=True)) == [early.pk]
    assert layer_settings(brand.workspace).new_days == 60


def test_merged_customers_lose_their_layer_row(brand):
    survivor, merged = customer(brand), customer(brand)
    recompute_layers(brand.workspace, now=NOW)
    Customer.objects.filter(pk=merged.pk).update(merged_into=survivor)
    report = recompute_layers(brand.workspace, now=NOW)
    assert report.customers == 1
    assert list(CustomerLayer.objects.values_list("customer_id", flat=True)) == [survivor.pk]


def test_workspaces_are_ranked_separately(brand, other_workspace):
    mine = customer(brand)
    order(brand, mine, local(1), 100)
    theirs = Customer.objects.create(workspace=other_workspace, created_at=NOW, updated_at=NOW)
    Order.objects.create(
        workspace=other_workspace, customer=theirs, order_no="X", total_fen=1, paid_fen=1, paid_at=local(300),
        created_at=NOW, updated_at=NOW,
    )  # fmt: skip
    rebuild_order_days(other_workspace.pk, other_workspace.time_zone, [theirs.pk])
    recompute_layers(brand.workspace, now=NOW)
    assert layer(mine).r_score == 1
    assert not CustomerLayer.objects.filter(customer=theirs).exists()


# Console


def login(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def test_layers_page_shows_an_empty_state_before_the_first_recompute(personas):
    page = login(personas.hq_admin).get("/layers/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-testid="layers-empty"' in html and "立即重算" in html


def test_layers_page_charts_the_distribution_and_recomputes_on_demand(brand, personas):
    who = customer(brand, store=brand.store_a)
    order(brand, who, local(2), 100)
    customer(brand, store=brand.store_b)
    client = login(personas.hq_admin)
    response = client.post("/layers/", {"action": "recompute"}, follow=True)
    html = response.content.decode()
    assert response.status_code == 200
    assert CustomerLayer.objects.count() == 2
    assert 'data-testid="layers-total">2<' in html
    assert html.count("data-figure") == 3
    assert "重要价值客户" in html and "种子用户" in html


def test_big_workspaces_recompute_in_the_background(brand, personas, monkeypatch):
    from siyu.segments import views_layers

    calls = []
    monkeypatch.setattr(views_layers, "INLINE_RECOMPUTE_LIMIT", 1)
    monkeypatch.setattr(views_layers, "recompute_layers", lambda *a, **k: calls.append(a))
    customer(brand)
    customer(brand)
    response = login(personas.hq_admin).post("/layers/", {"action": "recompute"}, follow=True)
    assert response.status_code == 200
    assert "已加入后台重算队列" in response.content.decode()
    assert calls == []  # not inline; the (immediate, in tests) task backend ran the task
    assert CustomerLayer.objects.count() == 2


def test_store_manager_sees_only_their_stores_and_cannot_change_settings(brand, personas):
    for store, n in ((brand.store_a, 3), (brand.store_b, 5)):
        for _ in range(n):
            customer(brand, store=store)
    recompute_layers(brand.workspace, now=NOW)
    client = login(personas.manager_a)
    html = client.get("/layers/").content.decode()
    assert 'data-testid="layers-total">3<' in html
    assert 'name="new_days"' not in html
    denied = client.post("/layers/", {"action": "settings", "new_days": 5})
    assert denied.status_code == 403
    assert layer_settings(brand.workspace).new_days == 30
    assert 'data-testid="layers-total">8<' in login(personas.hq_admin).get("/layers/").content.decode()


def test_settings_form_saves_valid_thresholds_and_rejects_out_of_order_ones(brand, personas):
    client = login(personas.hq_admin)
    form = {
        "action": "settings",
        "rfm_window_days": 180,
        "new_days": 14,
        "active_days": 60,
        "at_risk_days": 120,
        "dormant_days": 300,
        "community_window_days": 30,
    }
    client.post("/layers/", form)
    saved = layer_settings(brand.workspace)
    assert (saved.rfm_window_days, saved.new_days, saved.community_window_days) == (180, 14, 30)
    bad = client.post("/layers/", {**form, "new_days": 100})
    assert bad.status_code == 400
    assert layer_settings(brand.workspace).new_days == 14


def test_profile_shows_the_customers_layers(brand, personas):
    for days in (100, 120, 140, 160):
        order(brand, customer(brand), local(days), 50)
    who = customer(brand, store=brand.store_a)
    order(brand, who, local(2), 100)
    recompute_layers(brand.workspace, now=NOW)
    html = login(personas.hq_admin).get(f"/customers/{who.pk}/").content.decode()
    # Everyone bought once, so nobody's frequency is high: the newest, biggest buyer is one to develop.
    assert 'data-testid="layer-rfm-cell">重要发展客户<' in html
    assert "R5 F1 M5" in html and "新客" in html


def test_background_task_and_cli_recompute_the_workspace(brand):
    from click.testing import CliRunner

    from siyu.cli import main
    from siyu.segments.tasks import recompute_layers_task

    customer(brand)
    result = recompute_layers_task.enqueue(brand.workspace.pk)
    assert result.return_value == {"customers": 1, "changed": 1, "seconds": result.return_value["seconds"]}
    assert CustomerLayer.objects.count() == 1
    output = CliRunner().invoke(main, ["layers", "recompute", "--workspace", "acme"])
    assert output.exit_code == 0, output.output
    assert "1 customers layered, 0 changed" in output.output
    missing = CliRunner().invoke(main, ["layers", "recompute", "--workspace", "nope"])
    assert missing.exit_code != 0 and "does not exist" in missing.output
