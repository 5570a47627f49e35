"""Channel codes (渠道活码): rotation rules, WeCom contact-way sync against the fake WeCom server,
attribution on add, QR and poster images, the per-code report, the API and the console.

Times are explicit: NOW is Wednesday 2026-11-25 10:00 in Shanghai.
"""

from __future__ import annotations

import datetime as dt
import io
from zoneinfo import ZoneInfo

import pytest

from siyu.acquisition import rules
from siyu.core.errors import InvalidInput

TZ = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=TZ)  # a Wednesday (ISO weekday 3)


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """Shanghai wall clock on 2026-11-<day>: the 23rd is a Monday."""
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=TZ)


# ---- rules: schedules and rotation -----------------------------------------------------------


def schedule(weekdays=(), ranges=()):
    return rules.parse_schedule({"weekdays": list(weekdays), "ranges": [list(r) for r in ranges]})


def test_empty_schedule_is_always_on():
    assert rules.on_schedule(rules.parse_schedule({}), at(29, 3))
    assert rules.parse_schedule(None).always


def test_weekday_and_time_window():
    weekdays_9_to_18 = schedule([1, 2, 3, 4, 5], [("09:00", "18:00")])
    assert rules.on_schedule(weekdays_9_to_18, at(25, 9, 0))  # Wednesday, start included
    assert not rules.on_schedule(weekdays_9_to_18, at(25, 18, 0))  # end excluded
    assert not rules.on_schedule(weekdays_9_to_18, at(25, 8, 59))
    assert not rules.on_schedule(weekdays_9_to_18, at(28, 10, 0))  # Saturday


def test_range_crossing_midnight_belongs_to_the_day_it_starts():
    friday_night = schedule([5], [("22:00", "02:00")])
    assert rules.on_schedule(friday_night, at(27, 23, 0))  # Friday 23:00
    assert rules.on_schedule(friday_night, at(28, 1, 59))  # Saturday 01:59: Friday's shift
    assert not rules.on_schedule(friday_night, at(28, 2, 0))
    assert not rules.on_schedule(friday_night, at(27, 1, 0))  # Friday 01:00 is Thursday's night
    assert not rules.on_schedule(friday_night, at(28, 23, 0))  # Saturday night


def test_several_ranges_and_24_00_end():
    split = schedule([], [("09:00", "12:00"), ("20:00", "24:00")])
    assert rules.on_schedule(split, at(25, 11, 59))
    assert not rules.on_schedule(split, at(25, 13, 0))
    assert rules.on_schedule(split, at(25, 23, 59))


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"weekdays": [0]}, "schedule.weekdays"),
        ({"weekdays": [8]}, "schedule.weekdays"),
        ({"ranges": [["9h", "18:00"]]}, "schedule.ranges.0"),
        ({"ranges": [["09:00", "09:00"]]}, "schedule.ranges.0"),
        ({"ranges": [["09:00", "25:00"]]}, "schedule.ranges.0"),
        ({"ranges": [["09:00"]]}, "schedule.ranges.0"),
        ({"days": [1]}, "schedule"),
    ],
)
def test_bad_schedules_name_the_field(raw, field):
    with pytest.raises(InvalidInput) as error:
        rules.parse_schedule(raw)
    assert error.value.field == field


def test_schedule_round_trips_to_json():
    raw = {"weekdays": [5, 1], "ranges": [["22:00", "02:00"]]}
    assert rules.schedule_json(rules.parse_schedule(raw)) == {"weekdays": [1, 5], "ranges": [["22:00", "02:00"]]}


def slot(staff_id, **kw):
    return rules.Slot(
        staff_id=staff_id, userid=kw.pop("userid", f"u{staff_id}"), position=kw.pop("position", staff_id), **kw
    )


def test_rotation_keeps_primary_staff_in_order():
    rotation = rules.rotate([slot(3), slot(1), slot(2, is_backup=True)], NOW)
    assert rotation.staff_ids == (1, 3)
    assert rotation.userids == ("u1", "u3")
    assert not rotation.using_backups


def test_rotation_drops_capped_and_off_schedule_staff():
    rotation = rules.rotate(
        [
            slot(1, daily_cap=5, adds_today=5),
            slot(2, daily_cap=5, adds_today=4),
            slot(3, schedule=schedule([6, 7])),  # weekends only
            slot(4, daily_cap=0, adds_today=500),  # no cap
        ],
        NOW,
    )
    assert rotation.staff_ids == (2, 4)
    assert rotation.skipped == {1: "capped", 3: "off_schedule"}


def test_all_primary_capped_falls_back_to_backups():
    rotation = rules.rotate(
        [slot(1, daily_cap=2, adds_today=2), slot(2, daily_cap=1, adds_today=3), slot(9, is_backup=True)], NOW
    )
    assert rotation.staff_ids == (9,)
    assert rotation.using_backups
    assert "备用" in rotation.reason


def test_backups_unused_while_a_primary_is_available():
    rotation = rules.rotate([slot(1, daily_cap=2, adds_today=1), slot(9, is_backup=True)], NOW)
    assert rotation.staff_ids == (1,)


def test_nobody_available_gives_an_empty_rotation_with_a_reason():
    rotation = rules.rotate([slot(1, daily_cap=1, adds_today=1), slot(9, is_backup=True, schedule=schedule([6]))], NOW)
    assert rotation.staff_ids == ()
    assert rotation.reason
    assert rotation.skipped == {1: "capped", 9: "off_schedule"}
    assert rules.rotate([], NOW).reason == "活码没有成员"


def test_staff_without_wecom_userid_never_rotate_in():
    rotation = rules.rotate([slot(1, userid=""), slot(2)], NOW)
    assert rotation.staff_ids == (2,)
    assert rotation.skipped == {1: "no_userid"}


