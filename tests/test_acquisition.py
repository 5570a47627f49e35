"""Channel codes (渠道活码): rotation rules, WeCom contact-way sync against the fake WeCom server,
attribution on add, QR and poster images, the per-code report, the API and the console.

Times are explicit: NOW is Wednesday 2026-11-25 10:00 in Shanghai.
"""

from __future__ import annotations

import datetime as dt
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
