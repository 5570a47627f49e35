"""Channel credentials at rest: Fernet (AES-128-CBC + HMAC-SHA256) from ``cryptography``."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


def _fernet() -> Fernet:
    key = settings.CREDENTIALS_KEY
    if not key:
        digest = hashlib.sha256(("siyu-credentials:" + settings.SECRET_KEY).encode()).digest()
        key = base64.urlsafe_b64encode(digest).decode()
    return Fernet(key.encode() if isinstance(key, str) else key)


def encrypt_secrets(secrets: dict[str, Any]) -> str:
    return _fernet().encrypt(json.dumps(secrets, ensure_ascii=False).encode()).decode()


def decrypt_secrets(token: str) -> dict[str, Any]:
    if not token:
        return {}
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken:
        raise ValueError("the stored credentials cannot be decrypted: was SIYU_CREDENTIALS_KEY changed?") from None


def hint(value: str) -> str:
    """What the console may show of a secret: its last four characters at most."""
    value = str(value)
    return "••••" + value[-4:] if len(value) >= 12 else "••••"
