"""A local WeChat Official Account API (``/cgi-bin/token``, ``qrcode/create``, ``user/info``)
and the pushes it makes when someone scans a parametric QR code, in plaintext or safe mode.

    with FakeOfficialAccount(app_id="wxfake", secret="s") as oa:
        ticket = oa.create_qr("store-SH01")                       # what siyu would call
        query, body = oa.scan(ticket, "oOPENID1", token="tok")     # not following -> subscribe
        query, body = oa.scan(ticket, "oOPENID1", token="tok")     # following -> SCAN

Scanning as a non-follower gives ``Event=subscribe, EventKey=qrscene_<scene>, Ticket``; as a
follower ``Event=SCAN, EventKey=<scene>``, as WeChat documents. With ``crypt`` (a MsgCrypt keyed
with the app id) the push is encrypted and signed with ``msg_signature`` (``encrypt_type=aes``).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from siyu.wecom.crypto import MsgCrypt, signature


@dataclass
class Follower:
    openid: str
    subscribe_scene: str = "ADD_SCENE_QR_CODE"
    qr_scene_str: str = ""
    unionid: str = ""
    subscribe_time: int = 0


@dataclass
class FakeOfficialAccount:
    app_id: str = "wxfakeofficial0001"
    secret: str = "fake-oa-secret"
    original_id: str = "gh_fake0000001"
    followers: dict[str, Follower] = field(default_factory=dict)
    tickets: dict[str, str] = field(default_factory=dict)  # ticket -> scene_str
    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.tokens: set[str] = set()
        self._server: ThreadingHTTPServer | None = None

    def __enter__(self) -> FakeOfficialAccount:
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

    # ---- the API -------------------------------------------------------------------------

    def create_qr(self, scene_str: str) -> str:
        """What ``qrcode/create`` with QR_STR_SCENE does; returns the ticket."""
        if not 1 <= len(scene_str) <= 64:
            raise ValueError("scene_str is 1-64 characters")
        ticket = "gQ" + secrets.token_urlsafe(24)
        with self.lock:
            self.tickets[ticket] = scene_str
        return ticket

    def handle(self, method: str, api: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if api == "token":
            if query.get("appid") != self.app_id:
                return {"errcode": 40013, "errmsg": "invalid appid"}
            if query.get("secret") != self.secret:
                return {"errcode": 40001, "errmsg": "invalid credential"}
            token = "oa-token-" + secrets.token_hex(12)
            self.tokens.add(token)
            return {"access_token": token, "expires_in": 7200}
        if query.get("access_token") not in self.tokens:
            return {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"}
        if api == "qrcode/create":
            scene = ((body.get("action_info") or {}).get("scene") or {}).get("scene_str", "")
            if body.get("action_name") not in ("QR_STR_SCENE", "QR_LIMIT_STR_SCENE") or not scene:
                return {"errcode": 40053, "errmsg": "invalid action info"}
            ticket = self.create_qr(scene)
            return {
                "ticket": ticket,
                "expire_seconds": body.get("expire_seconds", 60),
                "url": f"http://weixin.qq.com/q/{ticket}",
            }
        if api == "user/info":
            follower = self.followers.get(query.get("openid", ""))
            if follower is None:
                return {"subscribe": 0, "openid": query.get("openid", "")}
            return {
                "subscribe": 1,
                "openid": follower.openid,
                "subscribe_time": follower.subscribe_time,
                "unionid": follower.unionid,
                "subscribe_scene": follower.subscribe_scene,
                "qr_scene_str": follower.qr_scene_str,
            }
        return {"errcode": 404, "errmsg": f"fake: no {api}"}

    # ---- pushes --------------------------------------------------------------------------

    def scan(
        self, ticket: str, openid: str, *, token: str, crypt: MsgCrypt | None = None, create_time: int | None = None
    ) -> tuple[dict[str, str], bytes]:
        """A scan of the ticket's QR code by ``openid``: the push WeChat makes (query, body)."""
        scene = self.tickets[ticket]
        now = create_time or int(time.time())
        with self.lock:
            following = openid in self.followers
            if not following:
                self.followers[openid] = Follower(openid, qr_scene_str=scene, subscribe_time=now)
        if following:
            xml = event_xml(self.original_id, openid, "SCAN", create_time=now, EventKey=scene, Ticket=ticket)
        else:
            xml = event_xml(
                self.original_id, openid, "subscribe", create_time=now, EventKey=f"qrscene_{scene}", Ticket=ticket
            )
        return push(xml, openid=openid, token=token, crypt=crypt)

    def unsubscribe(self, openid: str, *, token: str, crypt: MsgCrypt | None = None) -> tuple[dict[str, str], bytes]:
        with self.lock:
            self.followers.pop(openid, None)
        return push(event_xml(self.original_id, openid, "unsubscribe"), openid=openid, token=token, crypt=crypt)


def event_xml(to: str, openid: str, event: str, *, create_time: int | None = None, **fields: str) -> str:
    parts = [
        f"<ToUserName><![CDATA[{to}]]></ToUserName>",
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>",
        f"<CreateTime>{create_time or int(time.time())}</CreateTime>",
        "<MsgType><![CDATA[event]]></MsgType>",
        f"<Event><![CDATA[{event}]]></Event>",
        *(f"<{name}><![CDATA[{value}]]></{name}>" for name, value in fields.items()),
    ]
    return "<xml>" + "".join(parts) + "</xml>"


def push(xml: str, *, openid: str, token: str, crypt: MsgCrypt | None = None) -> tuple[dict[str, str], bytes]:
    """Sign (and in safe mode encrypt) a push as WeChat does: the plain ``signature`` is always
    there; safe mode adds ``encrypt_type=aes`` and ``msg_signature`` over Encrypt."""
    timestamp, nonce = str(int(time.time())), str(secrets.randbelow(10**10))
    query = {"signature": signature(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce, "openid": openid}
    if crypt is None:
        return query, xml.encode()
    encrypted, msg_signature, _ = crypt.seal(xml, nonce=nonce, timestamp=timestamp)
    to = xml.split("<ToUserName><![CDATA[", 1)[1].split("]]>", 1)[0]
    body = f"<xml><ToUserName><![CDATA[{to}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    return {**query, "encrypt_type": "aes", "msg_signature": msg_signature}, body.encode()


def verification_query(token: str) -> tuple[dict[str, str], str]:
    """The GET WeChat sends to check the server URL, and the echostr it expects back."""
    timestamp, nonce, echo = str(int(time.time())), str(secrets.randbelow(10**10)), secrets.token_hex(8)
    return {
        "signature": signature(token, timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
        "echostr": echo,
    }, echo


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOfficialAccount

    def log_message(self, *args: Any) -> None:
        pass

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query))
        body: dict[str, Any] = {}
        if method == "POST":
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {}
        api = parts.path.removeprefix("/cgi-bin/")
        with self.fake.lock:
            self.fake.calls.append((api, query))
        data = json.dumps(self.fake.handle(method, api, query, body)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")
