"""Customer transfer (在职继承 / 离职继承) on the fake WeCom server.

Importing this module adds the routes ``transfer_customer``, ``transfer_result``,
``get_unassigned_list``, ``resigned/transfer_customer`` and ``resigned/transfer_result`` to
``FakeWecom``. They enforce what WeCom enforces:

- at most 100 ``external_userid`` per call (40058);
- the takeover member must have customer contact, i.e. be a follow user (84083, whole call);
- each customer must be followed by the handover member (40131) and known (40096);
- at most two on-job transfers of a customer in 90 days (40128), one running transfer per
  customer (40129 on-job, 40100 resigned), and a resigned transfer of a member who has not
  left (40097, whole call);
- a transfer waits (status 2) until ``complete_transfers(fake, ...)`` accepts or refuses it,
  or ``fake.now()`` is 24 h past the request, when it is done (status 1), or status 4 when
  the takeover member is at ``fake.transfer_caps[userid]`` customers.

A done transfer moves the follow on the contact from the handover member to the takeover one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.fakes.wecom import ROUTES, FakeWecom, Follow, error, ok

DAY = 86_400.0
AUTO_TAKEOVER = DAY  # WeCom completes a transfer 24 h after the request
LIMIT_WINDOW = 90 * DAY
MAX_IDS = 100
RESULT_PAGE = 1000


@dataclass
class Transfer:
    kind: str  # on_job / resigned
    handover: str
    takeover: str
    external_userid: str
    at: float
    status: int = 2  # 1 done, 2 waiting, 3 refused, 4 takeover at cap
    takeover_time: float = 0.0


def transfers(fake: FakeWecom) -> list[Transfer]:
    return fake.__dict__.setdefault("_transfers", [])


def resigned_members(fake: FakeWecom) -> dict[str, float]:
    """userid → dimission time of members who have left (``resign(fake, userid)``)."""
    return fake.__dict__.setdefault("_resigned", {})


def transfer_caps(fake: FakeWecom) -> dict[str, int]:
    return fake.__dict__.setdefault("_transfer_caps", {})


def resign(fake: FakeWecom, userid: str) -> None:
    with fake.lock:
        resigned_members(fake)[userid] = fake.now()


def _settle(fake: FakeWecom) -> None:
    """Complete every waiting transfer whose 24 h are over (called under the lock)."""
    now = fake.now()
    for item in transfers(fake):
        if item.status == 2 and now - item.at >= AUTO_TAKEOVER:
            _finish(fake, item, accept=True, at=item.at + AUTO_TAKEOVER)


def _finish(fake: FakeWecom, item: Transfer, *, accept: bool, at: float) -> None:
    if not accept:
        item.status = 3
        return
    cap = transfer_caps(fake).get(item.takeover)
    followed = sum(1 for c in fake.contacts.values() if any(f.userid == item.takeover for f in c.follows))
    if cap is not None and followed >= cap:
        item.status = 4
        return
    item.status, item.takeover_time = 1, at
    contact = fake.contacts.get(item.external_userid)
    if contact is not None:
        old = next((f for f in contact.follows if f.userid == item.handover), None)
        contact.follows = [f for f in contact.follows if f.userid != item.handover]
        if not any(f.userid == item.takeover for f in contact.follows):
            contact.follows.append(Follow(item.takeover, remark=old.remark if old else "", createtime=int(at)))


def complete_transfers(fake: FakeWecom, external_userids: list[str] | None = None, *, accept: bool = True) -> int:
    """The customers accept (or refuse) their waiting transfers now; all waiting ones if None."""
    with fake.lock:
        done = 0
        for item in transfers(fake):
            if item.status == 2 and (external_userids is None or item.external_userid in external_userids):
                _finish(fake, item, accept=accept, at=fake.now())
                done += 1
        return done


def _transfer(fake: FakeWecom, body: dict[str, Any], kind: str) -> dict[str, Any]:
    handover, takeover = str(body.get("handover_userid", "")), str(body.get("takeover_userid", ""))
    ids = body.get("external_userid")
    if not handover or not takeover:
        return error(40058, "handover_userid and takeover_userid required")
    if not isinstance(ids, list) or not ids:
        return error(41035, "missing external userid")
    if len(ids) > MAX_IDS:
        return error(40058, "field external_userid exceed max length")
    if len(str(body.get("transfer_success_msg", ""))) > 200:
        return error(40058, "field transfer_success_msg exceed max length")
    if takeover not in fake.follow_users:
        return error(84083, "takeover member has no customer contact")
    with fake.lock:
        if kind == "resigned" and handover not in resigned_members(fake):
            return error(40097, "the member has not resigned")
        _settle(fake)
        now = fake.now()
        answers = []
        for ext in ids:
            ext = str(ext)
            contact = fake.contacts.get(ext)
            history = [t for t in transfers(fake) if t.external_userid == ext]
            if contact is None:
                code = 40096
            elif handover == takeover:
                code = 40130
            elif not any(f.userid == handover for f in contact.follows):
                code = 40131
            elif any(t.status == 2 for t in history):
                code = 40129 if kind == "on_job" else 40100
            elif (
                kind == "on_job"
                and sum(1 for t in history if t.kind == "on_job" and t.status in (1, 2) and now - t.at < LIMIT_WINDOW)
                >= 2
            ):
                code = 40128
            else:
                code = 0
                transfers(fake).append(Transfer(kind, handover, takeover, ext, now))
            answers.append({"external_userid": ext, "errcode": code})
    return ok(customer=answers)


def _result(fake: FakeWecom, body: dict[str, Any], kind: str) -> dict[str, Any]:
    handover, takeover = str(body.get("handover_userid", "")), str(body.get("takeover_userid", ""))
    if not handover or not takeover:
        return error(40058, "handover_userid and takeover_userid required")
    page = int(getattr(fake, "transfer_result_page", RESULT_PAGE))
    with fake.lock:
        _settle(fake)
        # The latest transfer per customer for this pair.
        latest: dict[str, Transfer] = {}
        for item in transfers(fake):
            if item.kind == kind and item.handover == handover and item.takeover == takeover:
                latest[item.external_userid] = item
        rows = [latest[k] for k in sorted(latest)]
    start = int(body.get("cursor") or 0)
    customers = [
        {
            "external_userid": t.external_userid,
            "status": t.status,
            "takeover_time": int(t.takeover_time or (t.at + AUTO_TAKEOVER if t.status == 2 else 0)),
        }
        for t in rows[start : start + page]
    ]
    answer = ok(customer=customers)
    answer["next_cursor"] = str(start + page) if start + page < len(rows) else ""
    return answer


def _get_unassigned_list(fake: FakeWecom, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    size = int(body.get("page_size") or 1000)
    if not 1 <= size <= 1000:
        return error(40058, "field page_size invalid")
    with fake.lock:
        _settle(fake)
        moving = {t.external_userid for t in transfers(fake) if t.kind == "resigned" and t.status in (1, 2)}
        rows = [
            {"handover_userid": f.userid, "external_userid": c.external_userid, "dimission_time": int(left)}
            for c in sorted(fake.contacts.values(), key=lambda c: c.external_userid)
            for f in c.follows
            if (left := resigned_members(fake).get(f.userid)) is not None and c.external_userid not in moving
        ]
    start = int(body.get("cursor") or 0)
    answer = ok(info=rows[start : start + size], is_last=start + size >= len(rows))
    answer["next_cursor"] = str(start + size) if start + size < len(rows) else ""
    return answer


ROUTES.update(
    {
        ("POST", "externalcontact/transfer_customer"): lambda f, q, b: _transfer(f, b, "on_job"),
        ("POST", "externalcontact/resigned/transfer_customer"): lambda f, q, b: _transfer(f, b, "resigned"),
        ("POST", "externalcontact/transfer_result"): lambda f, q, b: _result(f, b, "on_job"),
        ("POST", "externalcontact/resigned/transfer_result"): lambda f, q, b: _result(f, b, "resigned"),
        ("POST", "externalcontact/get_unassigned_list"): _get_unassigned_list,
    }
)