def test_default_state_is_short_base36():
    assert rules.default_state(1) == "c1"
    assert rules.default_state(36 * 36) == "c100"
    assert len(rules.default_state(2**62)) <= 30


def test_state_must_fit_wecom():
    assert rules.check_state(" store-SH01 ") == "store-SH01"
    for bad in ("", "x" * 31, "含中文", "a b"):
        with pytest.raises(InvalidInput):
            rules.check_state(bad)


def test_attachments_are_checked_in_wecom_shape():
    clean = rules.check_attachments(
        [
            {"msgtype": "image", "image": {"pic_url": "https://cdn.example.com/a.png"}},
            {"msgtype": "link", "link": {"title": "新客礼", "url": "https://shop.example.com/gift"}},
            {
                "msgtype": "miniprogram",
                "miniprogram": {"title": "商城", "pic_media_id": "M1", "appid": "wx1", "page": "p/i"},
            },
        ]
    )
    assert [a["msgtype"] for a in clean] == ["image", "link", "miniprogram"]
    with pytest.raises(InvalidInput) as error:
        rules.check_attachments([{"msgtype": "link", "link": {"title": "x", "url": "ftp://x"}}])
    assert error.value.field == "welcome_attachments.0.link.url"
    with pytest.raises(InvalidInput) as error:
        rules.check_attachments([{"msgtype": "image", "image": {"media_id": "m"}}] * 9, extra=1)
    assert error.value.field == "welcome_attachments"


# ---- services against the fake WeCom server -------------------------------------------------

AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"


@pytest.fixture
def wecom(brand):
    """The fake WeCom server, configured as the brand's app, with the whole 「联系我」 API
    (``tests.fakes.wecom_contact_way``: update/del/get/list with WeCom's checks and errcodes)."""
    import tests.fakes.wecom_contact_way  # noqa: F401  (registers the routes)
    from siyu.wecom.client import reset_shared_state
    from siyu.wecom.services import configure_wecom
    from tests.fakes import wecom as fake_module

    reset_shared_state()
    with fake_module.FakeWecom() as fake:
        configure_wecom(
            brand.workspace,
            corp_id=fake.corp_id,
            agent_id="1000002",
            secret=fake.secret,
            token="AcmeToken2026",
            aes_key=AES_KEY,
            base_url=fake.url,
        )
        yield fake
    reset_shared_state()


def way_calls(fake, name):
    return [c for c in fake.calls if c.api == f"externalcontact/{name}"]


def entry(staff, **kw):
    from siyu.acquisition.services import StaffEntryInput

    return StaffEntryInput(staff_id=staff.pk, **kw)


def make_code(brand, kind="rotating", staff=(), **kw):
    from siyu.acquisition.services import CodeInput, create_code

    fields = CodeInput(name=kw.pop("name", f"{kind} 活码"), kind=kind, staff=list(staff), **kw)
    return create_code(brand.workspace, fields, now=kw.pop("now", NOW))


def test_single_staff_code_creates_a_type_1_contact_way(brand, wecom):
    code = make_code(brand, "staff", [entry(brand.clerk_a)], state="staff-wangxm", skip_verify=False)
    [call] = way_calls(wecom, "add_contact_way")
    assert call.body == {
        "type": 1,
        "scene": 2,
        "remark": "staff 活码",
        "skip_verify": False,
        "state": "staff-wangxm",
        "user": ["wangxm"],
    }
    assert "access_token" in call.query  # never in the body
    code.refresh_from_db()
    assert code.config_id == "cfg00000001"
    assert code.qr_code == "https://wwcdn.weixin.qq.com/fake/cfg00000001.png"
    assert code.current_userids == ["wangxm"]


def test_rotating_code_is_type_2_with_the_staff_on_duty_and_a_generated_state(brand, wecom):
    off_today = {"weekdays": [6, 7]}
    code = make_code(
        brand,
        "rotating",
        [entry(brand.clerk_a), entry(brand.clerk_a2, schedule=off_today), entry(brand.clerk_b, is_backup=True)],
    )
    assert code.state == rules.default_state(code.pk)
    [call] = way_calls(wecom, "add_contact_way")
    assert call.body["type"] == 2
    assert call.body["user"] == ["wangxm"]
    assert call.body["state"] == code.state


def test_wecom_refusal_leaves_no_code_and_says_what_to_fix(brand, wecom):
    from siyu.acquisition.models import ChannelCode
    from siyu.acquisition.services import SyncError

    wecom.invisible_users = {"wangxm"}
    wecom.forbidden = 84074
    with pytest.raises(SyncError) as error:
        make_code(brand, "staff", [entry(brand.clerk_a)])
    assert "客户联系权限" in error.value.message
    assert error.value.errcode == 84074
    assert not ChannelCode.objects.exists()


@pytest.mark.parametrize(
    ("errcode", "words", "field"),
    [
        (41045, "上限", "wecom"),
        (40058, "参数", "wecom"),
        (60011, "可见范围", "staff"),
        (84074, "客户联系权限", "wecom"),
    ],
)
def test_wecom_errors_map_to_operator_messages(brand, errcode, words, field):
    from siyu.acquisition.models import ChannelCode
    from siyu.acquisition.services import CodeInput, Gateways, SyncError, create_code
    from siyu.wecom.client import WecomError

    class Refusing:
        def post(self, path, json):
            raise WecomError(errcode, "errmsg from wecom", path)

    with pytest.raises(SyncError) as error:
        create_code(
            brand.workspace,
            CodeInput(name="x", kind="staff", staff=[entry(brand.clerk_a)]),
            gateways=Gateways(wecom=Refusing()),
        )
    assert words in error.value.message
    assert error.value.field == field
    assert not ChannelCode.objects.exists()


