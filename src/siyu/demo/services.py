"""``siyu demo``: a believable cosmetics brand, generated deterministically and fast.

Same seed, same day → the same brand. Customers are generated and inserted in chunks
(multi-row INSERT / COPY through ``siyu.core.sql``), so a million customers run in
bounded memory. Faker (zh_CN) only fills name and place pools up front: calling it per
row would dominate the run.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import accumulate
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from faker import Faker

from siyu.core import clock
from siyu.core.errors import InvalidInput
from siyu.core.sql import ColumnType, insert_rows
from siyu.demo import catalog
from siyu.demo.acquisition import build_channel_codes
from siyu.demo.broadcasts import build_broadcasts
from siyu.demo.content import build_content
from siyu.demo.keywords import build_keyword_rules
from siyu.demo.segments import build_segments
from siyu.demo.workbench import build_staff_tasks
from siyu.org.models import Membership, OrgUnit, Role, Staff, Workspace
from siyu.org.services import Login, create_org_unit
from siyu.segments.layers import recompute_layers
from siyu.tags.models import Tag, TagGroup

DEMO_SLUG = "demo"
DEMO_PASSWORD = "demo1234"
DEMO_EMAIL = "demo@siyu.invalid"
CHUNK = 10_000
HISTORY_DAYS = 180
TZ = ZoneInfo("Asia/Shanghai")
PHONE_PREFIXES = [
    "139",
    "138",
    "137",
    "136",
    "135",
    "150",
    "151",
    "152",
    "158",
    "159",
    "182",
    "183",
    "187",
    "188",
    "130",
    "131",
    "132",
    "155",
    "156",
    "185",
    "186",
    "133",
    "153",
    "180",
    "181",
    "189",
    "177",
    "199",
]
OA_APP_ID = "wx_demo_oa"
MP_APP_ID = "wx_demo_mp"
# Tables the demo writes, children first, for a fast wipe of a previous demo.
WORKSPACE_TABLES = [
    "messaging_outboundmessage",
    "channels_sandboxmessage",
    "channels_optout",
    "channels_compliancesettings",
    "segments_segmenttagrule",
    "segments_segmentmembership",
    "segments_customerlayer",
    "customers_customerchange",
    "customers_consent",
    "customers_officialaccountfollow",
    "tracking_eventdaily",
    "tracking_orderdaily",
    "tags_keywordmatch",
    "conversations_riskalert",
    "tags_customertag",
    "conversations_message",
    "tracking_event",
    "tracking_order",
    "customers_staffrelation",
    "customers_identityconflict",
    "customers_customermerge",
    "customers_identity",
    "customers_customer",
    "tags_tag",
    "tags_taggroup",
    "channels_channelaccount",
    "org_membership",
    "org_apikey",
    "org_auditentry",
]

Echo = Callable[[str], None]


@dataclass
class Brand:
    workspace: Workspace
    stores: list[OrgUnit]
    staff_by_store: dict[int, list[Staff]]
    tags: dict[tuple[str, str], int]
    first_names: list[str] = field(default_factory=list)
    last_names: list[str] = field(default_factory=list)


def build_demo(n_customers: int, seed: int, echo: Echo = print) -> Login:
    started = time.perf_counter()
    rng = random.Random(seed)
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    today = clock.now().astimezone(TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    now = today + dt.timedelta(hours=9)  # a fixed "now" for the whole build: reruns today match

    with transaction.atomic():
        wipe_demo()
        brand = build_org(rng, fake)
        logins = build_users(brand)
    echo(f"组织 / org: {len(brand.stores)} stores, {sum(len(s) for s in brand.staff_by_store.values())} staff")

    brand.last_names = sorted({fake.last_name() for _ in range(400)})
    brand.first_names = sorted(
        {fake.first_name_female() for _ in range(1500)} | {fake.first_name_male() for _ in range(300)}
    )
    totals: dict[str, int] = {}
    for start in range(0, n_customers, CHUNK):
        size = min(CHUNK, n_customers - start)
        with transaction.atomic():
            counts = build_customers(brand, rng, start, size, now)
        for key, value in counts.items():
            totals[key] = totals.get(key, 0) + value
        echo(f"生成客户 / customers {start + size:,}/{n_customers:,}  ({time.perf_counter() - started:.1f}s)")
    build_keyword_rules(brand.workspace, now, echo)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    layered = recompute_layers(brand.workspace, now=now)
    echo(f"分层 / layers: {layered.customers:,} customers in {layered.seconds:.1f}s")
    build_segments(brand.workspace, now, echo, oa_app_id=OA_APP_ID)
    build_content(brand.workspace, echo)
    build_broadcasts(brand.workspace, now, rng, echo)
    build_channel_codes(brand.workspace, now, echo)
    build_staff_tasks(brand.workspace, now, rng, echo)
    echo(
        "数据 / data: "
        + ", ".join(
            f"{totals.get(k, 0):,} {k}" for k in ("identities", "relations", "orders", "events", "messages", "tags")
        )
        + f" in {time.perf_counter() - started:.1f}s"
    )
    return logins


def wipe_demo() -> None:
    workspace = Workspace.objects.filter(slug=DEMO_SLUG).first()
    if workspace is None:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM segments_segmentsize WHERE segment_id IN "
            "(SELECT id FROM segments_segment WHERE workspace_id = %s)",
            [workspace.pk],
        )
        for table in WORKSPACE_TABLES:
            cursor.execute(f"DELETE FROM {table} WHERE workspace_id = %s", [workspace.pk])
            if table == "messaging_outboundmessage":  # broadcasts hold segments and accounts (PROTECT)
                cursor.execute(
                    "DELETE FROM messaging_broadcastvariant WHERE broadcast_id IN "
                    "(SELECT id FROM messaging_broadcast WHERE workspace_id = %s)",
                    [workspace.pk],
                )
                cursor.execute("DELETE FROM messaging_broadcast WHERE workspace_id = %s", [workspace.pk])
        cursor.execute("DELETE FROM org_staff WHERE workspace_id = %s", [workspace.pk])
        # Org units reference their parent: delete leaves first.
        for kind in ("store", "region", "hq"):
            cursor.execute("DELETE FROM org_orgunit WHERE workspace_id = %s AND kind = %s", [workspace.pk, kind])
    workspace.delete()
    # Only accounts the demo made (marked by their e-mail), never a real user who shares a name.
    get_user_model().objects.filter(username__in=[u for u, _, _ in DEMO_USERS], email=DEMO_EMAIL).delete()


def build_org(rng: random.Random, fake: Faker) -> Brand:
    workspace = Workspace.objects.create(slug=DEMO_SLUG, name=catalog.BRAND_NAME, time_zone="Asia/Shanghai")
    hq = create_org_unit(workspace=workspace, parent=None, kind=OrgUnit.Kind.HQ, name=f"{catalog.BRAND_NAME} 总部")
    stores: list[OrgUnit] = []
    staff_by_store: dict[int, list[Staff]] = {}
    used_names: set[str] = set()
    for region_name, cities in catalog.REGIONS.items():
        region = create_org_unit(workspace=workspace, parent=hq, kind=OrgUnit.Kind.REGION, name=region_name)
        for city, _province, prefix, landmarks in cities:
            for n, landmark in enumerate(landmarks, start=1):
                code = f"{prefix}{n:02d}"
                store = create_org_unit(
                    workspace=workspace,
                    parent=region,
                    kind=OrgUnit.Kind.STORE,
                    name=f"{city}{landmark}店",
                    code=code,
                    city=city,
                )
                stores.append(store)
                members = []
                for k in range(catalog.STAFF_PER_STORE):
                    name = fake.name()
                    while name in used_names:
                        name = fake.name()
                    used_names.add(name)
                    members.append(
                        Staff(
                            workspace=workspace,
                            org_unit=store,
                            name=name,
                            wecom_userid=f"{code.lower()}_{k + 1:02d}",
                            phone=f"{rng.choice(PHONE_PREFIXES)}{rng.randrange(10**8):08d}",
                            title="店长" if k == 0 else "导购",
                            joined_at=dt.datetime(2024, 1, 1, tzinfo=TZ) + dt.timedelta(days=rng.randrange(600)),
                        )
                    )
                staff_by_store[store.pk] = Staff.objects.bulk_create(members)
    tags: dict[tuple[str, str], int] = {}
    for sort, (group_name, names) in enumerate(catalog.TAG_GROUPS.items()):
        group = TagGroup.objects.create(workspace=workspace, name=group_name, sort=sort)
        for tag_sort, name in enumerate(names):
            tags[(group_name, name)] = Tag.objects.create(workspace=workspace, group=group, name=name, sort=tag_sort).pk
    return Brand(workspace, stores, staff_by_store, tags)


# username, role, description
DEMO_USERS = [
    ("admin", Role.OWNER, "品牌总部管理员 (owner)"),
    ("yunying", Role.OPERATOR, "总部运营 (operator)"),
    ("fenxi", Role.ANALYST, "数据分析师, 手机号脱敏 (analyst)"),
    ("dianzhang", Role.STORE_MANAGER, "上海南京西路店 店长 (store manager)"),
    ("daogou", Role.STAFF, "上海南京西路店 导购 (staff)"),
]


def build_users(brand: Brand) -> Login:
    User = get_user_model()
    taken = list(User.objects.filter(username__in=[u for u, _, _ in DEMO_USERS]).values_list("username", flat=True))
    if taken:
        raise InvalidInput(
            f"this database already has real users named {', '.join(taken)}; run the demo on its own database "
            "(siyu demo --db demo.sqlite3)",
            field="database",
        )
    first_store = brand.stores[0]
    clerk = brand.staff_by_store[first_store.pk][1]
    others = []
    for username, role, description in DEMO_USERS:
        if username == "admin":
            user = User.objects.create_superuser(username=username, email=DEMO_EMAIL, password=DEMO_PASSWORD)
        else:
            user = User.objects.create_user(username=username, email=DEMO_EMAIL, password=DEMO_PASSWORD)
        Membership.objects.create(
            user=user,
            workspace=brand.workspace,
            role=role,
            org_unit=first_store if role in (Role.STORE_MANAGER, Role.STAFF) else None,
            staff=clerk if role == Role.STAFF else None,
            can_view_pii=role in (Role.OWNER, Role.ADMIN),
        )
        if username != "admin":
            others.append(f"{username} / {DEMO_PASSWORD}  — {description}")
    return Login(username="admin", password=DEMO_PASSWORD, others=tuple(others))


def weighted(rng: random.Random, choices: list, weights: list[int]):
    return rng.choices(choices, cum_weights=list(accumulate(weights)))[0]


CUSTOMER_COLUMNS: dict[str, ColumnType] = {
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
IDENTITY_COLUMNS: dict[str, ColumnType] = {
    "workspace_id": "int",
    "customer_id": "int",
    "type": "text",
    "app_id": "text",
    "value": "text",
    "source": "text",
    "created_at": "datetime",
}
RELATION_COLUMNS: dict[str, ColumnType] = {
    "workspace_id": "int",
    "customer_id": "int",
    "staff_id": "int",
    "added_at": "datetime",
    "add_way": "int",
    "state": "text",
    "remark": "text",
    "description": "text",
    "status": "text",
    "status_changed_at": "datetime",
}
ORDER_COLUMNS: dict[str, ColumnType] = {
    "workspace_id": "int",
    "customer_id": "int",
    "order_no": "text",
    "status": "text",
    "total_fen": "int",
    "discount_fen": "int",
    "paid_fen": "int",
    "refund_fen": "int",
    "currency": "text",
    "items": "json",
    "store_id": "int",
    "channel": "text",
    "paid_at": "datetime",
    "refunded_at": "datetime",
    "created_at": "datetime",
    "updated_at": "datetime",
}
EVENT_COLUMNS: dict[str, ColumnType] = {
    "workspace_id": "int",
    "customer_id": "int",
    "name": "text",
    "properties": "json",
    "occurred_at": "datetime",
    "received_at": "datetime",
    "source": "text",
    "event_id": "text",
}
MESSAGE_COLUMNS: dict[str, ColumnType] = {
    "workspace_id": "int",
    "customer_id": "int",
    "staff_id": "int",
    "direction": "text",
    "msg_type": "text",
    "text": "text",
    "sent_at": "datetime",
    "external_msgid": "text",
}
TAG_COLUMNS: dict[str, ColumnType] = {
    "workspace_id": "int",
    "customer_id": "int",
    "tag_id": "int",
    "source": "text",
    "source_ref": "text",
    "added_by_user_id": "int",
    "added_by_staff_id": "int",
    "created_at": "datetime",
}

CHANNEL_NAMES = [c for c, _, _ in catalog.CHANNELS]
CHANNEL_WEIGHTS = [w for _, w, _ in catalog.CHANNELS]
FRIEND_RATE = {c: p for c, _, p in catalog.CHANNELS}
EVENT_NAMES = [n for n, _ in catalog.EVENT_NAMES]
EVENT_WEIGHTS = [w for _, w in catalog.EVENT_NAMES]
PRODUCT_WEIGHTS = [w for *_, w in catalog.PRODUCTS]
ORDER_CHANNEL_NAMES = [c for c, _ in catalog.ORDER_CHANNELS]
ORDER_CHANNEL_WEIGHTS = [w for _, w in catalog.ORDER_CHANNELS]
HEX = "0123456789abcdef"
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def token(rng: random.Random, alphabet: str, length: int) -> str:
    return "".join(rng.choices(alphabet, k=length))


def build_customers(brand: Brand, rng: random.Random, start: int, size: int, now: dt.datetime) -> dict[str, int]:
    """Generate and insert customers ``start .. start+size`` with everything that hangs off them."""
    ws = brand.workspace.pk
    stores = brand.stores
    store_weights = [max(1, 12 - i % 12) for i in range(len(stores))]  # a few flagship stores take more
    province_of = {city: province for cities in catalog.REGIONS.values() for city, province, _, _ in cities}
    plans = []
    rows = []
    for offset in range(size):
        index = start + offset
        channel = weighted(rng, CHANNEL_NAMES, CHANNEL_WEIGHTS)
        # More customers recently: the private domain is growing.
        days_ago = HISTORY_DAYS * rng.random() ** 1.4
        first_seen = now - dt.timedelta(days=days_ago, seconds=rng.randrange(36000))
        store = weighted(rng, stores, store_weights)
        friend = rng.random() < FRIEND_RATE[channel]
        owner = rng.choice(brand.staff_by_store[store.pk]) if friend or channel == "store_code" else None
        gender = "f" if rng.random() < 0.86 else "m"
        name = rng.choice(brand.last_names) + rng.choice(brand.first_names)
        birthday = (
            dt.date(rng.randint(1970, 2006), rng.randint(1, 12), rng.randint(1, 28)) if rng.random() < 0.6 else None
        )
        detail = {
            "store_code": f"门店活码-{store.code}",
            "official_account": rng.choice(["公众号菜单", "推文《秋冬换季护肤指南》", "关注自动回复"]),
            "mini_program": rng.choice(["小程序首页", "新人礼包页", "直播间"]),
            "fission": rng.choice(["双11裂变海报", "闺蜜拼团海报", "会员邀请有礼"]),
            "order_import": rng.choice(["天猫旗舰店", "抖音小店", "京东自营"]),
        }[channel]
        level = weighted(rng, ["普通会员", "银卡会员", "金卡会员", "黑卡会员"], [70, 20, 8, 2])
        plans.append((index, channel, first_seen, store, friend, owner, level))
        rows.append(
            [
                ws,
                name,
                gender,
                birthday,
                province_of.get(store.city, ""),
                store.city,
                {"member_level": level},
                channel,
                detail,
                store.pk,
                owner.pk if owner else None,
                first_seen,
                first_seen,
                first_seen,
                first_seen,
            ]
        )
    ids = insert_rows("customers_customer", CUSTOMER_COLUMNS, rows, returning_id=True)

    identities, relations, orders, events, messages, tags = [], [], [], [], [], []
    last_seen: list[dt.datetime] = []
    for (index, channel, first_seen, store, friend, owner, level), cid in zip(plans, ids, strict=True):
        latest = first_seen
        if channel != "mini_program" or rng.random() < 0.7:
            phone = f"{PHONE_PREFIXES[index % len(PHONE_PREFIXES)]}{(index * 7919 + 13) % 10**8:08d}"
            identities.append([ws, cid, "phone", "", phone, channel, first_seen])
        if channel in ("official_account", "mini_program", "fission") or rng.random() < 0.3:
            identities.append(
                [ws, cid, "wechat_unionid", "", f"oU{index:08d}{token(rng, HEX, 18)}", channel, first_seen]
            )
            app = OA_APP_ID if channel != "mini_program" else MP_APP_ID
            identities.append(
                [ws, cid, "wechat_openid", app, f"o{index:08d}{token(rng, ALNUM, 19)}", channel, first_seen]
            )
        if channel == "mini_program" and rng.random() < 0.5:
            identities.append(
                [ws, cid, "anonymous_id", "", f"dev-{index:08d}-{token(rng, HEX, 8)}", channel, first_seen]
            )
        if level != "普通会员" or rng.random() < 0.3:
            identities.append([ws, cid, "member_no", "", f"HY{index + 10_000_000:08d}", channel, first_seen])
        tags.append([ws, cid, brand.tags[("会员等级", level)], "import", "会员系统", None, None, first_seen])
        tags.append(
            [ws, cid, brand.tags[("来源", catalog.CHANNEL_TAG[channel])], "rule", "首次来源", None, None, first_seen]
        )

        if friend and owner is not None:
            identities.append(
                [ws, cid, "wecom_external_userid", "", f"wm{index:08d}{token(rng, ALNUM, 20)}", "wecom", first_seen]
            )
            deleted = rng.random() < 0.08
            relations.append(
                [
                    ws,
                    cid,
                    owner.pk,
                    first_seen,
                    1 if channel == "store_code" else rng.choice([1, 3, 4]),
                    f"{channel}_{store.code}",
                    "",
                    "",
                    "deleted_by_customer" if deleted else "active",
                    first_seen + dt.timedelta(days=rng.randint(1, 60)) if deleted else None,
                ]
            )
            # Conversations with keywords a brand tags on.
            for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
                at = first_seen + dt.timedelta(
                    days=rng.random() * max(0.1, (now - first_seen).days), minutes=rng.randrange(600)
                )
                if at > now:
                    continue
                line, tag = rng.choice(catalog.CUSTOMER_LINES)
                messages.append([ws, cid, owner.pk, "in", "text", line, at, None])
                reply = rng.choice(catalog.STAFF_LINES).format(store=store.name, staff=owner.name)
                messages.append(
                    [ws, cid, owner.pk, "out", "text", reply, at + dt.timedelta(minutes=rng.randint(1, 30)), None]
                )
                if tag is not None:
                    tags.append([ws, cid, brand.tags[tag], "keyword", line[:60], None, None, at])
                latest = max(latest, at)
        if rng.random() < 0.15:
            group = rng.choice(["肤质", "关注", "人生阶段"])
            tags.append(
                [
                    ws,
                    cid,
                    brand.tags[(group, rng.choice(catalog.TAG_GROUPS[group]))],
                    "manual",
                    "导购标注",
                    None,
                    owner.pk if owner else None,
                    first_seen,
                ]
            )

        # Repeat purchases with a long tail: most buy once or never, a few are loyal.
        n_orders = 0 if rng.random() < 0.42 else min(40, int(rng.paretovariate(1.5)))
        for k in range(n_orders):
            span = max(1.0, (now - first_seen).total_seconds())
            paid_at = first_seen + dt.timedelta(seconds=span * (k + rng.random()) / max(n_orders, 1))
            lines = []
            for _ in range(rng.choice([1, 1, 1, 2, 2, 3])):
                sku, pname, category, price, _w = weighted(rng, catalog.PRODUCTS, PRODUCT_WEIGHTS)
                lines.append({"sku": sku, "name": pname, "category": category, "quantity": 1, "price_fen": price})
            total = sum(line["price_fen"] for line in lines)
            discount = rng.choice([0, 0, 0, 1000, 2000, 5000]) if total > 10000 else 0
            paid = total - discount
            refunded = rng.random() < 0.03
            order_channel = (
                "store"
                if channel == "store_code" and rng.random() < 0.7
                else weighted(rng, ORDER_CHANNEL_NAMES, ORDER_CHANNEL_WEIGHTS)
            )
            orders.append(
                [
                    ws,
                    cid,
                    f"D{index:08d}{k:02d}",
                    "refunded" if refunded else "paid",
                    total,
                    discount,
                    paid,
                    paid if refunded else 0,
                    "CNY",
                    lines,
                    store.pk if order_channel == "store" else None,
                    order_channel,
                    paid_at,
                    paid_at + dt.timedelta(days=rng.randint(1, 7)) if refunded else None,
                    paid_at,
                    paid_at,
                ]
            )
            latest = max(latest, paid_at)
        for _ in range(rng.randint(1, 9)):
            at = first_seen + dt.timedelta(seconds=rng.random() * max(60.0, (now - first_seen).total_seconds()))
            name = weighted(rng, EVENT_NAMES, EVENT_WEIGHTS)
            props: dict[str, object] = {"channel": channel}
            if name in ("view_product", "add_to_cart"):
                props["sku"] = weighted(rng, catalog.PRODUCTS, PRODUCT_WEIGHTS)[0]
            elif name == "search":
                props["keyword"] = rng.choice(catalog.SEARCH_WORDS)
            elif name == "scan_code":
                props["store"] = store.code
            events.append([ws, cid, name, props, at, at, "demo", None])
            latest = max(latest, at)
        last_seen.append(latest)

    insert_rows("customers_identity", IDENTITY_COLUMNS, identities)
    insert_rows("customers_staffrelation", RELATION_COLUMNS, relations)
    insert_rows("tracking_order", ORDER_COLUMNS, orders)
    insert_rows("tracking_event", EVENT_COLUMNS, events)
    insert_rows("conversations_message", MESSAGE_COLUMNS, messages)
    insert_rows("tags_customertag", TAG_COLUMNS, dedupe_tags(tags))
    update_last_seen(ids, last_seen)
    return {
        "customers": len(ids),
        "identities": len(identities),
        "relations": len(relations),
        "orders": len(orders),
        "events": len(events),
        "messages": len(messages),
        "tags": len(tags),
    }


def dedupe_tags(rows: list[list]) -> list[list]:
    seen: set[tuple[int, int]] = set()
    out = []
    for row in rows:
        key = (row[1], row[2])
        if key not in seen:
            seen.add(key)
            out.append(row)
    return out


def update_last_seen(ids: list[int], last_seen: list[dt.datetime]) -> None:
    from siyu.core.sql import update_from_values

    update_from_values(
        "customers_customer",
        {"id": "int", "last_seen_at": "datetime"},
        list(zip(ids, last_seen, strict=True)),
    )
