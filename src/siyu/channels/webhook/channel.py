"""Signed webhooks: a brand's own app push service or CRM receives our messages and domain
events as JSON POSTs signed the Standard Webhooks way (see ``signing``).

Two kinds of body:

- a message to a customer (purpose marketing / service)::

    {"type": "message", "message_id", "customer_id", "to", "subject", "body", "purpose", "links"}

- a domain event (purpose ``system``, queued by ``messaging.services.emit_domain_events``): the
  event JSON the outbox row already holds, ``{"type": "order.paid", "occurred_at", "data": {...}}``.

Answers: 2xx delivered; 408 / 425 / 429 / 5xx / timeouts try again (honouring ``Retry-After``);
401 / 403 / 410 and redirects mean the endpoint or its secret is wrong (stop the account);
any other 4xx refuses this one message.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import json
import re
import time
from collections.abc import Sequence
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from siyu.channels.base import AccountConfig, Health, Outcome, OutMessage, SendResult, SettingsError
from siyu.channels.webhook import signing
from siyu.messaging.services import DOMAIN_EVENTS

DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 30.0
TRANSIENT_STATUSES = frozenset({408, 425, 429})
ACCOUNT_STATUSES = frozenset({401, 403, 410})
# What a webhook-id may be as is; anything else (spaces, non-ASCII) is hashed so it fits a header.
_PLAIN_ID = re.compile(r"[A-Za-z0-9_.:@/+=-]{1,200}")


def webhook_id(idempotency_key: str) -> str:
    """The ``webhook-id`` of a message: its outbox idempotency key, stable across retries."""
    if _PLAIN_ID.fullmatch(idempotency_key):
        return idempotency_key
    return "h_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]


def request_body(message: OutMessage) -> bytes:
    if message.purpose == "system":
        # Already the event's JSON, exactly as queued: signing covers these bytes.
        return message.body.encode()
    document = {
        "type": "message",
        "message_id": message.id,
        "customer_id": message.payload.get("customer_id"),
        "to": message.to_address,
        "subject": message.subject,
        "body": message.body,
        "purpose": message.purpose,
        "links": list(message.payload.get("links") or []),
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


class WebhookChannel:
    provider: ClassVar[str] = "webhook"
    label: ClassVar[str] = "Webhook（品牌自有 App 推送 / CRM）"
    media: ClassVar[tuple[str, ...]] = ("app",)
    setting_fields: ClassVar[tuple[str, ...]] = ("url", "events", "timeout")
    secret_fields: ClassVar[tuple[str, ...]] = ("signing_secret",)
    batch_size: ClassVar[int] = 100

    def validate(self, settings: dict[str, Any], secrets: dict[str, Any]) -> None:
        url = settings.get("url")
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000:
            raise SettingsError("请填写 http(s):// 开头的接收地址 / an http(s) URL is required", field="settings.url")
        events = settings.get("events", [])
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
            raise SettingsError("events 须为事件类型列表 / events must be a list", field="settings.events")
        unknown = sorted(set(events) - set(DOMAIN_EVENTS))
        if unknown:
            raise SettingsError(
                f"未知事件类型 / unknown event types: {', '.join(unknown)}（可选：{', '.join(DOMAIN_EVENTS)}）",
                field="settings.events",
            )
        timeout = settings.get("timeout", DEFAULT_TIMEOUT)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0.1 <= timeout <= MAX_TIMEOUT:
            raise SettingsError(f"超时须在 0.1-{MAX_TIMEOUT:g} 秒之间 / timeout in seconds", field="settings.timeout")
        secret = secrets.get("signing_secret")
        if not isinstance(secret, str) or not secret:
            raise SettingsError("请填写签名密钥 / signing_secret is required", field="secrets.signing_secret")
        try:
            signing.decode_secret(secret)
        except ValueError as exc:
            raise SettingsError(str(exc), field="secrets.signing_secret") from None

    def send(self, account: AccountConfig, messages: Sequence[OutMessage]) -> list[SendResult]:
        """One signed POST per message over one keep-alive client.

        When the endpoint says the account is wrong (401 / 403 / 410 / redirect), the messages
        not yet posted get the same ACCOUNT result: nothing more is tried until an operator
        fixes the endpoint.
        """
        results: list[SendResult] = []
        secret = account.secrets["signing_secret"]
        broken: SendResult | None = None
        with self._client(account) as client:
            for message in messages:
                if broken is not None:
                    results.append(
                        SendResult(message.id, Outcome.ACCOUNT, error_code=broken.error_code, error_message="未尝试")
                    )
                    continue
                result = self._post(client, account, secret, message)
                if result.outcome is Outcome.ACCOUNT:
                    broken = result
                results.append(result)
        return results

    def _client(self, account: AccountConfig) -> httpx.Client:
        timeout = float(account.settings.get("timeout", DEFAULT_TIMEOUT))
        # trust_env=False: a proxy from the worker's environment must not silently see
        # customers' messages; redirects are not followed (a moved endpoint is a settings error).
        return httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": "siyu-webhook/1", "content-type": "application/json"},
        )

    def _post(self, client: httpx.Client, account: AccountConfig, secret: str, message: OutMessage) -> SendResult:
        msg_id = webhook_id(message.idempotency_key)
        try:
            body = request_body(message)
        except (TypeError, ValueError) as exc:
            return SendResult(message.id, Outcome.REJECTED, error_code="payload", error_message=str(exc)[:500])
        headers = signing.signed_headers(secret, msg_id, body, timestamp=int(time.time()))
        try:
            response = client.post(account.settings["url"], content=body, headers=headers)
        except httpx.TimeoutException as exc:
            # The receiver may have acted before we gave up: the retry carries the same
            # webhook-id, so it dedupes.
            return SendResult(message.id, Outcome.TRANSIENT, error_code="timeout", error_message=str(exc)[:500])
        except httpx.HTTPError as exc:
            return SendResult(message.id, Outcome.TRANSIENT, error_code="network", error_message=str(exc)[:500])
        return self._result(message.id, msg_id, response)

    def _result(self, message_id: int, msg_id: str, response: httpx.Response) -> SendResult:
        status = response.status_code
        code = f"http:{status}"
        text = response.text[:200] if response.content else ""
        if 200 <= status < 300:
            return SendResult(
                message_id, Outcome.DELIVERED, provider_ref=(response.headers.get("x-request-id") or msg_id)[:100]
            )
        if status in TRANSIENT_STATUSES or status >= 500:
            return SendResult(
                message_id,
                Outcome.TRANSIENT,
                error_code=code,
                error_message=text,
                retry_after=retry_after_seconds(response.headers.get("retry-after")),
            )
        if status in ACCOUNT_STATUSES or 300 <= status < 400:
            reason = {
                401: "接收方拒绝签名（密钥不一致？）",
                403: "接收方拒绝访问",
                410: "接收地址已停用（410 Gone）",
            }.get(status, "接收地址返回重定向，请更新地址")
            return SendResult(message_id, Outcome.ACCOUNT, error_code=code, error_message=f"{reason} {text}"[:500])
        return SendResult(message_id, Outcome.REJECTED, error_code=code, error_message=text)

    def recover(self, account: AccountConfig, messages: Sequence[OutMessage]) -> dict[int, SendResult | None]:
        """Every in-flight message is safe to post again.

        Standard Webhooks receivers must dedupe on ``webhook-id``, and ours is the outbox
        idempotency key, identical on the resend; so a message the dead worker did post is
        recognised and dropped by the receiver, and one it did not post arrives once.
        """
        return {m.id: None for m in messages}

    def healthcheck(self, account: AccountConfig) -> Health:
        """POST a signed ``siyu.ping`` (id ``ping-<unix seconds>``); receivers may ignore it with any 2xx."""
        now = int(time.time())
        body = json.dumps({"type": "siyu.ping", "timestamp": now}).encode()
        headers = signing.signed_headers(account.secrets["signing_secret"], f"ping-{now}", body, timestamp=now)
        try:
            with self._client(account) as client:
                response = client.post(account.settings["url"], content=body, headers=headers)
        except httpx.HTTPError as exc:
            return Health(False, f"无法连接接收地址：{type(exc).__name__} {exc}"[:500])
        if 200 <= response.status_code < 300:
            return Health(True, f"接收地址已应答 HTTP {response.status_code}")
        return Health(False, f"接收地址返回 HTTP {response.status_code}：{response.text[:200]}")
