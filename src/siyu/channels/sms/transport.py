"""One provider call over HTTP, reduced to what the channels decide on."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from siyu.channels.base import SettingsError


@dataclass(frozen=True)
class Answer:
    """A provider's answer: its error code ("" when it gave none), or a transport failure."""

    status: int  # HTTP status; 0 when no response arrived
    code: str = ""
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    # "timeout" / "network" when no answer arrived.
    failure: str = ""
    # The request may have reached the provider (read timeout, connection dropped mid-answer).
    maybe_delivered: bool = False

    @property
    def detail(self) -> str:
        if self.failure:
            return f"{self.failure}: {self.message}"[:500]
        return f"{self.code or f'HTTP {self.status}'}: {self.message}"[:500]


def post(client: httpx.Client, url: str, *, content: bytes, headers: dict[str, str]) -> tuple[Answer, Any]:
    """POST and decode JSON; never raises for network trouble. Returns (answer-so-far, json or None)."""
    try:
        response = client.post(url, content=content, headers=headers)
    except httpx.ConnectTimeout as exc:
        return Answer(0, failure="timeout", message=str(exc) or "connect timeout"), None
    except httpx.TimeoutException as exc:
        # The request was written: the provider may have accepted it before we gave up.
        return Answer(0, failure="timeout", message=str(exc) or "read timeout", maybe_delivered=True), None
    except httpx.ConnectError as exc:
        return Answer(0, failure="network", message=str(exc)), None
    except httpx.HTTPError as exc:
        return Answer(0, failure="network", message=str(exc), maybe_delivered=True), None
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return Answer(response.status_code, message=response.text[:200]), None
    return Answer(response.status_code), body


def check_endpoint(value: Any, *, field_name: str = "settings.endpoint") -> str:
    """An https base URL (http only for a local test server); returns it without a trailing slash."""
    if not isinstance(value, str) or not value.strip():
        raise SettingsError("接口地址不能为空 / endpoint is empty", field=field_name)
    parts = urlsplit(value.strip())
    local = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme not in ("https", "http") or not parts.hostname or (parts.scheme == "http" and not local):
        raise SettingsError("接口地址须为 https:// 开头的网址 / endpoint must be an https:// URL", field=field_name)
    if parts.query or parts.fragment or parts.path not in ("", "/"):
        raise SettingsError("接口地址只能包含协议和域名 / endpoint must be scheme and host only", field=field_name)
    return value.strip().rstrip("/")


def client(timeout: float) -> httpx.Client:
    """An HTTP client for one batch of provider calls (connect gives up sooner than a read)."""
    return httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)))


def check_common_settings(settings: dict[str, Any], *, default_region: str) -> None:
    """What every SMS account needs: an approved sign name, a well-formed endpoint and region."""
    sign_name = settings.get("sign_name")
    if not isinstance(sign_name, str) or not sign_name.strip() or len(sign_name) > 64:
        raise SettingsError("请填写已审核通过的短信签名 / sign_name is required", field="settings.sign_name")
    if "endpoint" in settings:
        check_endpoint(settings["endpoint"])
    region = settings.get("region", default_region)
    if not isinstance(region, str) or not re.fullmatch(r"[a-z0-9-]{2,32}", region):
        raise SettingsError(
            f"地域格式不对，例如 {default_region} / region like {default_region}", field="settings.region"
        )
