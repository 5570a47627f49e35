"""A local WeCom server (``/cgi-bin/...``) that speaks the real protocol: access tokens in the
query string, ``{errcode, errmsg}`` answers with the documented codes, cursor paging, the
20-second once-only welcome code, and fault modes for the gateway's error handling.

    with FakeWecom(corp_id="ww_fake", secret="s3cret") as fake:
        fake.add_contact("wmEXT1", "张三", [Follow("wangxm", state="store-SH01")])
        client = WecomClient(fake.corp_id, fake.secret, base_url=fake.url)
        client.get("externalcontact/get", external_userid="wmEXT1")

Fault modes: ``expire_tokens()`` (the next call with an old token gets 42001), ``storm(n)``
(45009 for the next n API calls), ``busy(n)`` (-1), ``untrusted_ip`` (60020),
``forbidden`` (48002 or 84074 on customer-contact APIs), ``invisible_users`` (60011), a wrong
secret gives 40001 and a wrong corp id 40013, as WeCom does.

``post_callback`` builds an encrypted callback exactly as WeCom sends it and posts it to a URL.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.error import HTTPError
from urllib.parse import parse_qsl, urlencode, urlsplit

from siyu.wecom.crypto import MsgCrypt

WELCOME_VALIDITY = 20.0


@dataclass
class Follow:
    userid: str
    remark: str = ""
    description: str = ""
    createtime: int = 1_700_000_000
    tag_ids: list[str] = field(default_factory=list)
    state: str = ""
    add_way: int = 1
    oper_userid: str = ""


@dataclass
class Contact:
    external_userid: str
    name: str
    follows: list[Follow] = field(default_factory=list)
    type: int = 1
    gender: int = 0
    unionid: str = ""

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "external_userid": self.external_userid,
            "name": self.name,
            "type": self.type,
            "gender": self.gender,
        }
        if self.unionid:
            out["unionid"] = self.unionid
        return out


@dataclass
class Call:
    method: str
    api: str
    query: dict[str, str]
    body: dict[str, Any] | None
    errcode: int


class FakeWecom:
    def __init__(self, corp_id: str = "ww_fake_corp", secret: str = "fake-app-secret-0123456789") -> None:
        self.corp_id = corp_id
        self.secret = secret
        self.lock = threading.Lock()
        self.calls: list[Call] = []
        self.contacts: dict[str, Contact] = {}
        self.follow_users: list[str] = []  # members with customer contact enabled
        self.tag_groups: list[dict[str, Any]] = []
        self.contact_ways: dict[str, dict[str, Any]] = {}
        self.welcome_codes: dict[str, dict[str, Any]] = {}  # code -> {userid, external_userid, at, used}
        self.welcomes: list[dict[str, Any]] = []  # delivered welcome messages
        self.tokens: dict[str, float] = {}  # token -> expires at
        self.expires_in = 7200
        self.now: Callable[[], float] = time.time
        # fault modes
        self.untrusted_ip = False
        self.forbidden: int | None = None  # 48002 or 84074 on externalcontact/*
        self.invisible_users: set[str] = set()  # userids outside the app's visibility (60011)
        self.mark_tag_hold = 0.0  # seconds mark_tag keeps a customer locked (45033 for others)
        self._storm = 0
        self._busy = 0
        self._marking: set[str] = set()
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None

    # ---- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> FakeWecom:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # ---- data and faults -----------------------------------------------------------------

    def add_contact(self, external_userid: str, name: str, follows: list[Follow], **fields: Any) -> Contact:
        contact = Contact(external_userid, name, follows, **fields)
        with self.lock:
            self.contacts[external_userid] = contact
            for follow in follows:
                if follow.userid not in self.follow_users:
                    self.follow_users.append(follow.userid)
        return contact

    def issue_welcome_code(self, userid: str, external_userid: str) -> str:
        """What WeCom puts in an add_external_contact event: valid 20 s, usable once."""
        code = "WELCOME" + secrets.token_hex(8)
        with self.lock:
            self.welcome_codes[code] = {
                "userid": userid,
                "external_userid": external_userid,
                "at": self.now(),
                "used": False,
            }
        return code

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def storm(self, calls: int) -> None:
        self._storm = calls

    def busy(self, calls: int) -> None:
        self._busy = calls

    def api_calls(self, api: str) -> list[Call]:
        return [c for c in self.calls if c.api == api]

    # ---- the API -------------------------------------------------------------------------

    def handle(self, method: str, api: str, query: dict[str, str], body: dict[str, Any] | None) -> dict[str, Any]:
        if api == "gettoken":
            return self._gettoken(query)
        token = query.get("access_token", "")
        if not token:
            return error(41001, "access_token missing")
        with self.lock:
            expires = self.tokens.get(token)
        if expires is None:
            # Tokens this fake never issued are invalid (40014); issued ones that were revoked
            # or ran out read as expired (42001), as WeCom does for a token past expires_in.
            return error(42001 if token.startswith("fake-token-") else 40014, "access_token expired")
        if expires < self.now():
            return error(42001, "access_token expired")
        if self.untrusted_ip:
            return error(60020, "not allow to access from your ip, hint: [x], from ip: 127.0.0.1")
        with self.lock:
            if self._storm > 0:
                self._storm -= 1
                return error(45009, "api freq out of limit")
            if self._busy > 0:
                self._busy -= 1
                return error(-1, "system busy")
        if self.forbidden and api.startswith("externalcontact/"):
            return error(self.forbidden, "api forbidden")
        route = ROUTES.get((method, api))
        if route is None:
            return error(404, f"fake: no {method} {api}")
        return route(self, query, body or {})

    def _gettoken(self, query: dict[str, str]) -> dict[str, Any]:
        if query.get("corpid") != self.corp_id:
            return error(40013, "invalid corpid")
        if query.get("corpsecret") != self.secret:
            return error(40001, "invalid credential")
        token = "fake-token-" + secrets.token_hex(16)
        with self.lock:
            self.tokens[token] = self.now() + self.expires_in
        return {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": self.expires_in}

    def _follow_user_list(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if self.invisible_users & set(self.follow_users):
            return error(60011, "no privilege to access/modify contact/party/agent")
        return ok(follow_user=list(self.follow_users))

    def _list(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        userid = query.get("userid", "")
        if userid in self.invisible_users:
            return error(60011, "no privilege to access/modify contact/party/agent")
        ids = [c.external_userid for c in self.contacts.values() if any(f.userid == userid for f in c.follows)]
        if not ids and userid not in self.follow_users:
            return error(84061, "not external contact")
        return ok(external_userid=ids)

    def _get(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        contact = self.contacts.get(query.get("external_userid", ""))
        if contact is None:
            return error(40096, "invalid external userid")
        cursor = int(query.get("cursor") or 0)
        page = contact.follows[cursor : cursor + 500]
        answer = ok(external_contact=contact.as_json(), follow_user=[self._follow_json(f) for f in page])
        if cursor + 500 < len(contact.follows):
            answer["next_cursor"] = str(cursor + 500)
        return answer

    def _follow_json(self, follow: Follow, *, ids_only: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "userid": follow.userid,
            "remark": follow.remark,
            "description": follow.description,
            "createtime": follow.createtime,
            "add_way": follow.add_way,
            "oper_userid": follow.oper_userid or follow.userid,
        }
        if follow.state:
            out["state"] = follow.state
        if ids_only:
            out["tag_id"] = list(follow.tag_ids)
        else:
            out["tags"] = [self._tag_json(t) for t in follow.tag_ids]
        return out

    def _tag_json(self, tag_id: str) -> dict[str, Any]:
        for group in self.tag_groups:
            for tag in group["tag"]:
                if tag["id"] == tag_id:
                    return {"group_name": group["group_name"], "tag_name": tag["name"], "type": 1, "tag_id": tag_id}
        return {"group_name": "", "tag_name": "", "type": 1, "tag_id": tag_id}

    def _batch_get_by_user(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        users = body.get("userid_list")
        if not isinstance(users, list) or not users:
            return error(40058, "field userid_list invalid")
        if len(users) > 100:
            return error(40058, "field userid_list exceed max length")
        limit = int(body.get("limit") or 50)
        if not 1 <= limit <= 100:
            return error(40058, "field limit invalid")
        rows = [
            {"external_contact": c.as_json(), "follow_info": self._follow_json(f, ids_only=True)}
            for userid in users
            for c in sorted(self.contacts.values(), key=lambda c: c.external_userid)
            for f in c.follows
            if f.userid == userid
        ]
        start = int(body.get("cursor") or 0)
        answer = ok(external_contact_list=rows[start : start + limit])
        answer["next_cursor"] = str(start + limit) if start + limit < len(rows) else ""
        return answer

    def _send_welcome_msg(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        attachments = body.get("attachments") or []
        if len(attachments) > 9:
            return error(40058, "attachments exceed max length")
        with self.lock:
            entry = self.welcome_codes.get(str(body.get("welcome_code", "")))
            if entry is None or self.now() - entry["at"] > WELCOME_VALIDITY:
                return error(41050, "invalid welcome_code")
            if entry["used"]:
                return error(41051, "customer already chatting or welcome already sent")
            entry["used"] = True
            self.welcomes.append({**entry, "text": body.get("text"), "attachments": attachments})
        return ok()

    def _add_contact_way(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        kind, users = body.get("type"), body.get("user") or []
        if kind not in (1, 2) or body.get("scene") not in (1, 2):
            return error(40058, "field type/scene invalid")
        if kind == 1 and len(users) != 1:
            return error(40058, "type 1 needs exactly one user")
        if len(str(body.get("state", ""))) > 30:
            return error(40058, "field state exceed max length")
        config_id = f"cfg{next(self._ids):08d}"
        way = {**body, "config_id": config_id, "qr_code": f"https://wwcdn.weixin.qq.com/fake/{config_id}.png"}
        self.contact_ways[config_id] = way
        return ok(config_id=config_id, qr_code=way["qr_code"])

    def _get_corp_tag_list(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        groups, tag_ids = body.get("group_id") or [], body.get("tag_id") or []
        if groups:  # both given: group_id wins
            return ok(tag_group=[g for g in self.tag_groups if g["group_id"] in groups])
        if tag_ids:
            out = []
            for group in self.tag_groups:
                tags = [t for t in group["tag"] if t["id"] in tag_ids]
                if tags:
                    out.append({**group, "tag": tags})
            return ok(tag_group=out)
        return ok(tag_group=self.tag_groups)

    def _mark_tag(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        external = str(body.get("external_userid", ""))
        contact = self.contacts.get(external)
        if contact is None:
            return error(40096, "invalid external userid")
        follow = next((f for f in contact.follows if f.userid == body.get("userid")), None)
        if follow is None:
            return error(84061, "not external contact")
        known = {t["id"] for g in self.tag_groups for t in g["tag"]}
        add, remove = body.get("add_tag") or [], body.get("remove_tag") or []
        if not set(add) | set(remove) <= known:
            return error(40068, "invalid tagid")
        with self.lock:
            if external in self._marking:
                return error(45033, "api concurrent out of limit")
            self._marking.add(external)
        try:
            if self.mark_tag_hold:
                time.sleep(self.mark_tag_hold)
            follow.tag_ids = [t for t in follow.tag_ids if t not in remove] + [
                t for t in add if t not in follow.tag_ids
            ]
        finally:
            with self.lock:
                self._marking.discard(external)
        return ok()


def ok(**fields: Any) -> dict[str, Any]:
    return {"errcode": 0, "errmsg": "ok", **fields}


def error(code: int, message: str) -> dict[str, Any]:
    return {
        "errcode": code,
        "errmsg": f"{message}, more info at https://open.work.weixin.qq.com/devtool/query?e={code}",
    }


ROUTES: dict[tuple[str, str], Callable[[FakeWecom, dict[str, str], dict[str, Any]], dict[str, Any]]] = {
    ("GET", "externalcontact/get_follow_user_list"): FakeWecom._follow_user_list,
    ("GET", "externalcontact/list"): FakeWecom._list,
    ("GET", "externalcontact/get"): FakeWecom._get,
    ("POST", "externalcontact/batch/get_by_user"): FakeWecom._batch_get_by_user,
    ("POST", "externalcontact/send_welcome_msg"): FakeWecom._send_welcome_msg,
    ("POST", "externalcontact/add_contact_way"): FakeWecom._add_contact_way,
    ("POST", "externalcontact/get_corp_tag_list"): FakeWecom._get_corp_tag_list,
    ("POST", "externalcontact/mark_tag"): FakeWecom._mark_tag,
}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeWecom

    def log_message(self, *args: Any) -> None:
        pass

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        api = parts.path.removeprefix("/cgi-bin/")
        body: dict[str, Any] | None = None
        if method == "POST":
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = None
            if not isinstance(body, dict):
                self._answer(error(47001, "data format error"), method, api, query, None)
                return
        self._answer(self.fake.handle(method, api, query, body), method, api, query, body)

    def _answer(
        self, answer: dict[str, Any], method: str, api: str, query: dict[str, str], body: dict[str, Any] | None
    ) -> None:
        with self.fake.lock:
            self.fake.calls.append(Call(method, api, query, body, answer["errcode"]))
        data = json.dumps(answer, ensure_ascii=False).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")


# ---- callbacks, as WeCom pushes them -------------------------------------------------------


def event_xml(
    corp_id: str,
    event: str,
    change_type: str = "",
    *,
    create_time: int | None = None,
    items: dict[str, list[str]] | None = None,
    **fields: str,
) -> str:
    """A self-built app's event body (before encryption): ``ToUserName=corpid, FromUserName=sys``.
    ``items`` are lists as WeCom nests them: ``{"MemChangeList": ["wmA"]}`` ->
    ``<MemChangeList><Item><![CDATA[wmA]]></Item></MemChangeList>``."""
    parts = [
        f"<ToUserName><![CDATA[{corp_id}]]></ToUserName>",
        "<FromUserName><![CDATA[sys]]></FromUserName>",
        f"<CreateTime>{create_time or int(time.time())}</CreateTime>",
        "<MsgType><![CDATA[event]]></MsgType>",
        f"<Event><![CDATA[{event}]]></Event>",
    ]
    if change_type:
        parts.append(f"<ChangeType><![CDATA[{change_type}]]></ChangeType>")
    parts.extend(f"<{name}><![CDATA[{value}]]></{name}>" for name, value in fields.items())
    for name, values in (items or {}).items():
        parts.append(f"<{name}>" + "".join(f"<Item><![CDATA[{v}]]></Item>" for v in values) + f"</{name}>")
    return "<xml>" + "".join(parts) + "</xml>"


def encrypted_callback(crypt: MsgCrypt, message: str, *, agent_id: str = "1000002") -> tuple[dict[str, str], bytes]:
    """The query string and body of WeCom's POST for ``message``."""
    nonce = str(secrets.randbelow(10**10))
    encrypted, signature, timestamp = crypt.seal(message, nonce=nonce)
    body = (
        f"<xml><ToUserName><![CDATA[{crypt.receive_id}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt>"
        f"<AgentID><![CDATA[{agent_id}]]></AgentID></xml>"
    )
    return {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce}, body.encode()