def test_rebalance_calls_wecom_only_for_codes_whose_staff_changed(brand, wecom):
    from siyu.acquisition.models import ChannelCodeAdd
    from siyu.acquisition.services import rebalance
    from siyu.customers.models import Customer

    capped = make_code(brand, "rotating", [entry(brand.clerk_a, daily_cap=1), entry(brand.clerk_a2)], name="capped")
    steady = make_code(brand, "store", [entry(brand.clerk_b)], name="steady", store_id=brand.store_b.pk)
    night = make_code(
        brand,
        "rotating",
        [entry(brand.clerk_a, schedule={"ranges": [["09:00", "18:00"]]}), entry(brand.clerk_b, is_backup=True)],
        name="night",
    )
    assert way_calls(wecom, "add_contact_way")[0].body["user"] == ["wangxm", "lina"]
    report = rebalance(brand.workspace, NOW)
    assert (report.checked, report.calls, report.changed) == (3, 0, [])

    who = Customer.objects.create(workspace=brand.workspace, name="甲", created_at=NOW, updated_at=NOW)
    ChannelCodeAdd.objects.create(
        workspace=brand.workspace, code=capped, customer=who, staff=brand.clerk_a, at=NOW - dt.timedelta(hours=1)
    )
    ChannelCodeAdd.objects.create(  # yesterday's add does not count against today's cap
        workspace=brand.workspace, code=night, customer=who, staff=brand.clerk_a, at=NOW - dt.timedelta(days=1)
    )
    report = rebalance(brand.workspace, NOW)
    assert report.calls == 1 and report.changed == [capped.pk]
    [update] = way_calls(wecom, "update_contact_way")
    assert update.body == {"config_id": capped.config_id, "user": ["lina"]}
    assert wecom.contact_ways[capped.config_id]["user"] == ["lina"]

    evening = at(25, 19)  # the night code's primary is off shift: backups take over
    report = rebalance(brand.workspace, evening)
    assert report.changed == [night.pk] and report.calls == 1
    assert way_calls(wecom, "update_contact_way")[-1].body == {"config_id": night.config_id, "user": ["zhaomin"]}
    assert rebalance(brand.workspace, evening).calls == 0  # nothing changed since
    steady.refresh_from_db()
    assert steady.current_userids == ["zhaomin"]


def test_rebalance_reports_codes_with_nobody_available_and_keeps_their_list(brand, wecom):
    from siyu.acquisition.services import rebalance

    code = make_code(brand, "rotating", [entry(brand.clerk_a, schedule={"weekdays": [1]})])
    assert way_calls(wecom, "add_contact_way")[0].body["user"] == ["wangxm"]  # created with everyone
    report = rebalance(brand.workspace, NOW)
    assert report.calls == 0
    assert code.pk in report.unavailable
    code.refresh_from_db()
    assert code.current_userids == ["wangxm"] and code.rotation_note


def test_pause_deletes_the_contact_way_and_resume_makes_a_new_one(brand, wecom):
    from siyu.acquisition.services import archive_code, pause_code, resume_code

    code = make_code(brand, "staff", [entry(brand.clerk_a)])
    first = code.config_id
    paused = pause_code(brand.workspace, code.pk)
    assert paused.status == "paused" and paused.config_id == ""
    assert [c.body for c in way_calls(wecom, "del_contact_way")] == [{"config_id": first}]
    assert first not in wecom.contact_ways
    resumed = resume_code(brand.workspace, code.pk)
    assert resumed.status == "active" and resumed.config_id not in ("", first)
    archive_code(brand.workspace, code.pk)
    assert len(way_calls(wecom, "del_contact_way")) == 2
    assert wecom.contact_ways == {}


def test_a_contact_way_deleted_outside_siyu_does_not_block_pause(brand, wecom):
    from siyu.acquisition.services import pause_code

    code = make_code(brand, "staff", [entry(brand.clerk_a)])
    wecom.contact_ways.pop(code.config_id)  # an admin deleted it in WeCom
    paused = pause_code(brand.workspace, code.pk)
    [call] = way_calls(wecom, "del_contact_way")
    assert call.errcode == 41044
    assert paused.status == "paused" and paused.config_id == ""


def test_editing_staff_updates_the_contact_way(brand, wecom):
    from siyu.acquisition.services import CodeInput, update_code

    code = make_code(brand, "rotating", [entry(brand.clerk_a)])
    update_code(
        brand.workspace,
        code.pk,
        CodeInput(name="改名", kind="rotating", staff=[entry(brand.clerk_a2), entry(brand.clerk_a)], skip_verify=False),
        now=NOW,
    )
    [call] = way_calls(wecom, "update_contact_way")
    assert call.body == {
        "config_id": code.config_id,
        "remark": "改名",
        "skip_verify": False,
        "user": ["lina", "wangxm"],
    }
    # WeCom now holds the new list (replaced, not merged) and still the code's state.
    from siyu.wecom.services import client_for

    with client_for(brand.workspace) as client:
        way = client.post("externalcontact/get_contact_way", {"config_id": code.config_id})["contact_way"]
    assert (way["user"], way["state"], way["remark"]) == (["lina", "wangxm"], code.state, "改名")


def test_oa_code_makes_a_permanent_string_scene_qr(brand):
    from siyu.acquisition.oa_qrcode import OaQrClient
    from siyu.acquisition.services import CodeInput, Gateways, create_code
    from tests.fakes.official_account import FakeOfficialAccount

    with FakeOfficialAccount() as oa:
        client = OaQrClient(oa.app_id, oa.secret, base_url=oa.url)
        code = create_code(
            brand.workspace,
            CodeInput(name="公众号海报", kind="oa_qr", state="oa-poster-1"),
            gateways=Gateways(oa=client),
        )
        assert oa.tickets == {code.config_id: "oa-poster-1"}
        assert [api for api, _ in oa.calls] == ["token", "qrcode/create"]
    assert code.qr_content == f"http://weixin.qq.com/q/{code.config_id}"
    assert code.qr_code.startswith("https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=")


