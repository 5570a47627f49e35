"""A typed client for the WeCom server API (``/cgi-bin/...``), branch on ``errcode`` only.

What it does for every call, in order:

1. refuse at once (``RateLimited``) while WeCom has this API blocked for this corp (45009), or
   sleep through the block when it is shorter than ``max_wait``;
2. take a token from the per-corp and per-API buckets (10,000/min and 150,000/h per API per
   corp, 20,000/min per corp by default), sleeping until one is free;
3. put the cached ``access_token`` in the query string (never the body: that is 41001);
4. send, and on the answer:
   - 40014 / 42001 (token revoked or expired): drop the token, fetch a new one, retry once;
   - -1 (busy) and 45033 (concurrent change of one resource): retry up to 3 times with a short
     back-off;
   - a network error or a non-JSON answer: retry up to 3 times, for idempotent calls only;
   - 45009: block the API and raise ``RateLimited(retry_after)`` (see ``_block``);
   - a configuration code (40001, 40013, 48002, 60011, 60020, 84074): ``ConfigError`` with the
     operator's fix in Chinese and English; anything else: ``WecomError``.

Tokens, buckets and blocks live in process-wide state keyed by corp, so every client instance
in a process shares them; tokens also go to a Django cache when one is given, so processes
share them too (WeCom frequency-limits gettoken). Every HTTP call is reported to ``recorder``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import httpx

DEFAULT_BASE_URL = "https://qyapi.weixin.qq.com"
CHINA = ZoneInfo("Asia/Shanghai")  # WeCom's "natural day" for day limits
TOKEN_INVALID = {40014, 42001}
BUSY = -1
RATE_LIMITED = 45009
CONCURRENT_CHANGE = 45033
MAX_RETRIES = 3
TOKEN_MARGIN = 300  # refetch this many seconds before WeCom says the token expires
# A 45009 within this long after the previous block ended means the longer window is hit.
ESCALATE_WITHIN = 60.0

# errcode -> (what is wrong and how to fix it, Chinese; the same in English)
CONFIG_ERRORS: dict[int, tuple[str, str]] = {
    40001: (
        "应用 Secret 不正确：请在企业微信管理后台「应用管理 → 自建应用 → Secret」重新查看并填写"
        "（同一 IP 多次填错会被封禁 1 小时）。",
        "The app secret is wrong: copy it again from 应用管理 → your self-built app → Secret "
        "(repeated wrong secrets block this server's IP for an hour).",
    ),
    40013: (
        "企业 ID 不正确：请在「我的企业 → 企业信息 → 企业ID」复制后重新填写。",
        "The corp id is wrong: copy it from 我的企业 → 企业信息 → 企业ID.",
    ),
    48002: (
        "该应用无权调用客户联系接口：请在「客户与上下游 → 客户联系 → API → 可调用接口的应用」中加入本自建应用。",
        "The app may not call the customer-contact API: add it under 客户联系 → API → 可调用接口的应用.",
    ),
    84074: (
        "该应用没有客户联系权限：请在「客户与上下游 → 客户联系 → API → 可调用接口的应用」中加入本自建应用。",
        "The app has no customer-contact permission: add it under 客户联系 → API → 可调用接口的应用.",
    ),
    60011: (
        "成员不在应用的可见范围内：请在自建应用详情的「可见范围」中加入这些成员或其部门。",
        "The members are outside the app's visibility: add them or their departments to the app's 可见范围.",
    ),
    60020: (
        "本服务器的出口 IP 不在企业可信 IP 中：请在自建应用详情「企业可信IP」中加入它。",
        "This server's outgoing IP is not trusted: add it under the app's 企业可信IP.",
    ),
}


class WecomError(Exception):
    """WeCom answered a nonzero errcode (``errmsg`` is for humans only: never parse it)."""

    def __init__(self, errcode: int | None, errmsg: str, api: str) -> None:
        super().__init__(f"{api}: errcode {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg
        self.api = api


class ConfigError(WecomError):
    """The WeCom configuration is wrong; only the operator can fix it."""

    def __init__(self, errcode: int, errmsg: str, api: str) -> None:
        super().__init__(errcode, errmsg, api)
        self.message_zh, self.message_en = CONFIG_ERRORS[errcode]


class RateLimited(WecomError):
    """45009: WeCom blocks this API for this corp; call again after ``retry_after`` seconds."""

    def __init__(self, api: str, retry_after: float, window: str, errmsg: str = "") -> None:
        super().__init__(RATE_LIMITED, errmsg or f"blocked for the {window}", api)
        self.retry_after = retry_after
        self.window = window


class NetworkError(WecomError):
    """No usable answer: connection failure, timeout, 5xx or a body that is not JSON."""

    def __init__(self, api: str, detail: str) -> None:
        super().__init__(None, detail, api)


class TokenCache(Protocol):
    def get(self, key: str) -> Any: ...

    def set(self, key: str, value: Any, timeout: float | None = ...) -> Any: ...

    def delete(self, key: str) -> Any: ...


Recorder = Callable[[str, int | None, str, int], None]


@dataclass(frozen=True)
class Limits:
    """Frequency limits (WeCom doc 90454, 2023-08-28); configurable for corps with other quotas."""

    api_per_minute: int = 10_000
    api_per_hour: int = 150_000
    corp_per_minute: int = 20_000  # WeCom's per-IP minute limit: one deployment is usually one IP


class TokenBucket:
    """Classic token bucket; ``reserve`` returns how long the caller must wait for its token."""

    def __init__(self, capacity: int, per_seconds: float, now: float) -> None:
        self.capacity = float(capacity)
        self.rate = capacity / per_seconds
        self.tokens = float(capacity)
        self.updated = now

    def reserve(self, now: float) -> float:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        self.tokens -= 1.0  # may go negative: later callers queue behind this one
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


@dataclass
class _Block:
    level: int  # 0 minute, 1 hour, 2 day
    until: float


WINDOWS = ("minute", "hour", "day")
STRIPES = 256


class _SharedState:
    """What every client in the process shares: tokens, buckets, 45009 blocks, resource locks."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tokens: dict[str, tuple[str, float]] = {}  # key -> (token, expires at)
        self.fetch_locks: dict[str, threading.Lock] = {}
        self.buckets: dict[tuple[str, ...], TokenBucket] = {}
        self.blocks: dict[tuple[str, str], _Block] = {}
        # Striped locks: bounded memory however many customers are serialised.
        self.stripes = [threading.Lock() for _ in range(STRIPES)]

    def fetch_lock(self, key: str) -> threading.Lock:
        with self.lock:
            return self.fetch_locks.setdefault(key, threading.Lock())