def verification_query(crypt: MsgCrypt, echo: str = "") -> tuple[dict[str, str], str]:
    """WeCom's GET to verify a callback URL, and the plaintext the URL must answer."""
    echo = echo or str(secrets.randbelow(10**18))
    nonce = str(secrets.randbelow(10**10))
    encrypted, signature, timestamp = crypt.seal(echo, nonce=nonce)
    return {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce, "echostr": encrypted}, echo


def post_callback(url: str, crypt: MsgCrypt, message: str, *, timeout: float = 5.0) -> tuple[int, bytes]:
    """Encrypt, sign and POST ``message`` to a live URL (for servers and benchmarks)."""
    query, body = encrypted_callback(crypt, message)
    request = urllib.request.Request(
        f"{url}?{urlencode(query)}", data=body, method="POST", headers={"Content-Type": "text/xml"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except HTTPError as exc:
        return exc.code, exc.read()


# ==== reconciliation additions (issue #5 sync; additive, owned by the sync helper) ============
# Customer groups (groupchat/list + groupchat/get, with 81017 past 1,000 visible members),
# add_corp_tag, and bulk seeding for the 100k-contact benchmark. ``batch/get_by_user`` is routed
# through the instance so ``BulkFakeWecom`` can answer it from an index (same answers, no
# O(contacts) scan per call).

GROUPCHAT_LIMIT = 1000  # groupchat/list: limit 1-1000
OWNER_FILTER_MAX = 100
GROUPCHAT_VISIBLE_LIMIT = 1000  # more visible members and no owner_filter -> 81017


@dataclass
class GroupMember:
    userid: str  # a member's userid or a customer's external_userid
    type: int = 2  # 1 corp member, 2 external contact
    join_time: int = 1_700_000_000
    join_scene: int = 1  # 1 invited, 2 link, 3 QR code
    invitor: str = ""
    unionid: str = ""
    state: str = ""
    group_nickname: str = ""
    name: str = ""

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "userid": self.userid,
            "type": self.type,
            "join_time": self.join_time,
            "join_scene": self.join_scene,
            "group_nickname": self.group_nickname,
            "name": self.name,
        }
        if self.invitor:
            out["invitor"] = {"userid": self.invitor}
        if self.unionid:
            out["unionid"] = self.unionid
        if self.state:
            out["state"] = self.state
        return out


@dataclass
class GroupChat:
    chat_id: str
    name: str
    owner: str
    members: list[GroupMember] = field(default_factory=list)
    create_time: int = 1_700_000_000
    notice: str = ""
    status: int = 0  # 0 normal, 1 owner left (to inherit), 2 inheriting, 3 inherited
    admins: list[str] = field(default_factory=list)
    member_version: str = "1"


def _groupchat_list(fake: FakeWecom, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    try:
        limit = int(body.get("limit") or 0)
    except (TypeError, ValueError):
        limit = 0
    if not 1 <= limit <= GROUPCHAT_LIMIT:
        return error(40058, "field limit invalid")
    owners = (body.get("owner_filter") or {}).get("userid_list")
    if owners is not None and len(owners) > OWNER_FILTER_MAX:
        return error(40058, "field owner_filter.userid_list exceed max length")
    if owners is None and fake.visible_members() > GROUPCHAT_VISIBLE_LIMIT:
        return error(81017, "owner_filter required when more than 1000 members are visible")
    status = int(body.get("status_filter") or 0)
    chats = [
        g
        for g in sorted(fake.group_chats.values(), key=lambda g: g.chat_id)
        if (owners is None or g.owner in owners) and (status == 0 or g.status == status)
    ]
    start = int(body.get("cursor") or 0)
    answer = ok(group_chat_list=[{"chat_id": g.chat_id, "status": g.status} for g in chats[start : start + limit]])
    answer["next_cursor"] = str(start + limit) if start + limit < len(chats) else ""
    return answer


def _groupchat_get(fake: FakeWecom, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    chat = fake.group_chats.get(str(body.get("chat_id", "")))
    if chat is None:
        return error(40050, "chatid not found")
    members = [m.as_json() for m in chat.members]
    if not body.get("need_name"):
        for member in members:
            member.pop("name", None)
    return ok(
        group_chat={
            "chat_id": chat.chat_id,
            "name": chat.name,
            "owner": chat.owner,
            "create_time": chat.create_time,
            "notice": chat.notice,
            "member_list": members,
            "admin_list": [{"userid": u} for u in chat.admins],
            "member_version": chat.member_version,
        }
    )


def _add_corp_tag(fake: FakeWecom, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    tags = body.get("tag") or []
    if not tags or not all(isinstance(t, dict) and str(t.get("name", "")).strip() for t in tags):
        return error(40058, "field tag invalid")
    with fake.lock:
        group_id = body.get("group_id")
        if group_id:
            group = next((g for g in fake.tag_groups if g["group_id"] == group_id), None)
            if group is None:
                return error(40068, "invalid tag group id")
        else:
            name = str(body.get("group_name", "")).strip()
            if not name:
                return error(40058, "group_id or group_name required")
            group = next((g for g in fake.tag_groups if g["group_name"] == name), None)
            if group is None:
                group = {
                    "group_id": f"etGROUPNEW{next(fake._ids):06d}",
                    "group_name": name,
                    "create_time": int(fake.now()),
                    "order": int(body.get("order") or 0),
                    "deleted": False,
                    "tag": [],
                }
                fake.tag_groups.append(group)
        names = {t["name"] for t in group["tag"]}
        created = []
        for tag in tags:
            if tag["name"] in names:
                return error(40071, "tag name already exists")
            new = {
                "id": f"etTAGNEW{next(fake._ids):06d}",
                "name": tag["name"],
                "create_time": int(fake.now()),
                "order": int(tag.get("order") or 0),
                "deleted": False,
            }
            group["tag"].append(new)
            created.append(new)
            names.add(tag["name"])
        fake.added_corp_tags.extend(created)
    return ok(tag_group={**{k: v for k, v in group.items() if k != "tag"}, "tag": created})


def _batch_get_by_user_dispatch(fake: FakeWecom, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    # Looked up on the instance's class so BulkFakeWecom's indexed version answers for it.
    return type(fake)._batch_get_by_user(fake, query, body)


def _fake_visible_members(fake: FakeWecom) -> int:
    visible = getattr(fake, "visible_member_count", None)
    return len(fake.follow_users) if visible is None else int(visible)


def _fake_group_chats(fake: FakeWecom) -> dict[str, GroupChat]:
    chats = fake.__dict__.get("_group_chats")
    if chats is None:
        chats = fake.__dict__["_group_chats"] = {}
    return chats


def _fake_added_corp_tags(fake: FakeWecom) -> list[dict[str, Any]]:
    return fake.__dict__.setdefault("_added_corp_tags", [])


def _fake_add_group_chat(fake: FakeWecom, chat: GroupChat) -> GroupChat:
    with fake.lock:
        fake.group_chats[chat.chat_id] = chat
    return chat


# Properties and methods on FakeWecom itself, so every fake (not only BulkFakeWecom) has groups.
FakeWecom.group_chats = property(_fake_group_chats)  # type: ignore[attr-defined]
FakeWecom.added_corp_tags = property(_fake_added_corp_tags)  # type: ignore[attr-defined]
FakeWecom.visible_members = _fake_visible_members  # type: ignore[attr-defined]
FakeWecom.add_group_chat = _fake_add_group_chat  # type: ignore[attr-defined]
ROUTES[("POST", "externalcontact/batch/get_by_user")] = _batch_get_by_user_dispatch
ROUTES[("POST", "externalcontact/groupchat/list")] = _groupchat_list
ROUTES[("POST", "externalcontact/groupchat/get")] = _groupchat_get
ROUTES[("POST", "externalcontact/add_corp_tag")] = _add_corp_tag


class BulkFakeWecom(FakeWecom):
    """A fake for 100k-contact benchmarks: ``seed_bulk`` fills it in one go and
    ``batch/get_by_user`` pages out of a per-member index built once (call ``reindex`` after
    changing contacts by hand)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._by_user: dict[str, list[tuple[Contact, Follow]]] | None = None

    def __enter__(self) -> BulkFakeWecom:
        # Keep-alive, as WeCom's servers do: a new TCP connection per call would dominate (and
        # without Nagle, or every answer's body waits for the delayed ACK of its headers).
        attrs = {"fake": self, "protocol_version": "HTTP/1.1", "disable_nagle_algorithm": True}
        handler = type("Handler", (_Handler,), attrs)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def seed_bulk(self, contacts: int, staff: int, *, tag_ids: list[str] | None = None, prefix: str = "wmB") -> None:
        """``contacts`` customers spread round-robin over ``staff`` members (``staff0000``…);
        every 10th also follows the next member; every 3rd carries one of ``tag_ids``; every
        5th has a unionid."""
        users = [f"staff{n:04d}" for n in range(staff)]
        tag_ids = tag_ids or []
        with self.lock:
            for n in range(contacts):
                follows = [Follow(users[n % staff], createtime=1_700_000_000 + n, state=f"c{n % 7}", add_way=1)]
                if n % 10 == 0 and staff > 1:
                    follows.append(Follow(users[(n + 1) % staff], createtime=1_700_000_000 + n, add_way=3))
                if tag_ids and n % 3 == 0:
                    follows[0].tag_ids = [tag_ids[n % len(tag_ids)]]
                ext = f"{prefix}{n:08d}"
                self.contacts[ext] = Contact(ext, f"客户{n}", follows, unionid=f"uB{n:08d}" if n % 5 == 0 else "")
            for user in users:
                if user not in self.follow_users:
                    self.follow_users.append(user)
        self.reindex()

    def reindex(self) -> None:
        index: dict[str, list[tuple[Contact, Follow]]] = {}
        for contact in sorted(self.contacts.values(), key=lambda c: c.external_userid):
            for follow in contact.follows:
                index.setdefault(follow.userid, []).append((contact, follow))
        self._by_user = index

    def _batch_get_by_user(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if self._by_user is None:
            return FakeWecom._batch_get_by_user(self, query, body)
        users = body.get("userid_list")
        if not isinstance(users, list) or not users:
            return error(40058, "field userid_list invalid")
        if len(users) > 100:
            return error(40058, "field userid_list exceed max length")
        limit = int(body.get("limit") or 50)
        if not 1 <= limit <= 100:
            return error(40058, "field limit invalid")
        start = int(body.get("cursor") or 0)
        # Walk the members' lists to the cursor without building the whole result.
        rows: list[dict[str, Any]] = []
        skipped = 0
        total = sum(len(self._by_user.get(u, [])) for u in users)
        for user in users:
            entries = self._by_user.get(user, [])
            if skipped + len(entries) <= start:
                skipped += len(entries)
                continue
            for contact, follow in entries[max(0, start - skipped) :]:
                info = self._follow_json(follow, ids_only=True)
                rows.append({"external_contact": contact.as_json(), "follow_info": info})
                if len(rows) == limit:
                    break
            skipped = start
            if len(rows) == limit:
                break
        answer = ok(external_contact_list=rows)
        answer["next_cursor"] = str(start + limit) if start + limit < total else ""
        return answer