def test_offline_workspace_gets_codes_with_a_placeholder_qr(brand):
    code = make_code(brand, "staff", [entry(brand.clerk_a)], state="demo-1")
    assert code.config_id == ""
    assert code.qr_content.endswith("/channel-codes/offline/demo-1")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": ""}, "name"),
        ({"kind": "nope"}, "kind"),
        ({"state": "has space"}, "state"),
        ({"kind": "store"}, "store_id"),
        ({"staff": []}, "staff"),
        ({"cost_fen": -1}, "cost_fen"),
        ({"tag_ids": [999999]}, "tag_ids"),
        ({"welcome_text": "{{ customer.phone }}"}, "welcome_text"),
        ({"schedule": {"weekdays": [9]}}, "staff.0.schedule.weekdays"),
    ],
)
def test_bad_input_names_the_field(brand, changes, field):
    from siyu.acquisition.services import CodeInput, StaffEntryInput, create_code

    schedule_value = changes.pop("schedule", None)
    values = {"name": "x", "kind": "rotating", "staff": [StaffEntryInput(brand.clerk_a.pk, schedule=schedule_value)]}
    values.update(changes)
    with pytest.raises(InvalidInput) as error:
        create_code(brand.workspace, CodeInput(**values))
    assert error.value.field == field


def test_state_is_unique_per_workspace(brand, other_workspace):
    from siyu.acquisition.services import CodeInput, create_code

    make_code(brand, "oa_qr", state="same")
    with pytest.raises(InvalidInput) as error:
        make_code(brand, "oa_qr", state="same")
    assert error.value.field == "state"
    assert create_code(other_workspace, CodeInput(name="x", kind="oa_qr", state="same")).state == "same"


# ---- attribution on add --------------------------------------------------------------------


def new_customer(brand, name="张三", **kw):
    from siyu.customers.models import Customer

    return Customer.objects.create(workspace=brand.workspace, name=name, created_at=NOW, updated_at=NOW, **kw)


@pytest.fixture
def tags(brand):
    from siyu.tags.models import Tag, TagGroup

    group = TagGroup.objects.create(workspace=brand.workspace, name="渠道")
    return [Tag.objects.create(workspace=brand.workspace, group=group, name=n) for n in ("门店扫码", "新客")]


def test_record_add_attributes_tags_assigns_and_returns_the_welcome(brand, tags):
    from siyu.acquisition.models import ChannelCodeAdd
    from siyu.acquisition.services import record_add
    from siyu.tags.models import CustomerTag
    from siyu.tracking.models import Event

    code = make_code(
        brand,
        "store",
        [entry(brand.clerk_a)],
        state="store-SH01",
        store_id=brand.store_a.pk,
        tag_ids=[t.pk for t in tags],
        welcome_text="{{ customer.name }}您好，我是{{ store.name }}的{{ staff.name }}",
        welcome_attachments=[{"msgtype": "link", "link": {"title": "新客礼", "url": "https://shop.example.com/g"}}],
    )
    who = new_customer(brand, source_channel="wecom")  # what the friend-added handler writes
    welcome = record_add(brand.workspace, state="store-SH01", customer_id=who.pk, staff_id=brand.clerk_a.pk, at=NOW)
    assert welcome.text == "张三您好，我是上海南京路店的王小美"
    assert welcome.attachments == [
        {"msgtype": "link", "link": {"title": "新客礼", "url": "https://shop.example.com/g"}}
    ]
    assert welcome.body("WC1") == {
        "welcome_code": "WC1",
        "text": {"content": welcome.text},
        "attachments": welcome.attachments,
    }
    who.refresh_from_db()
    assert (who.source_channel, who.source_detail) == ("store_code", "store 活码 [store-SH01]")
    assert who.attributes["latest_source"]["code_id"] == code.pk
    assert who.owner_staff_id == brand.clerk_a.pk and who.store_id == brand.store_a.pk
    assert set(CustomerTag.objects.filter(customer=who).values_list("tag_id", flat=True)) == {t.pk for t in tags}
    [add] = ChannelCodeAdd.objects.filter(customer=who)
    assert add.first_touch and add.staff_id == brand.clerk_a.pk
    [event] = Event.objects.filter(customer=who, name="channel_code_added")
    assert event.properties["code_id"] == code.pk


def test_second_code_is_the_latest_source_not_the_first_touch(brand):
    from siyu.acquisition.models import ChannelCodeAdd
    from siyu.acquisition.services import record_add

    first = make_code(brand, "staff", [entry(brand.clerk_a)], state="first")
    make_code(brand, "staff", [entry(brand.clerk_b)], state="second", name="第二个")
    owner = brand.clerk_a2
    who = new_customer(brand, owner_staff=owner)
    record_add(brand.workspace, state="first", customer_id=who.pk, staff_id=brand.clerk_a.pk, at=NOW)
    record_add(
        brand.workspace, state="second", customer_id=who.pk, staff_id=brand.clerk_b.pk, at=NOW + dt.timedelta(days=1)
    )
    # An older event arriving late does not take the latest source back.
    record_add(brand.workspace, state="first", customer_id=who.pk, staff_id=brand.clerk_a.pk, at=NOW - dt.timedelta(1))
    who.refresh_from_db()
    assert who.source_detail == f"{first.name} [first]"
    assert who.attributes["latest_source"]["state"] == "second"
    assert who.owner_staff_id == owner.pk  # an owner is never replaced
    assert list(ChannelCodeAdd.objects.order_by("at").values_list("first_touch", flat=True)) == [False, True, False]


