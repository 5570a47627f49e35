"""WXBizMsgCrypt: the signature and AES scheme of WeCom and Official Account callbacks.

- signature: ``sha1("".join(sorted([token, timestamp, nonce, encrypt])))``, hex;
- key: ``b64decode(EncodingAESKey + "=")`` (32 bytes), AES-256-CBC with IV = key[:16];
- plaintext: ``random16 ‖ uint32_be(len(msg)) ‖ msg ‖ receiveid``, PKCS#7-padded to a
  **32-byte** block (not AES's 16), then base64;
- the receiveid must be the expected corp id (WeCom) or app id (Official Account).

Checked bit for bit against the vectors in WeCom's and WeChat's published samples
(``tests/test_wecom_crypto.py``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import struct
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9]{1,32}$")
AES_KEY_PATTERN = re.compile(r"^[A-Za-z0-9]{43}$")
REPLY_FORMAT = (
    "<xml>\n<Encrypt><![CDATA[{encrypt}]]></Encrypt>\n<MsgSignature><![CDATA[{signature}]]></MsgSignature>\n"
    "<TimeStamp>{timestamp}</TimeStamp>\n<Nonce><![CDATA[{nonce}]]></Nonce>\n</xml>"
)


class CallbackRejected(Exception):
    """A callback that must not be processed; ``status`` is the HTTP answer."""

    status = 403


class SignatureMismatch(CallbackRejected):
    """The signature does not cover what was sent: forged, tampered, or the wrong token."""


class UndecryptableMessage(CallbackRejected):
    """Signed correctly but not decryptable with our key (bad base64, padding or length)."""

    status = 400


class ReceiverMismatch(CallbackRejected):
    """Decrypted fine, but addressed to another corp / app."""


def signature(token: str, timestamp: str, nonce: str, *parts: str) -> str:
    """The SHA-1 signature over the sorted strings (``parts`` is the Encrypt / echostr, or
    nothing for the Official Account's plaintext ``signature``)."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, *parts])).encode()).hexdigest()


def check_signature(expected: str, token: str, timestamp: str, nonce: str, *parts: str) -> None:
    if not hmac.compare_digest(signature(token, timestamp, nonce, *parts), (expected or "").lower()):
        raise SignatureMismatch("signature mismatch")


def valid_token(token: str) -> bool:
    return bool(TOKEN_PATTERN.match(token or ""))


def valid_aes_key(key: str) -> bool:
    return bool(AES_KEY_PATTERN.match(key or ""))


class MsgCrypt:
    """One callback configuration: token, EncodingAESKey and the receiveid it must carry."""

    def __init__(
        self, token: str, encoding_aes_key: str, receive_id: str, *, random: Callable[[int], bytes] = os.urandom
    ) -> None:
        if not valid_aes_key(encoding_aes_key):
            raise ValueError("EncodingAESKey must be 43 letters and digits")
        self.token = token
        self.receive_id = receive_id
        self.key = base64.b64decode(encoding_aes_key + "=")
        self._random = random

    # ---- receiving -----------------------------------------------------------------------

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """The GET verification: check the signature over echostr and return its plaintext."""
        check_signature(msg_signature, self.token, timestamp, nonce, echostr)
        return self.decrypt(echostr).decode("utf-8")

    def open(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> bytes:
        """A POSTed ``Encrypt`` value: check the signature, decrypt, check the receiveid."""
        check_signature(msg_signature, self.token, timestamp, nonce, encrypt)
        return self.decrypt(encrypt)

    def decrypt(self, encrypt: str) -> bytes:
        try:
            data = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError):
            raise UndecryptableMessage("Encrypt is not base64") from None
        if not data or len(data) % 16:
            raise UndecryptableMessage("ciphertext is not a whole number of AES blocks")
        decryptor = Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16])).decryptor()
        plain = decryptor.update(data) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise UndecryptableMessage("bad padding")
        plain = plain[:-pad]
        if len(plain) < 20:
            raise UndecryptableMessage("plaintext too short")
        (length,) = struct.unpack(">I", plain[16:20])
        if 20 + length > len(plain):
            raise UndecryptableMessage("message length exceeds the plaintext")
        message, receive_id = plain[20 : 20 + length], plain[20 + length :]
        if not hmac.compare_digest(receive_id, self.receive_id.encode()):
            raise ReceiverMismatch("the message is addressed to another corp / app")
        return message

    # ---- sending (passive replies; also what the fake servers push) ----------------------

    def encrypt(self, message: bytes | str) -> str:
        body = message.encode("utf-8") if isinstance(message, str) else message
        plain = self._random(16) + struct.pack(">I", len(body)) + body + self.receive_id.encode()
        pad = BLOCK - len(plain) % BLOCK  # an aligned plaintext gets a whole block of 0x20
        plain += bytes([pad]) * pad
        encryptor = Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16])).encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()

    def seal(self, message: bytes | str, *, nonce: str, timestamp: str | None = None) -> tuple[str, str, str]:
        """Encrypt and sign: returns ``(encrypt, msg_signature, timestamp)``."""
        timestamp = timestamp or str(int(time.time()))
        encrypted = self.encrypt(message)
        return encrypted, signature(self.token, timestamp, nonce, encrypted), timestamp

    def encrypt_reply(self, message: bytes | str, *, nonce: str, timestamp: str | None = None) -> str:
        """The encrypted passive-reply XML WeCom and WeChat expect."""
        encrypted, sig, timestamp = self.seal(message, nonce=nonce, timestamp=timestamp)
        return REPLY_FORMAT.format(encrypt=encrypted, signature=sig, timestamp=timestamp, nonce=nonce)
