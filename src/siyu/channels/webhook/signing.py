"""Standard Webhooks signatures (https://www.standardwebhooks.com/), as brands verify them.

A request carries three headers:

- ``webhook-id``: the message's identity; it stays the same across retries, so a receiver
  dedupes on it;
- ``webhook-timestamp``: unix seconds of this attempt (a retry is signed afresh);
- ``webhook-signature``: ``v1,<base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))>``,
  space-separated when several keys sign at once (key rotation).

The secret is base64 of 24-64 random bytes, optionally prefixed ``whsec_`` (the form the
reference libraries print and accept); the HMAC key is the decoded bytes, not the text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

SECRET_PREFIX = "whsec_"
MIN_KEY_BYTES = 24
MAX_KEY_BYTES = 64
DEFAULT_TOLERANCE = 300


class WebhookVerificationError(Exception):
    """The request was not signed with this secret, or not recently."""


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a ``whsec_``-prefixed or bare base64 secret; ValueError when unusable."""
    text = (secret or "").strip()
    if text.startswith(SECRET_PREFIX):
        text = text[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("签名密钥必须是 base64 编码（可带 whsec_ 前缀）/ the secret must be base64") from None
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise ValueError(
            f"签名密钥解码后须为 {MIN_KEY_BYTES}-{MAX_KEY_BYTES} 字节（当前 {len(key)}）"
            f" / the secret must decode to {MIN_KEY_BYTES}-{MAX_KEY_BYTES} bytes"
        )
    return key


def new_secret() -> str:
    """A fresh secret in the form receivers' libraries expect."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one attempt."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(decode_secret(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, msg_id: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, msg_id, ts, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    tolerance: int = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> None:
    """Raise WebhookVerificationError unless ``body`` was signed with ``secret`` within ``tolerance`` seconds.

    Header names are matched case-insensitively; any one valid ``v1`` signature is enough.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id = lower.get("webhook-id", "")
    stamp = lower.get("webhook-timestamp", "")
    given = lower.get("webhook-signature", "")
    if not (msg_id and stamp and given):
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not unix seconds") from None
    current = time.time() if now is None else now
    # Both ways: a timestamp from the future is as suspicious as a replayed old one.
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError("webhook-timestamp is outside the tolerance")
    try:
        expected = sign(secret, msg_id, timestamp, body).split(",", 1)[1]
    except ValueError as exc:
        raise WebhookVerificationError(str(exc)) from None
    for candidate in given.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected.encode()):
            return
    raise WebhookVerificationError("no matching v1 signature")