def test_customer_with_a_known_source_is_not_first_touch(brand):
    from siyu.acquisition.services import record_add

    make_code(brand, "staff", [entry(brand.clerk_a)], state="s1")
    who = new_customer(brand, source_channel="import", source_detail="members.csv")
    record_add(brand.workspace, state="s1", customer_id=who.pk, staff_id=brand.clerk_a.pk, at=NOW)
    who.refresh_from_db()
    assert (who.source_channel, who.source_detail) == ("import", "members.csv")
    assert who.attributes["latest_source"]["state"] == "s1"


def test_record_add_is_idempotent_for_a_retried_event(brand, tags):
    from siyu.acquisition.models import ChannelCodeAdd
    from siyu.acquisition.services import record_add
    from siyu.tracking.models import Event

    make_code(brand, "staff", [entry(brand.clerk_a)], state="s1", welcome_text="hi", tag_ids=[tags[0].pk])
    who = new_customer(brand)
    assert record_add(brand.workspace, state="s1", customer_id=who.pk, staff_id=brand.clerk_a.pk, at=NOW).text == "hi"
    assert record_add(brand.workspace, state="s1", customer_id=who.pk, staff_id=brand.clerk_a.pk, at=NOW) is None
    assert ChannelCodeAdd.objects.count() == 1
    assert Event.objects.filter(name="channel_code_added").count() == 1


def test_unknown_state_changes_nothing(brand):
    from siyu.acquisition.models import ChannelCodeAdd
    from siyu.acquisition.services import record_add

    who = new_customer(brand, source_channel="wecom")
    assert record_add(brand.workspace, state="nope", customer_id=who.pk, staff_id=None, at=NOW) is None
    assert record_add(brand.workspace, state="", customer_id=who.pk, staff_id=None, at=NOW) is None
    who.refresh_from_db()
    assert who.attributes == {} and who.source_channel == "wecom"
    assert not ChannelCodeAdd.objects.exists()


def test_code_of_another_workspace_is_unknown(brand, other_workspace):
    from siyu.acquisition.services import CodeInput, create_code, record_add

    create_code(other_workspace, CodeInput(name="x", kind="oa_qr", state="theirs"))
    who = new_customer(brand)
    assert record_add(brand.workspace, state="theirs", customer_id=who.pk, staff_id=None, at=NOW) is None


def test_welcome_is_delivered_through_wecom_within_the_window(brand, wecom):
    """The whole add: WeCom issues a welcome code; the attribution's payload goes to send_welcome_msg."""
    from siyu.acquisition.services import gateways_for, record_add

    make_code(brand, "staff", [entry(brand.clerk_a)], state="s1", welcome_text="欢迎{{ customer.name }}")
    who = new_customer(brand, name="李雷")
    welcome_code = wecom.issue_welcome_code("wangxm", "wmEXT1")
    welcome = record_add(brand.workspace, state="s1", customer_id=who.pk, staff_id=brand.clerk_a.pk, at=NOW)
    gateways_for(brand.workspace).wecom.post("externalcontact/send_welcome_msg", json=welcome.body(welcome_code))
    [sent] = wecom.welcomes
    assert sent["text"] == {"content": "欢迎李雷"}


def test_welcome_appends_the_group_qr_image(brand, settings, tmp_path):
    from django.core.files.base import ContentFile

    from siyu.acquisition.services import welcome_payload
    from siyu.content.models import Material

    settings.MEDIA_ROOT = tmp_path
    material = Material(workspace=brand.workspace, kind="image", title="群码", created_at=NOW, updated_at=NOW)
    material.file.save("group.png", ContentFile(b"\x89PNG fake"), save=True)
    code = make_code(brand, "staff", [entry(brand.clerk_a)], group_qr_material_id=material.pk)
    payload = welcome_payload(code, None)
    assert payload.text == ""
    [image] = payload.attachments
    assert image["msgtype"] == "image" and image["image"]["pic_url"].endswith(".png")


# ---- images --------------------------------------------------------------------------------


