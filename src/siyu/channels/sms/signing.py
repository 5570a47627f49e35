"""The two request signatures: Aliyun RPC V1 (HMAC-SHA1) and Tencent Cloud TC3-HMAC-SHA256.

Pure functions of their inputs (no clock, no randomness), so the client, the fake servers
in ``tests/fakes`` and the published test vectors all exercise the same code path.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import quote

# ---- Aliyun RPC signature V1 ---------------------------------------------------------------


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as Aliyun POP wants it: only ``A-Za-z0-9-_.~`` stay, space is ``%20``."""
    return quote(value, safe="-_.~")


def aliyun_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """``METHOD&%2F&pe(k1=v1&k2=v2...)`` over every parameter but ``Signature``, sorted by name."""
    canonical = "&".join(
        f"{percent_encode(k)}={percent_encode(str(params[k]))}" for k in sorted(params) if k != "Signature"
    )
    return f"{method.upper()}&%2F&{percent_encode(canonical)}"


def aliyun_signature(method: str, params: Mapping[str, str], access_key_secret: str) -> str:
    """``base64(HMAC-SHA1(secret + "&", StringToSign))``."""
    digest = hmac.new(
        f"{access_key_secret}&".encode(), aliyun_string_to_sign(method, params).encode(), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode()


# ---- Tencent Cloud API 3.0: TC3-HMAC-SHA256 ---------------------------------------------------

TC3_ALGORITHM = "TC3-HMAC-SHA256"
TC3_SIGNED_HEADERS = "content-type;host"


def tc3_canonical_request(payload: bytes, *, host: str, content_type: str) -> str:
    """POST with an empty query: only ``content-type`` and ``host`` are signed (lowercased)."""
    return (
        f"POST\n/\n\ncontent-type:{content_type.strip().lower()}\nhost:{host.strip().lower()}\n\n"
        f"{TC3_SIGNED_HEADERS}\n{hashlib.sha256(payload).hexdigest()}"
    )


def tc3_date(timestamp: int) -> str:
    # The credential date is the UTC date of the timestamp: a local date breaks at midnight.
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d")


def tc3_string_to_sign(canonical_request: str, *, timestamp: int, service: str) -> str:
    scope = f"{tc3_date(timestamp)}/{service}/tc3_request"
    return f"{TC3_ALGORITHM}\n{timestamp}\n{scope}\n{hashlib.sha256(canonical_request.encode()).hexdigest()}"


def tc3_signature(secret_key: str, *, date: str, service: str, string_to_sign: str) -> str:
    """``hex(HMAC(HMAC(HMAC(HMAC("TC3" + key, date), service), "tc3_request"), StringToSign))``."""

    def step(key: bytes, message: str) -> bytes:
        return hmac.new(key, message.encode(), hashlib.sha256).digest()

    signing_key = step(step(step(f"TC3{secret_key}".encode(), date), service), "tc3_request")
    return hmac.new(signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def tc3_authorization(
    *, secret_id: str, secret_key: str, service: str, host: str, content_type: str, payload: bytes, timestamp: int
) -> str:
    """The ``Authorization`` header for one POST request."""
    string_to_sign = tc3_string_to_sign(
        tc3_canonical_request(payload, host=host, content_type=content_type), timestamp=timestamp, service=service
    )
    date = tc3_date(timestamp)
    signature = tc3_signature(secret_key, date=date, service=service, string_to_sign=string_to_sign)
    return (
        f"{TC3_ALGORITHM} Credential={secret_id}/{date}/{service}/tc3_request, "
        f"SignedHeaders={TC3_SIGNED_HEADERS}, Signature={signature}"
    )
