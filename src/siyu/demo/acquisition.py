"""The demo brand's channel codes (渠道活码): store codes for the busiest stores, a rotating
fission code with caps, a backup and a weekday schedule, and an Official Account scene code —
each named after a ``state`` the demo's WeCom friendships already carry, so their adds are
backfilled from those relations in one statement and the report has real numbers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.db import connection
from django.db.models import Count

from siyu.acquisition.models import ChannelCode
from siyu.acquisition.services import CodeInput, Gateways, StaffEntryInput, create_code
from siyu.customers.models import StaffRelation
from siyu.org.models import OrgUnit, Staff, Workspace
from siyu.tags.models import Tag

STORE_CODES = 4
WEEKDAYS_9_TO_21 = {"weekdays": [1, 2, 3, 4, 5], "ranges": [["09:00", "21:00"]]}


def build_channel_codes(workspace: Workspace, now: dt.datetime, echo: Callable[[str], None]) -> int:
    """Make ~6 offline codes (no WeCom is configured in the demo) and backfill their adds."""
    ChannelCode.objects.filter(workspace=workspace).delete()  # a rerun replaces them
    states = dict(
        StaffRelation.objects.filter(workspace=workspace)
        .exclude(state="")
        .values_list("state")
        .annotate(n=Count("id"))
        .order_by("-n", "state")
    )
    stores = {u.code: u for u in OrgUnit.objects.filter(workspace=workspace, kind=OrgUnit.Kind.STORE)}
    staff_by_store: dict[int, list[Staff]] = {}
    for member in Staff.objects.filter(workspace=workspace, status=Staff.Status.ACTIVE).exclude(wecom_userid=None):
        staff_by_store.setdefault(member.org_unit_id, []).append(member)
    tag = Tag.objects.filter(workspace=workspace, group__name="来源", name="门店活码").first()
    offline = Gateways()
    made = 0

    def store_of(state: str) -> OrgUnit | None:
        return stores.get(state.rsplit("_", 1)[-1])

    for state in [s for s in states if s.startswith("store_code_")][:STORE_CODES]:
        store = store_of(state)
        members = staff_by_store.get(store.pk, [])[:3] if store else []
        if not members:
            continue
        fields = CodeInput(
            name=f"{store.name} · 收银台",
            kind=ChannelCode.Kind.STORE,
            state=state,
            store_id=store.pk,
            staff=[StaffEntryInput(m.pk, daily_cap=80) for m in members],
            tag_ids=[tag.pk] if tag else [],
            welcome_text="{{ customer.name or '您' }}好，我是{{ store.name }}的{{ staff.name }}，到店出示本消息领取小样一份～",
            cost_fen=80_000,
        )
        create_code(workspace, fields, gateways=offline, now=now)
        made += 1
    fission = next((s for s in states if s.startswith("fission_")), None)
    store = store_of(fission) if fission else None
    members = staff_by_store.get(store.pk, []) if store else []
    if fission and len(members) >= 2:
        entries = [StaffEntryInput(m.pk, daily_cap=40, schedule=WEEKDAYS_9_TO_21) for m in members[:-1]]
        entries.append(StaffEntryInput(members[-1].pk, is_backup=True))
        fields = CodeInput(
            name="裂变海报 · 轮流接待",
            kind=ChannelCode.Kind.ROTATING,
            state=fission,
            staff=entries,
            welcome_text="感谢扫码！邀请 3 位好友扫码即可领取正装一支。",
            cost_fen=300_000,
        )
        create_code(workspace, fields, gateways=offline, now=now)
        made += 1
    oa = next((s for s in states if s.startswith("official_account_")), None)
    if oa:
        create_code(
            workspace,
            CodeInput(name="公众号关注海报", kind=ChannelCode.Kind.OA_QR, state=oa, cost_fen=50_000),
            gateways=offline,
            now=now,
        )
        made += 1
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO acquisition_channelcodeadd (workspace_id, code_id, customer_id, staff_id, at, first_touch) "
            "SELECT r.workspace_id, c.id, r.customer_id, r.staff_id, r.added_at, %s "
            "FROM customers_staffrelation r JOIN acquisition_channelcode c "
            "ON c.workspace_id = r.workspace_id AND c.state = r.state WHERE r.workspace_id = %s",
            [True, workspace.pk],
        )
        adds = cursor.rowcount
    echo(f"渠道活码 / channel codes: {made} codes, {adds:,} attributed adds")
    return made
