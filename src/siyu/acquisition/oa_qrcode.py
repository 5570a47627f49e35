"""Official Account permanent parametric QR codes (``POST /cgi-bin/qrcode/create``).

The wecom feature has no Official Account API client yet, so this is the one call channel
codes need: a token (``GET /cgi-bin/token?grant_type=client_credential``), then
``{"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": ...}}}`` →
``{ticket, url}``. ``url`` is what the QR encodes; the image is served by
``https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=<urlencoded ticket>``. Permanent codes
are limited to 100,000 per account and cannot be deleted, which is why siyu only makes one
per channel code.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import httpx

from siyu.wecom.client import NetworkError, WecomError

DEFAULT_BASE_URL = "https://api.weixin.qq.com"
SHOW_QRCODE = "https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket="


@dataclass(frozen=True)
class QrTicket:
    ticket: str
    url: str  # the QR's content

    @property
    def image_url(self) -> str:
        return SHOW_QRCODE + quote(self.ticket, safe="")


class OaQrClient:
    """``create_qr(scene_str)`` against one Official Account; errors raise ``WecomError`` (the
    same errcode shape), network failures ``NetworkError``."""

    def __init__(
        self,
        app_id: str,
        secret: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.app_id = app_id
        self._secret = secret
        self._token = ""
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, api: str, *, params: dict[str, str], body: dict | None = None) -> dict:
        try:
            response = self._http.request(method, f"/cgi-bin/{api}", params=params, json=body)
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise NetworkError(f"oa:{api}", f"{type(exc).__name__}: {exc}") from None
        if not isinstance(data, dict):
            raise NetworkError(f"oa:{api}", "answer is not a JSON object")
        errcode = int(data.get("errcode") or 0)
        if errcode:
            raise WecomError(errcode, str(data.get("errmsg", "")), f"oa:{api}")
        return data

    def token(self, *, refresh: bool = False) -> str:
        if refresh or not self._token:
            params = {"grant_type": "client_credential", "appid": self.app_id, "secret": self._secret}
            self._token = str(self._request("GET", "token", params=params)["access_token"])
        return self._token

    def create_qr(self, scene_str: str) -> QrTicket:
        body = {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": scene_str}}}
        try:
            data = self._request("POST", "qrcode/create", params={"access_token": self.token()}, body=body)
        except WecomError as exc:
            if exc.errcode not in (40001, 40014, 42001):
                raise
            # A token revoked early (another server fetched a new one): fetch ours again, once.
            data = self._request("POST", "qrcode/create", params={"access_token": self.token(refresh=True)}, body=body)
        return QrTicket(str(data["ticket"]), str(data.get("url", "")))