def test_qr_png_and_svg(brand):
    from PIL import Image

    from siyu.acquisition import images
    from siyu.acquisition.services import qr_content

    code = make_code(brand, "oa_qr", state="poster-7")
    png = images.qr_png(qr_content(code), scale=5, border=4)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(io.BytesIO(png)) as image:
        # version 3 or 4 for this URL: 29 or 33 modules, plus the border, times the scale
        assert image.size[0] == image.size[1] and (image.size[0] // 5 - 8) in (29, 33)
    svg = images.qr_svg(qr_content(code))
    assert svg.startswith(b"<?xml") and b"<svg" in svg and b"http://www.w3.org/2000/svg" in svg
    with pytest.raises(ValueError):
        images.qr_png("")


def test_poster_is_a_phone_sized_png_with_the_qr(brand):
    from PIL import Image

    from siyu.acquisition import images
    from siyu.acquisition.services import poster_for

    code = make_code(brand, "staff", [entry(brand.clerk_a)], name="南京路新客礼")
    png = poster_for(brand.workspace, code, background="#204080")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == images.POSTER_SIZE
        rgb = image.convert("RGB")
        assert rgb.getpixel((5, 5)) == (0x20, 0x40, 0x80)  # the background colour
        # the QR's top-left finder pattern is black on the white card
        assert rgb.getpixel((images.POSTER_SIZE[0] // 2 - images.QR_SIDE // 2 + 30, 400)) == (0, 0, 0)


def test_poster_takes_a_material_image_as_background(brand, settings, tmp_path):
    from django.core.files.base import ContentFile
    from PIL import Image

    from siyu.acquisition.services import poster_for
    from siyu.content.models import Material

    settings.MEDIA_ROOT = tmp_path
    raw = io.BytesIO()
    Image.new("RGB", (100, 100), (200, 10, 10)).save(raw, format="PNG")
    material = Material(workspace=brand.workspace, kind="image", title="bg", created_at=NOW, updated_at=NOW)
    material.file.save("bg.png", ContentFile(raw.getvalue()), save=True)
    code = make_code(brand, "oa_qr", name="x")
    with Image.open(io.BytesIO(poster_for(brand.workspace, code, background_material_id=material.pk))) as image:
        assert image.convert("RGB").getpixel((5, 5)) == (200, 10, 10)
    with pytest.raises(InvalidInput):
        poster_for(brand.workspace, code, background_material_id=999999)


# ---- report --------------------------------------------------------------------------------


def relation(brand, who, staff, added, *, deleted_after_days=None):
    from siyu.customers.models import StaffRelation

    StaffRelation.objects.create(
        workspace=brand.workspace,
        customer=who,
        staff=staff,
        added_at=added,
        status="active" if deleted_after_days is None else "deleted_by_customer",
        status_changed_at=None if deleted_after_days is None else added + dt.timedelta(days=deleted_after_days),
    )


def add(brand, code, who, staff, when):
    from siyu.acquisition.models import ChannelCodeAdd

    ChannelCodeAdd.objects.create(workspace=brand.workspace, code=code, customer=who, staff=staff, at=when)


def test_report_counts_adds_retention_cost_and_conversion(brand):
    from siyu.acquisition.queries import report
    from siyu.customers.models import OfficialAccountFollow
    from siyu.tracking.models import Order

    code = make_code(brand, "staff", [entry(brand.clerk_a)], cost_fen=10_000)
    oa = make_code(brand, "oa_qr", cost_fen=0)
    idle = make_code(brand, "oa_qr", name="idle", cost_fen=500)
    c1, c2, c3, c4, c5 = (new_customer(brand, name=f"c{i}") for i in range(1, 6))
    days = lambda n: NOW - dt.timedelta(days=n)  # noqa: E731
    add(brand, code, c1, brand.clerk_a, days(40))
    relation(brand, c1, brand.clerk_a, days(40))  # still friends
    add(brand, code, c2, brand.clerk_a, days(40))
    relation(brand, c2, brand.clerk_a, days(40), deleted_after_days=10)  # gone after 10 days
    add(brand, code, c3, brand.clerk_a, days(10))
    relation(brand, c3, brand.clerk_a, days(10), deleted_after_days=3)
    add(brand, code, c4, brand.clerk_a, days(2))  # too recent for any retention
    relation(brand, c4, brand.clerk_a, days(2))
    add(brand, code, c1, brand.clerk_a, days(1))  # c1 again: one more add, same customer
    for who, paid in ((c2, days(39)), (c3, days(20))):  # c3 bought before the add: not a conversion
        Order.objects.create(
            workspace=brand.workspace,
            customer=who,
            order_no=f"O{who.pk}",
            total_fen=100,
            paid_fen=100,
            paid_at=paid,
            created_at=paid,
            updated_at=paid,
        )
    add(brand, oa, c5, None, days(8))
    OfficialAccountFollow.objects.create(
        workspace=brand.workspace,
        customer=c5,
        app_id="wx1",
        openid="o5",
        subscribed=False,
        subscribed_at=days(8),
        unsubscribed_at=days(7) - dt.timedelta(hours=1),
    )

    figures = report(brand.workspace, now=NOW)
    mine = figures[code.pk]
    assert (mine.adds, mine.customers, mine.customers_total) == (5, 4, 4)
    assert mine.eligible == {7: 3, 30: 2} and mine.retained == {7: 2, 30: 1}
    assert mine.retention(7) == pytest.approx(2 / 3) and mine.retention(30) == 0.5
    assert mine.cost_per_customer_fen == 2500
    assert mine.converted == 1 and mine.conversion == 0.25
    assert figures[oa.pk].eligible[7] == 1 and figures[oa.pk].retained[7] == 0
    empty = figures[idle.pk]
    assert (empty.adds, empty.cost_per_customer_fen, empty.retention(7)) == (0, None, None)

    recent = report(brand.workspace, start=days(15), now=NOW)[code.pk]
    assert (recent.adds, recent.customers, recent.customers_total) == (3, 3, 4)
    assert recent.eligible == {7: 1, 30: 0} and recent.retained == {7: 0, 30: 0}
    assert recent.cost_per_customer_fen == 2500  # the cost is spread over every customer the code brought


# ---- API -----------------------------------------------------------------------------------


@pytest.fixture
def api(api_key):
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Bearer {api_key}")

    def call(method, path, body=None, **query):
        url = f"/api/v1{path}"
        if method == "get":
            return client.get(url, query)
        return getattr(client, method)(url, data=body or {}, content_type="application/json")

    return call


def test_api_crud_for_codes_with_staff(api, brand, tags):
    body = {
        "name": "南京路门店码",
        "kind": "store",
        "store_id": brand.store_a.pk,
        "staff": [
            {"staff_id": brand.clerk_a.pk, "daily_cap": 30, "schedule": {"weekdays": [1, 2, 3, 4, 5]}},
            {"staff_id": brand.clerk_a2.pk, "is_backup": True},
        ],
        "tag_ids": [tags[0].pk],
        "welcome_text": "您好，我是{{ staff.name }}",
        "cost_fen": 30000,
    }
    created = api("post", "/channel-codes", body)
    assert created.status_code == 201, created.content
    code = created.json()
    assert code["state"].startswith("c") and code["synced"] is False
    assert [(s["name"], s["daily_cap"], s["is_backup"]) for s in code["staff"]] == [
        ("王小美", 30, False),
        ("李娜", 0, True),
    ]
    assert code["staff"][0]["schedule"] == {"weekdays": [1, 2, 3, 4, 5], "ranges": []}
    assert api("get", f"/channel-codes/{code['id']}").json()["tag_ids"] == [tags[0].pk]

    changed = api("put", f"/channel-codes/{code['id']}", {**body, "name": "改名", "staff": body["staff"][:1]})
    assert changed.status_code == 200 and changed.json()["name"] == "改名" and len(changed.json()["staff"]) == 1
    assert [c["id"] for c in api("get", "/channel-codes").json()] == [code["id"]]
    assert api("post", f"/channel-codes/{code['id']}/pause").json()["status"] == "paused"
    assert api("post", f"/channel-codes/{code['id']}/resume").json()["status"] == "active"
    assert api("delete", f"/channel-codes/{code['id']}").status_code == 204
    assert api("get", f"/channel-codes/{code['id']}").json()["status"] == "archived"
    assert api("get", "/channel-codes", status="active").json() == []


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"kind": "store"}, 422, "store_id"),
        ({"staff": [{"staff_id": 999999}]}, 422, "staff.0.staff_id"),
        ({"staff": [{"staff_id": 1, "schedule": {"ranges": [["9", "18"]]}}]}, 422, "staff.0.schedule.ranges.0"),
        ({"welcome_text": "{{ customer.phone }}"}, 422, "welcome_text"),
        ({"welcome_attachments": [{"msgtype": "video"}]}, 422, "welcome_attachments.0.msgtype"),
        ({"colour": "red"}, 422, None),
    ],
)
def test_api_answers_field_errors(api, brand, change, status, field):
    body = {"name": "x", "kind": "rotating", "staff": [{"staff_id": brand.clerk_a.pk}], **change}
    if body["staff"] and body["staff"][0]["staff_id"] == 1:
        body["staff"][0]["staff_id"] = brand.clerk_a.pk
    answer = api("post", "/channel-codes", body)
    assert answer.status_code == status
    if field:
        assert answer.json()["field"] == field
    else:
        assert answer.json()["detail"][0]["field"] == "colour"


