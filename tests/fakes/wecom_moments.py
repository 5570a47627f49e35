"""Moments (朋友圈) and member OAuth on the fake WeCom server: importing this module adds the
routes to ``FakeWecom``'s ROUTES.

- ``externalcontact/add_moment_task`` validates like WeCom (text ≤ 2000 characters;
  attachments 9 images or 1 video or 1 link; images and videos by ``media_id``) and answers a
  ``jobid``; ``get_moment_task_result?jobid=`` says ``status`` 1 (running) for
  ``fake.moment_job_polls`` calls, then 3 (done) with ``moment_id`` and the invalid senders
  and tags;
- ``get_moment_task`` (per-sender ``publish_status``), ``get_moment_customer_list`` (who can
  see a sender's post), ``get_moment_send_result`` (who it was shown to, once published),
  ``get_moment_list``;
- ``media/upload_attachment`` (multipart, ``media_type`` image/video, ``attachment_type=1``
  for Moments) returns a ``media_id`` the moment may use;
- ``auth/getuserinfo?code=``: a code from ``issue_oauth_code`` is good once, for 5 minutes.

``publish_moment(fake, moment_id, userid)`` is a staff member posting it from their phone.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from tests.fakes import wecom as base
from tests.fakes.wecom import ROUTES, FakeWecom, error, ok

TEXT_MAX = 2000
IMAGES_MAX = 9
TASK_LIMIT = 1000
CUSTOMER_LIMIT = 1000
SEND_RESULT_LIMIT = 5000
LIST_LIMIT = 20
LIST_WINDOW = 30 * 86400
OAUTH_VALIDITY = 300.0


@dataclass
class FakeMoment:
    moment_id: str
    creator: str
    create_time: int
    text: str
    attachments: list[dict[str, Any]]
    senders: list[str]
    tag_ids: list[str]
    published: dict[str, int] = field(default_factory=dict)  # userid -> publish time


@dataclass
class FakeJob:
    jobid: str
    polls_left: int
    result: dict[str, Any]


def _state(fake: FakeWecom) -> dict[str, Any]:
    state = fake.__dict__.get("_moments_state")
    if state is None:
        state = fake.__dict__["_moments_state"] = {
            "moments": {},
            "jobs": {},
            "media": {},
            "oauth": {},
            "job_polls": 1,
        }
    return state


def moments(fake: FakeWecom) -> dict[str, FakeMoment]:
    return _state(fake)["moments"]


def set_job_polls(fake: FakeWecom, polls: int) -> None:
    """How many ``get_moment_task_result`` calls answer 'running' before 'done'."""
    _state(fake)["job_polls"] = polls


def publish_moment(fake: FakeWecom, moment_id: str, userid: str) -> None:
    """A sender publishes the post from their WeCom app."""
    with fake.lock:
        moment = moments(fake)[moment_id]
        if userid not in moment.senders:
            raise ValueError(f"{userid} is not a sender of {moment_id}")
        moment.published.setdefault(userid, int(fake.now()))


def issue_oauth_code(fake: FakeWecom, userid: str) -> str:
    """What WeCom appends to the redirect URL after a member opens the sidebar page."""
    code = "OAUTH" + secrets.token_hex(8)
    with fake.lock:
        _state(fake)["oauth"][code] = {"userid": userid, "at": fake.now(), "used": False}
    return code


def _attachments_error(attachments: Any, media: dict[str, str]) -> dict[str, Any] | None:
    if not isinstance(attachments, list):
        return error(40058, "field attachments invalid")
    kinds = [a.get("msgtype") if isinstance(a, dict) else None for a in attachments]
    if not kinds:
        return None
    if set(kinds) == {"image"}:
        if len(kinds) > IMAGES_MAX:
            return error(40058, "attachments image exceed max count 9")
    elif len(kinds) != 1 or kinds[0] not in ("video", "link"):
        return error(40058, "attachments must be 9 images or 1 video or 1 link")
    for attachment in attachments:
        kind = attachment["msgtype"]
        body = attachment.get(kind)
        if not isinstance(body, dict):
            return error(40058, f"field {kind} invalid")
        if kind in ("image", "video"):
            if media.get(str(body.get("media_id", ""))) != kind:
                return error(40007, "invalid media_id")
        elif not str(body.get("url", "")).startswith(("http://", "https://")) or not body.get("title"):
            return error(40058, "field link.url / link.title invalid")
    return None


def _add_moment_task(fake: FakeWecom, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    state = _state(fake)
    text = str((body.get("text") or {}).get("content", ""))
    if len(text) > TEXT_MAX:
        return error(40058, "field text.content exceed max length")
    attachments = body.get("attachments") or []
    problem = _attachments_error(attachments, state["media"])
    if problem is not None:
        return problem
    if not text and not attachments:
        return error(40058, "text and attachments are both empty")
    visible = body.get("visible_range") or {}
    users = list((visible.get("sender_list") or {}).get("user_list") or [])
    tags = list((visible.get("external_contact_list") or {}).get("tag_list") or [])
    members = set(fake.follow_users) - fake.invisible_users
    known_tags = {t["id"] for g in fake.tag_groups for t in g["tag"]}
    invalid_users = [u for u in users if u not in members]
    invalid_tags = [t for t in tags if t not in known_tags]
    senders = [u for u in users if u in members] if users else sorted(members)
    with fake.lock:
        moment_id = f"mom{next(fake._ids):010d}"
        jobid = f"job{secrets.token_hex(6)}"
        if senders:
            moments(fake)[moment_id] = FakeMoment(
                moment_id, "", int(fake.now()), text, attachments, senders, [t for t in tags if t in known_tags]
            )
            result = ok(moment_id=moment_id)
        else:
            result = error(41054, "no valid sender")  # every sender invalid: the job fails
        result["invalid_sender_list"] = {"user_list": invalid_users, "department_list": []}
        result["invalid_external_contact_list"] = {"tag_list": invalid_tags}
        state["jobs"][jobid] = FakeJob(jobid, state["job_polls"], result)
    return ok(jobid=jobid)


def _get_moment_task_result(fake: FakeWecom, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    with fake.lock:
        job = _state(fake)["jobs"].get(query.get("jobid", ""))
        if job is None:
            return error(40058, "invalid jobid")
        if job.polls_left > 0:
            job.polls_left -= 1
            return ok(status=1, type="add_moment_task")
        return ok(status=3, type="add_moment_task", result=job.result)


def _moment(fake: FakeWecom, body: dict[str, Any]) -> FakeMoment | None:
    return moments(fake).get(str(body.get("moment_id", "")))


def _page(rows: list[Any], body: dict[str, Any], limit_max: int, default: int) -> tuple[list[Any], str] | None:
    try:
        limit = int(body.get("limit") or default)
        start = int(body.get("cursor") or 0)
    except (TypeError, ValueError):
        return None
    if not 1 <= limit <= limit_max:
        return None
    return rows[start : start + limit], str(start + limit) if start + limit < len(rows) else ""


def _get_moment_task(fake: FakeWecom, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    moment = _moment(fake, body)
    if moment is None:
        return error(40058, "invalid moment_id")
    rows = [{"userid": u, "publish_status": 1 if u in moment.published else 0} for u in moment.senders]
    page = _page(rows, body, TASK_LIMIT, 500)
    if page is None:
        return error(40058, "field limit invalid")
    return ok(task_list=page[0], next_cursor=page[1])


def _customers_of(fake: FakeWecom, moment: FakeMoment, userid: str) -> list[str]:
    return sorted(
        c.external_userid
        for c in fake.contacts.values()
        for f in c.follows
        if f.userid == userid and (not moment.tag_ids or set(f.tag_ids) & set(moment.tag_ids))
    )


def _get_moment_customer_list(fake: FakeWecom, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    moment = _moment(fake, body)
    if moment is None:
        return error(40058, "invalid moment_id")
    userid = str(body.get("userid", ""))
    if userid not in moment.senders:
        return error(40058, "invalid userid")
    rows = [{"userid": userid, "external_userid": e} for e in _customers_of(fake, moment, userid)]
    page = _page(rows, body, CUSTOMER_LIMIT, 500)
    if page is None:
        return error(40058, "field limit invalid")
    return ok(customer_list=page[0], next_cursor=page[1])


def _get_moment_send_result(fake: FakeWecom, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    moment = _moment(fake, body)
    if moment is None:
        return error(40058, "invalid moment_id")
    userid = str(body.get("userid", ""))
    if userid not in moment.senders:
        return error(40058, "invalid userid")
    sent = _customers_of(fake, moment, userid) if userid in moment.published else []
    page = _page([{"external_userid": e} for e in sent], body, SEND_RESULT_LIMIT, 3000)
    if page is None:
        return error(40058, "field limit invalid")
    return ok(customer_list=page[0], next_cursor=page[1])


def _get_moment_list(fake: FakeWecom, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    try:
        start, end = int(body["start_time"]), int(body["end_time"])
    except (KeyError, TypeError, ValueError):
        return error(40058, "start_time / end_time required")
    if end < start or end - start > LIST_WINDOW:
        return error(40058, "time range exceeds 30 days")
    rows = [
        {"moment_id": m.moment_id, "creator": m.creator, "create_type": 0, "create_time": m.create_time,
         "visible_type": 0, "text": {"content": m.text}}
        for m in sorted(moments(fake).values(), key=lambda m: m.moment_id)
        if start <= m.create_time <= end
    ]  # fmt: skip
    page = _page(rows, body, LIST_LIMIT, LIST_LIMIT)
    if page is None:
        return error(40058, "field limit invalid")
    return ok(moment_list=page[0], next_cursor=page[1])


def _getuserinfo(fake: FakeWecom, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    with fake.lock:
        entry = _state(fake)["oauth"].get(query.get("code", ""))
        if entry is None or entry["used"] or fake.now() - entry["at"] > OAUTH_VALIDITY:
            return error(40029, "invalid code")
        entry["used"] = True
    return ok(userid=entry["userid"], user_ticket="")


def _upload_attachment(fake: FakeWecom, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    kind = query.get("media_type", "")
    if kind not in ("image", "video") or query.get("attachment_type") != "1":
        return error(40004, "invalid media type")
    if not body.get("_file_size"):
        return error(41005, "media data missing")
    media_id = f"MEDIA{secrets.token_hex(10)}"
    with fake.lock:
        _state(fake)["media"][media_id] = kind
    return ok(type=kind, media_id=media_id, created_at=str(int(fake.now())))


# Multipart uploads: the base handler reads JSON bodies only, so the upload's form data is
# summarised into a dict (file name and size) before the route sees it.
_base_serve = base._Handler._serve


def _serve(self: Any, method: str) -> None:
    if method == "POST" and "/cgi-bin/media/upload_attachment" in self.path:
        from urllib.parse import parse_qsl, urlsplit

        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        ctype = self.headers.get("Content-Type", "")
        size = len(raw) if ctype.startswith("multipart/form-data") and b'name="media"' in raw else 0
        summary = {"_file_size": size}
        self._answer(self.fake.handle(method, "media/upload_attachment", query, summary), method,
                     "media/upload_attachment", query, summary)  # fmt: skip
        return
    _base_serve(self, method)


base._Handler._serve = _serve  # type: ignore[method-assign]

ROUTES.update(
    {
        ("POST", "externalcontact/add_moment_task"): _add_moment_task,
        ("GET", "externalcontact/get_moment_task_result"): _get_moment_task_result,
        ("POST", "externalcontact/get_moment_task"): _get_moment_task,
        ("POST", "externalcontact/get_moment_customer_list"): _get_moment_customer_list,
        ("POST", "externalcontact/get_moment_send_result"): _get_moment_send_result,
        ("POST", "externalcontact/get_moment_list"): _get_moment_list,
        ("GET", "auth/getuserinfo"): _getuserinfo,
        ("POST", "media/upload_attachment"): _upload_attachment,
    }
)