_shared = _SharedState()


def reset_shared_state() -> None:
    """Forget cached tokens, buckets and blocks (tests; a changed secret is keyed anew anyway)."""
    global _shared
    _shared = _SharedState()


def token_key(corp_id: str, secret: str) -> str:
    # The secret is part of the key (a new secret is a new token) but never stored in clear.
    return "wecom-token:" + hashlib.sha256(f"{corp_id}\x00{secret}".encode()).hexdigest()[:40]


def api_name(path: str) -> str:
    """``externalcontact/get`` and ``/cgi-bin/externalcontact/get`` name the same API."""
    path = path.split("?", 1)[0].strip("/")
    return path[len("cgi-bin/") :] if path.startswith("cgi-bin/") else path


def next_local_midnight(now: float) -> float:
    local = dt.datetime.fromtimestamp(now, CHINA)
    midnight = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), CHINA)
    return midnight.timestamp()


class WecomClient:
    def __init__(
        self,
        corp_id: str,
        secret: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        cache: TokenCache | None = None,
        limits: Limits | None = None,
        recorder: Recorder | None = None,
        max_wait: float = 0.0,
        timeout: float = 10.0,
        backoff: float = 0.2,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.corp_id = corp_id
        self._secret = secret
        self.cache = cache
        self.limits = limits or Limits()
        self.recorder = recorder
        self.max_wait = max_wait
        self.backoff = backoff
        self.clock = clock
        self.sleep = sleep
        self._key = token_key(corp_id, secret)
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> WecomClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- public calls --------------------------------------------------------------------

    def get(self, path: str, **query: Any) -> dict[str, Any]:
        return self._call("GET", api_name(path), query, None, idempotent=True)

    def post(self, path: str, json: dict[str, Any], *, idempotent: bool = False) -> dict[str, Any]:
        """``idempotent=True`` for POSTs that only read (``batch/get_by_user``, ``groupchat/get``…):
        those are retried after a network error too."""
        return self._call("POST", api_name(path), {}, json, idempotent=idempotent)

    def upload(self, path: str, *, files: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
        """A multipart POST (``media/upload``, ``media/upload_attachment``…) through the same
        path as every other call: block check, rate buckets, token refresh, -1 retries,
        45009 back-off and the recorder. ``files`` as httpx takes them, with ``bytes``
        contents (a retry sends them again). Retried after a network error too: a repeated
        upload only leaves an unused temporary media, which WeCom drops after three days."""
        return self._call("POST", api_name(path), dict(params or {}), None, idempotent=True, files=files)

    @contextmanager
    def serialized(self, resource: str) -> Iterator[None]:
        """Hold while changing one resource WeCom refuses to change concurrently (45033), e.g.
        ``mark_tag`` on one external_userid: ``with client.serialized(external_userid): ...``."""
        digest = hashlib.blake2b(f"{self.corp_id}\x00{resource}".encode(), digest_size=4).digest()
        lock = _shared.stripes[int.from_bytes(digest, "big") % STRIPES]
        with lock:
            yield

    def token(self, *, refresh: bool = False) -> str:
        """The cached access token, fetched once per (corp, secret) however many callers ask."""
        if not refresh:
            cached = self._cached_token()
            if cached:
                return cached
        with _shared.fetch_lock(self._key):
            cached = None if refresh else self._cached_token()
            if cached:
                return cached
            token, expires_in = self._fetch_token()
            expires_at = self.clock() + max(expires_in - TOKEN_MARGIN, 60)
            _shared.tokens[self._key] = (token, expires_at)
            if self.cache is not None:
                self.cache.set(self._key, (token, expires_at), max(expires_in - TOKEN_MARGIN, 60))
            return token

    # ---- internals -----------------------------------------------------------------------

    def _cached_token(self) -> str | None:
        now = self.clock()
        entry = _shared.tokens.get(self._key)
        if entry is None and self.cache is not None:
            entry = self.cache.get(self._key)
            if entry:
                _shared.tokens[self._key] = entry = tuple(entry)  # type: ignore[assignment]
        if entry and entry[1] > now:
            return entry[0]
        return None

    def _drop_token(self, token: str) -> None:
        # Only the token that failed: another thread may already hold a fresh one.
        entry = _shared.tokens.get(self._key)
        if entry and entry[0] == token:
            _shared.tokens.pop(self._key, None)
            if self.cache is not None:
                self.cache.delete(self._key)

    def _fetch_token(self) -> tuple[str, int]:
        query = {"corpid": self.corp_id, "corpsecret": self._secret}
        for attempt in range(MAX_RETRIES + 1):
            data = self._send("GET", "gettoken", query, None)
            errcode = int(data.get("errcode") or 0)
            if errcode == 0:
                return str(data["access_token"]), int(data.get("expires_in") or 7200)
            if errcode == BUSY and attempt < MAX_RETRIES:
                self.sleep(self.backoff * (attempt + 1))
                continue
            raise self._error(errcode, str(data.get("errmsg", "")), "gettoken")
        raise AssertionError("unreachable")

    def _call(
        self,
        method: str,
        api: str,
        query: dict[str, Any],
        body: dict[str, Any] | None,
        *,
        idempotent: bool,
        files: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        refreshed = False
        retries = 0
        while True:
            self._wait_out_block(api)
            self._throttle(api)
            token = self.token()
            try:
                data = self._send(method, api, {**query, "access_token": token}, body, files)
            except NetworkError:
                if not idempotent or retries >= MAX_RETRIES:
                    raise
                retries += 1
                self.sleep(self.backoff * retries)
                continue
            errcode = int(data.get("errcode") or 0)
            if errcode == 0:
                return data
            if errcode in TOKEN_INVALID and not refreshed:
                refreshed = True
                self._drop_token(token)
                continue
            if errcode in (BUSY, CONCURRENT_CHANGE) and retries < MAX_RETRIES:
                retries += 1
                self.sleep(self.backoff * retries)
                continue
            if errcode == RATE_LIMITED:
                blocked = self._block(api, str(data.get("errmsg", "")))
                if blocked.retry_after <= self.max_wait:
                    self.sleep(blocked.retry_after)
                    continue
                raise blocked
            raise self._error(errcode, str(data.get("errmsg", "")), api)

    def _error(self, errcode: int, errmsg: str, api: str) -> WecomError:
        if errcode in CONFIG_ERRORS:
            return ConfigError(errcode, errmsg, api)
        return WecomError(errcode, errmsg, api)

    def _block(self, api: str, errmsg: str) -> RateLimited:
        """Record a 45009 and say how long to stay away.

        WeCom does not say (in a field) which window was exceeded: a minute limit blocks 60 s,
        an hour limit 60 min, a day limit until the natural day ends. So start with the
        minute, and escalate one window whenever another 45009 arrives within a minute of the
        previous block ending (the block outlived the window we assumed). A 45009 while a block
        is still running (a call that was already in flight) does not escalate.
        """
        now = self.clock()
        key = (self.corp_id, api)
        with _shared.lock:
            previous = _shared.blocks.get(key)
            if previous and now < previous.until:
                block = previous
            else:
                level = 0
                if previous and now - previous.until <= ESCALATE_WITHIN:
                    level = min(previous.level + 1, 2)
                until = now + 60 if level == 0 else now + 3600 if level == 1 else next_local_midnight(now)
                block = _shared.blocks[key] = _Block(level, until)
        return RateLimited(api, block.until - now, WINDOWS[block.level], errmsg)

    def _wait_out_block(self, api: str) -> None:
        block = _shared.blocks.get((self.corp_id, api))
        if block is None:
            return
        remaining = block.until - self.clock()
        if remaining <= 0:
            return
        if remaining > self.max_wait:
            raise RateLimited(api, remaining, WINDOWS[block.level])
        self.sleep(remaining)

    def _throttle(self, api: str) -> None:
        now = self.clock()
        limits = self.limits
        specs = (
            (("corp", self.corp_id), limits.corp_per_minute, 60.0),
            (("api-minute", self.corp_id, api), limits.api_per_minute, 60.0),
            (("api-hour", self.corp_id, api), limits.api_per_hour, 3600.0),
        )
        wait = 0.0
        with _shared.lock:
            for key, capacity, per in specs:
                bucket = _shared.buckets.get(key)
                if bucket is None:
                    bucket = _shared.buckets[key] = TokenBucket(capacity, per, now)
                wait = max(wait, bucket.reserve(now))
        if wait > 0:
            self.sleep(wait)

    def _send(
        self,
        method: str,
        api: str,
        query: dict[str, Any],
        body: dict[str, Any] | None,
        files: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        started = time.perf_counter()
        errcode: int | None = None
        errmsg = ""
        try:
            response = self._http.request(method, f"/cgi-bin/{api}", params=query, json=body, files=files)
            if response.status_code >= 500:
                errmsg = f"HTTP {response.status_code}"
                raise NetworkError(api, errmsg)
            try:
                data = response.json()
            except ValueError:
                errmsg = f"HTTP {response.status_code}, not JSON"
                raise NetworkError(api, errmsg) from None
            if not isinstance(data, dict):
                errmsg = "answer is not a JSON object"
                raise NetworkError(api, errmsg)
            errcode = int(data.get("errcode") or 0)
            errmsg = str(data.get("errmsg", ""))
            return data
        except httpx.HTTPError as exc:
            errmsg = f"{type(exc).__name__}: {exc}"
            raise NetworkError(api, errmsg) from None
        finally:
            if self.recorder is not None:
                self.recorder(api, errcode, errmsg[:200], int((time.perf_counter() - started) * 1000))