def test_api_downloads_and_report(api, brand):
    code = make_code(brand, "staff", [entry(brand.clerk_a)], cost_fen=900)
    who = new_customer(brand)
    add(brand, code, who, brand.clerk_a, NOW)
    png = api("get", f"/channel-codes/{code.pk}/qr.png")
    assert png["Content-Type"] == "image/png" and png.content[:4] == b"\x89PNG"
    assert api("get", f"/channel-codes/{code.pk}/qr.svg").content.lstrip().startswith(b"<?xml")
    poster = api("get", f"/channel-codes/{code.pk}/poster.png", background="#112233")
    assert poster.status_code == 200 and poster.content[:4] == b"\x89PNG"
    assert api("get", f"/channel-codes/{code.pk}/poster.png", background="red").status_code == 422
    [row] = api("get", "/channel-codes/report").json()
    assert (row["code_id"], row["adds"], row["customers"], row["cost_per_customer_fen"]) == (code.pk, 1, 1, 900)


def test_api_rebalance_reports_calls(api, brand, wecom):
    code = make_code(brand, "rotating", [entry(brand.clerk_a, daily_cap=1), entry(brand.clerk_a2)])
    add(brand, code, new_customer(brand), brand.clerk_a, dt.datetime.now(TZ))
    answer = api("post", f"/channel-codes/{code.pk}/rebalance").json()
    assert answer["calls"] == 1 and answer["changed"] == [code.pk]
    assert way_calls(wecom, "update_contact_way")[-1].body["user"] == ["lina"]


def test_api_codes_of_another_workspace_are_not_found(api, other_workspace):
    from siyu.acquisition.services import CodeInput, create_code

    theirs = create_code(other_workspace, CodeInput(name="x", kind="oa_qr"))
    assert api("get", f"/channel-codes/{theirs.pk}").status_code == 404
    assert api("get", f"/channel-codes/{theirs.pk}/qr.png").status_code == 404
    assert api("get", "/channel-codes/0").status_code == 404


# ---- console -------------------------------------------------------------------------------


