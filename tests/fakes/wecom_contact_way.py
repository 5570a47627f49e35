"""FakeWecom routes for the rest of 「联系我」: get / list / update / del_contact_way.

Importing this module adds them to ``tests.fakes.wecom.ROUTES`` (and wraps add_contact_way to
remember when each way was made, which list_contact_way filters on). The checks and errcodes
follow WeCom (doc 92228; codes as go/Java SDKs list them):

- a missing ``config_id`` is 41043, an unknown one 41044;
- ``state`` and ``remark`` longer than 30 characters are 40058;
- update overwrites lists (``user``, ``party``, ``conclusions``) rather than merging; a
  single-member way (type 1) still takes exactly one user; users outside the app's
  visibility are 60011;
- list_contact_way: ``start_time`` defaults to 90 days ago, ``end_time`` to now, ``limit``
  is 1–1000 (default 100), paged with ``cursor``; only API-made ways are listed.
"""

from __future__ import annotations

from typing import Any

from tests.fakes.wecom import ROUTES, FakeWecom, error, ok

LIST_DEFAULT_DAYS = 90
LIST_MAX = 1000
TEXT_MAX = 30  # state, remark
LISTS = ("user", "party", "conclusions")
WAY_FIELDS = (
    "type",
    "scene",
    "style",
    "remark",
    "skip_verify",
    "state",
    "user",
    "party",
    "is_temp",
    "expires_in",
    "chat_expires_in",
    "unionid",
    "conclusions",
)
_add_contact_way = ROUTES[("POST", "externalcontact/add_contact_way")]


def _created(fake: FakeWecom) -> dict[str, int]:
    """config_id -> creation time, kept on the fake instance (added lazily)."""
    if not hasattr(fake, "contact_way_created"):
        fake.contact_way_created = {}
    return fake.contact_way_created


def _way(fake: FakeWecom, body: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    config_id = str(body.get("config_id") or "")
    if not config_id:
        return None, error(41043, "config_id missing")
    way = fake.contact_ways.get(config_id)
    if way is None:
        return None, error(41044, "invalid config_id")
    return way, None


def add_contact_way(fake: FakeWecom, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    if len(str(body.get("remark", ""))) > TEXT_MAX:
        return error(40058, "field remark exceed max length")
    answer = _add_contact_way(fake, query, body)
    if answer["errcode"] == 0:
        with fake.lock:
            _created(fake)[answer["config_id"]] = int(fake.now())  # WeCom times are whole seconds
    return answer


def get_contact_way(fake: FakeWecom, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    way, failure = _way(fake, body)
    if failure is not None:
        return failure
    assert way is not None
    out = {"config_id": way["config_id"], "qr_code": way.get("qr_code", "")}
    out.update({name: way[name] for name in WAY_FIELDS if name in way})
    out.setdefault("skip_verify", True)
    return ok(contact_way=out)


def list_contact_way(fake: FakeWecom, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    now = int(fake.now())
    try:
        start = int(body.get("start_time") or now - LIST_DEFAULT_DAYS * 86400)
        end = int(body.get("end_time") or now)
        limit = int(body.get("limit") or 100)
        cursor = int(body.get("cursor") or 0)
    except (TypeError, ValueError):
        return error(40058, "field start_time/end_time/limit/cursor invalid")
    if not 1 <= limit <= LIST_MAX:
        return error(40058, "field limit invalid")
    if start > end:
        return error(40058, "start_time after end_time")
    created = _created(fake)
    ids = sorted(c for c in fake.contact_ways if start <= created.get(c, now) <= end)
    page = ids[cursor : cursor + limit]
    answer = ok(contact_way=[{"config_id": c} for c in page])
    answer["next_cursor"] = str(cursor + limit) if cursor + limit < len(ids) else ""
    return answer


def update_contact_way(fake: FakeWecom, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    way, failure = _way(fake, body)
    if failure is not None:
        return failure
    assert way is not None
    for name in ("state", "remark"):
        if len(str(body.get(name, ""))) > TEXT_MAX:
            return error(40058, f"field {name} exceed max length")
    if "user" in body:
        users = body.get("user") or []
        if not isinstance(users, list):
            return error(40058, "field user invalid")
        if way.get("type") == 1 and len(users) != 1:
            return error(40058, "type 1 needs exactly one user")
        if set(users) & fake.invisible_users:
            return error(60011, "no privilege to access/modify contact/party/agent")
    with fake.lock:
        # Lists are replaced, not merged: the body's user list is the whole new list.
        way.update({name: value for name, value in body.items() if name != "config_id"})
        for name in LISTS:
            if name in body and body[name] is None:
                way[name] = []
    return ok()


def del_contact_way(fake: FakeWecom, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    _, failure = _way(fake, body)
    if failure is not None:
        return failure
    config_id = str(body["config_id"])
    with fake.lock:
        fake.contact_ways.pop(config_id, None)
        _created(fake).pop(config_id, None)
    return ok()


ROUTES.update(
    {
        ("POST", "externalcontact/add_contact_way"): add_contact_way,
        ("POST", "externalcontact/get_contact_way"): get_contact_way,
        ("POST", "externalcontact/list_contact_way"): list_contact_way,
        ("POST", "externalcontact/update_contact_way"): update_contact_way,
        ("POST", "externalcontact/del_contact_way"): del_contact_way,
    }
)