def login(user):
    from django.test import Client

    from tests.conftest import PASSWORD

    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def test_console_list_explains_channel_codes_when_empty(personas):
    page = login(personas.hq_admin).get("/channel-codes/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="codes-empty"' in html and "渠道活码是一张可追踪的二维码" in html
    assert 'data-testid="code-new"' in html


def test_console_list_shows_report_columns(personas, brand):
    code = make_code(brand, "staff", [entry(brand.clerk_a)], name="收银台码", cost_fen=1000)
    add(brand, code, new_customer(brand), brand.clerk_a, NOW)
    add(brand, code, new_customer(brand, name="李四"), brand.clerk_a, NOW)
    html = login(personas.hq_admin).get("/channel-codes/").content.decode()
    assert "收银台码" in html and "获客成本/人" in html
    assert '<td class="text-end" data-testid="code-adds">2</td>' in html
    assert '<td class="text-end" data-testid="code-cpc">¥5.00</td>' in html


def test_console_create_form_saves_staff_rows_and_shows_errors(personas, brand, tags):
    client = login(personas.hq_admin)
    assert client.get("/channel-codes/new/").status_code == 200
    form = {
        "name": "南京路轮流码",
        "kind": "rotating",
        "store_id": str(brand.store_a.pk),
        "cost_yuan": "120.50",
        "skip_verify": "1",
        "tag_ids": [str(tags[0].pk)],
        "welcome_text": "你好 {{ customer.name }}",
        "staff_rows": "3",
        "staff-0-staff_id": str(brand.clerk_a.pk),
        "staff-0-daily_cap": "20",
        "staff-0-weekdays": ["1", "2", "3"],
        "staff-0-ranges": "09:00-12:00, 22:00-02:00",
        "staff-1-staff_id": str(brand.clerk_a2.pk),
        "staff-1-daily_cap": "0",
        "staff-1-is_backup": "1",
        "staff-2-staff_id": "",
    }
    saved = client.post("/channel-codes/new/", form)
    assert saved.status_code == 302
    from siyu.acquisition.models import ChannelCode

    code = ChannelCode.objects.get(name="南京路轮流码")
    assert code.cost_fen == 12050 and code.store_id == brand.store_a.pk
    entries = list(code.staff_entries.values_list("staff_id", "daily_cap", "is_backup", "schedule"))
    assert entries == [
        (brand.clerk_a.pk, 20, False, {"weekdays": [1, 2, 3], "ranges": [["09:00", "12:00"], ["22:00", "02:00"]]}),
        (brand.clerk_a2.pk, 0, True, {}),
    ]
    detail = client.get(f"/channel-codes/{code.pk}/").content.decode()
    assert 'data-testid="code-qr"' in detail and "海报" in detail and f"/channel-codes/{code.pk}/poster.png" in detail
    assert client.get(f"/channel-codes/{code.pk}/poster.png").content[:4] == b"\x89PNG"
    assert client.get(f"/channel-codes/{code.pk}/qr.svg")["Content-Type"] == "image/svg+xml"

    bad = client.post("/channel-codes/new/", {**form, "name": "x2", "staff-0-ranges": "9点-18点"})
    assert bad.status_code == 422
    assert 'data-error-field="staff.0.schedule.ranges.0"' in bad.content.decode()


def test_console_welcome_preview_renders_the_template(personas, brand):
    client = login(personas.hq_admin)
    preview = client.post(
        "/channel-codes/preview/",
        {"welcome_text": "{{ customer.name }}，我是{{ staff.name }}", "staff-0-staff_id": str(brand.clerk_a.pk)},
    )
    assert "张三，我是王小美" in preview.content.decode()
    broken = client.post("/channel-codes/preview/", {"welcome_text": "{{ customer.phone }}"}).content.decode()
    assert 'data-testid="welcome-preview-error"' in broken


def test_store_manager_sees_and_manages_only_their_stores_codes(personas, brand):
    mine = make_code(brand, "store", [entry(brand.clerk_a)], name="A店码", store_id=brand.store_a.pk)
    theirs = make_code(brand, "store", [entry(brand.clerk_b)], name="B店码", store_id=brand.store_b.pk)
    client = login(personas.manager_a)
    html = client.get("/channel-codes/").content.decode()
    assert "A店码" in html and "B店码" not in html
    assert client.get(f"/channel-codes/{theirs.pk}/").status_code == 404
    assert client.get(f"/channel-codes/{theirs.pk}/qr.png").status_code == 404
    assert client.get(f"/channel-codes/{mine.pk}/edit/").status_code == 200
    # a code for another store is refused at the field
    form = {"name": "越权", "kind": "store", "store_id": str(brand.store_b.pk), "cost_yuan": "0", "staff_rows": "1"}
    form.update({"staff-0-staff_id": str(brand.clerk_a.pk), "staff-0-daily_cap": "0"})
    refused = client.post("/channel-codes/new/", form)
    assert refused.status_code == 422 and "只能管理本门店的活码" in refused.content.decode()
    assert client.post(f"/channel-codes/{mine.pk}/", {"action": "pause"}).status_code == 302
    mine.refresh_from_db()
    assert mine.status == "paused"


def test_clerk_sees_their_codes_but_cannot_edit(personas, brand):
    mine = make_code(brand, "staff", [entry(brand.clerk_a)], name="我的码")
    make_code(brand, "staff", [entry(brand.clerk_b)], name="别人的码")
    client = login(personas.clerk_a)
    html = client.get("/channel-codes/").content.decode()
    assert "我的码" in html and "别人的码" not in html and 'data-testid="code-new"' not in html
    detail = client.get(f"/channel-codes/{mine.pk}/")
    assert detail.status_code == 200 and 'data-testid="code-edit"' not in detail.content.decode()
    assert client.get("/channel-codes/new/").status_code == 403
    assert client.get(f"/channel-codes/{mine.pk}/edit/").status_code == 403
    assert client.post(f"/channel-codes/{mine.pk}/", {"action": "archive"}).status_code == 403
    mine.refresh_from_db()
    assert mine.status == "active"


def test_analyst_reads_every_code_but_cannot_create(personas, brand):
    make_code(brand, "oa_qr", name="公众号码")
    client = login(personas.analyst)
    html = client.get("/channel-codes/").content.decode()
    assert "公众号码" in html and 'data-testid="code-new"' not in html
    assert client.get("/channel-codes/new/").status_code == 403


# ---- demo ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_demo_codes_backfill_adds_from_relation_states_and_survive_a_rebuild():
    from siyu.acquisition.models import ChannelCode, ChannelCodeAdd
    from siyu.acquisition.queries import report
    from siyu.customers.models import StaffRelation
    from siyu.demo.acquisition import build_channel_codes
    from siyu.demo.services import build_demo
    from siyu.org.models import Workspace

    build_demo(n_customers=300, seed=7, echo=lambda _: None)
    workspace = Workspace.objects.get(slug="demo")
    made = build_channel_codes(workspace, NOW, lambda _: None)
    codes = list(ChannelCode.objects.filter(workspace=workspace))
    assert made == len(codes) >= 4
    assert {c.kind for c in codes} >= {"store", "oa_qr"}
    expected = StaffRelation.objects.filter(workspace=workspace, state__in=[c.state for c in codes]).count()
    assert ChannelCodeAdd.objects.filter(workspace=workspace).count() == expected > 0
    figures = report(workspace, now=NOW)
    assert sum(f.adds for f in figures.values()) == expected
    build_demo(n_customers=50, seed=7, echo=lambda _: None)  # the rebuild wipes the old brand
    assert not ChannelCode.objects.filter(workspace=workspace).exists()
