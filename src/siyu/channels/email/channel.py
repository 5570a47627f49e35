"""Email over SMTP (stdlib ``smtplib``), with RFC 2369 / 8058 one-click unsubscribe.

One connection per batch (connect, EHLO, STARTTLS when configured, AUTH), one SMTP
transaction (MAIL / RCPT / DATA) per message. Answers map to outcomes by reply code:

====================================  ===========
2xx                                   SENT (provider_ref: our Message-ID)
4xx anywhere, 421, network / timeout  TRANSIENT
550 / 551 / 553 at RCPT               BOUNCED (the mailbox does not exist)
530 / 535 (auth), sender refused      ACCOUNT
554 and other 5xx (content, size)     REJECTED
====================================  ===========

Marketing messages carry ``List-Unsubscribe: <https://PUBLIC_URL/u/<token>>`` and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click``, the Advertising Law art. 43 "way to
refuse" for email (PROTOCOLS.md §6).
"""

from __future__ import annotations

import hmac
import smtplib
import ssl
from collections.abc import Sequence
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, ClassVar

from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.crypto import salted_hmac

from siyu.channels.base import AccountConfig, Health, Outcome, OutMessage, SendResult, SettingsError
from siyu.core import clock

SECURITY = ("starttls", "ssl", "none")
DEFAULT_PORT = 587
DEFAULT_TIMEOUT = 30.0
BOUNCE_AT_RCPT = frozenset({550, 551, 553})
AUTH_CODES = frozenset({530, 535})
# At MAIL FROM these say our sender address is not allowed: every message would fail alike.
SENDER_REFUSED = frozenset({550, 551, 553})


# ---- unsubscribe tokens ------------------------------------------------------------------------

_UNSUBSCRIBE_SALT = "siyu.unsubscribe"
_SIG_LENGTH = 20  # hex digits: 80 bits, unguessable


def unsubscribe_token(message_id: int) -> str:
    """An unguessable token naming an outbox message (HMAC keyed by SECRET_KEY)."""
    return f"{_b36(message_id)}-{_signature(_UNSUBSCRIBE_SALT, message_id, _SIG_LENGTH)}"


def parse_unsubscribe_token(token: str) -> int | None:
    """The message id a token names, or None for a garbled or forged one."""
    head, sep, sig = (token or "").partition("-")
    if not sep or len(sig) != _SIG_LENGTH or not head or len(head) > 13:
        return None
    try:
        message_id = int(head, 36)
    except ValueError:
        return None
    if message_id <= 0 or not hmac.compare_digest(sig, _signature(_UNSUBSCRIBE_SALT, message_id, _SIG_LENGTH)):
        return None
    return message_id


def unsubscribe_url(message_id: int) -> str:
    """For ``List-Unsubscribe`` and the ``unsubscribe_url`` template variable."""
    return f"{django_settings.PUBLIC_URL}/u/{unsubscribe_token(message_id)}"


def message_id_header(message_id: int, from_address: str) -> str:
    """A Message-ID derived from the outbox id: a resend after a crash carries the same one,
    so mailbox providers (and people) can recognise the duplicate."""
    domain = from_address.rpartition("@")[2] or "siyu.invalid"
    return f"<siyu.{message_id}.{_signature('siyu.message-id', message_id, 10)}@{domain}>"


def _signature(salt: str, message_id: int, length: int) -> str:
    return salted_hmac(salt, str(message_id), algorithm="sha256").hexdigest()[:length]


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


# ---- the message ---------------------------------------------------------------------------------


def build_message(account: AccountConfig, message: OutMessage) -> EmailMessage:
    """The MIME message; ValueError for an address or header that cannot be written."""
    s = account.settings
    mail = EmailMessage()
    mail["From"] = Address(display_name=s.get("from_name") or "", addr_spec=s["from_address"])
    mail["To"] = message.to_address
    if s.get("reply_to"):
        mail["Reply-To"] = s["reply_to"]
    mail["Subject"] = message.subject
    mail["Date"] = format_datetime(clock.now())
    mail["Message-ID"] = message_id_header(message.id, s["from_address"])
    if message.purpose == "marketing":
        targets = [f"<{unsubscribe_url(message.id)}>"]
        if s.get("unsubscribe_mailto"):
            targets.append(f"<mailto:{s['unsubscribe_mailto']}?subject=unsubscribe>")
        mail["List-Unsubscribe"] = ", ".join(targets)
        mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    mail.set_content(message.body)
    return mail


# ---- the channel ---------------------------------------------------------------------------------


class _AccountBroken(Exception):
    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code, self.text = code, text


class EmailChannel:
    provider: ClassVar[str] = "smtp"
    label: ClassVar[str] = "邮件（SMTP）"
    media: ClassVar[tuple[str, ...]] = ("email",)
    setting_fields: ClassVar[tuple[str, ...]] = (
        "host",
        "port",
        "security",
        "from_address",
        "from_name",
        "reply_to",
        "unsubscribe_mailto",
        "timeout",
    )
    secret_fields: ClassVar[tuple[str, ...]] = ("username", "password")
    batch_size: ClassVar[int] = 100

    def validate(self, settings: dict[str, Any], secrets: dict[str, Any]) -> None:
        host = settings.get("host")
        if not isinstance(host, str) or not host.strip() or len(host) > 253 or any(c.isspace() for c in host):
            raise SettingsError("请填写 SMTP 服务器地址 / the SMTP host is required", field="settings.host")
        port = settings.get("port", DEFAULT_PORT)
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise SettingsError("端口须为 1-65535 的整数 / port must be 1-65535", field="settings.port")
        if settings.get("security", "starttls") not in SECURITY:
            raise SettingsError(
                f"加密方式须为 {' / '.join(SECURITY)} 之一 / security must be one of {', '.join(SECURITY)}",
                field="settings.security",
            )
        _check_address(settings.get("from_address"), "settings.from_address", required=True)
        for name in ("reply_to", "unsubscribe_mailto"):
            _check_address(settings.get(name), f"settings.{name}", required=False)
        from_name = settings.get("from_name", "")
        if not isinstance(from_name, str) or len(from_name) > 100 or any(c in from_name for c in "\r\n"):
            raise SettingsError(
                "发件人名称最多 100 字、不可换行 / from_name: 100 characters", field="settings.from_name"
            )
        timeout = settings.get("timeout", DEFAULT_TIMEOUT)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0.1 <= timeout <= 120:
            raise SettingsError("超时须在 0.1-120 秒之间 / timeout in seconds", field="settings.timeout")
        username, password = secrets.get("username") or "", secrets.get("password") or ""
        if not isinstance(username, str) or not isinstance(password, str):
            raise SettingsError("用户名和密码须为文本 / text required", field="secrets.username")
        if bool(username) != bool(password):
            missing = "secrets.password" if username else "secrets.username"
            raise SettingsError("用户名和密码须同时填写 / give both username and password", field=missing)

    def send(self, account: AccountConfig, messages: Sequence[OutMessage]) -> list[SendResult]:
        """Send each message in its own SMTP transaction over one connection.

        A failure that breaks the connection (421, disconnect, timeout) leaves the rest of
        the batch TRANSIENT; a broken account (bad login, sender refused) leaves it ACCOUNT,
        untried. Neither is retried here: the dispatcher owns back-off.
        """
        results: list[SendResult] = []
        try:
            smtp = self._connect(account)
        except _AccountBroken as exc:
            return [SendResult(m.id, Outcome.ACCOUNT, error_code=exc.code, error_message=exc.text) for m in messages]
        except (smtplib.SMTPException, OSError) as exc:
            code, text = _describe(exc)
            return [SendResult(m.id, Outcome.TRANSIENT, error_code=code, error_message=text) for m in messages]
        stop: SendResult | None = None
        try:
            for message in messages:
                if stop is not None:
                    results.append(
                        SendResult(message.id, stop.outcome, error_code=stop.error_code, error_message="未尝试")
                    )
                    continue
                result, connection_lost = self._send_one(smtp, account, message)
                results.append(result)
                if connection_lost or result.outcome is Outcome.ACCOUNT:
                    stop = result
        finally:
            _quit(smtp)
        return results

    def _send_one(self, smtp: smtplib.SMTP, account: AccountConfig, message: OutMessage) -> tuple[SendResult, bool]:
        """One SMTP transaction; returns the result and whether the connection is gone."""
        mid = message.id
        try:
            mail = build_message(account, message)
        except (ValueError, TypeError, IndexError) as exc:
            return SendResult(mid, Outcome.REJECTED, error_code="address", error_message=str(exc)[:500]), False
        try:
            smtp.send_message(mail, from_addr=account.settings["from_address"], to_addrs=[message.to_address])
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()), (0, b""))
            return self._refused(mid, code, reply, at="rcpt"), code == 421
        except smtplib.SMTPSenderRefused as exc:
            return self._refused(mid, exc.smtp_code, exc.smtp_error, at="mail"), exc.smtp_code == 421
        except smtplib.SMTPResponseException as exc:  # DATA refused, or an unexpected reply
            return self._refused(mid, exc.smtp_code, exc.smtp_error, at="data"), exc.smtp_code == 421
        except smtplib.SMTPNotSupportedError as exc:  # e.g. a non-ASCII address without SMTPUTF8
            return SendResult(mid, Outcome.REJECTED, error_code="smtputf8", error_message=str(exc)[:500]), False
        except (smtplib.SMTPException, OSError) as exc:  # disconnected, timed out, reset
            code, text = _describe(exc)
            return SendResult(mid, Outcome.TRANSIENT, error_code=code, error_message=text), True
        return SendResult(mid, Outcome.SENT, provider_ref=mail["Message-ID"][:100]), False

    def _refused(self, message_id: int, code: int, reply: bytes | str, *, at: str) -> SendResult:
        text = (reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply))[:450]
        error_code = f"smtp:{code}"
        message = f"{at.upper()}: {code} {text}"
        if 400 <= code < 500:
            outcome = Outcome.TRANSIENT
        elif code in AUTH_CODES or (at == "mail" and code in SENDER_REFUSED):
            outcome = Outcome.ACCOUNT
        elif at == "rcpt" and code in BOUNCE_AT_RCPT:
            outcome = Outcome.BOUNCED
        else:
            outcome = Outcome.REJECTED
        return SendResult(message_id, outcome, error_code=error_code, error_message=message)

    def _connect(self, account: AccountConfig) -> smtplib.SMTP:
        """Connect, EHLO, STARTTLS if configured, log in. Raises _AccountBroken for settings
        or credentials that cannot work, smtplib / OS errors for anything that might pass."""
        s, secrets = account.settings, account.secrets
        host, port = s["host"], int(s.get("port", DEFAULT_PORT))
        timeout = float(s.get("timeout", DEFAULT_TIMEOUT))
        security = s.get("security", "starttls")
        smtp: smtplib.SMTP
        try:
            if security == "ssl":
                smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(host, port, timeout=timeout)
        except ssl.SSLCertVerificationError as exc:
            raise _AccountBroken("tls", f"服务器证书校验失败：{exc}"[:500]) from None
        try:
            smtp.ehlo()
            if security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise _AccountBroken("starttls", "服务器不支持 STARTTLS，请改用 ssl 或检查端口")
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if secrets.get("username"):
                smtp.login(secrets["username"], secrets["password"])
        except smtplib.SMTPAuthenticationError as exc:
            _quit(smtp)
            raise _AccountBroken(f"smtp:{exc.smtp_code}", f"登录失败 / login failed: {_text(exc.smtp_error)}") from None
        except smtplib.SMTPNotSupportedError:
            _quit(smtp)
            raise _AccountBroken("auth", "服务器不支持登录（AUTH），请检查端口与加密方式") from None
        except ssl.SSLCertVerificationError as exc:
            _quit(smtp)
            raise _AccountBroken("tls", f"服务器证书校验失败：{exc}"[:500]) from None
        except BaseException:
            _quit(smtp)
            raise
        return smtp

    def recover(self, account: AccountConfig, messages: Sequence[OutMessage]) -> dict[int, SendResult | None]:
        """SMTP has no way to ask whether a message was accepted: every id is left out, so
        those messages become ``unknown`` and are never resent automatically."""
        return {}

    def healthcheck(self, account: AccountConfig) -> Health:
        """Connect, EHLO, STARTTLS if configured, log in, QUIT."""
        try:
            smtp = self._connect(account)
        except _AccountBroken as exc:
            return Health(False, exc.text)
        except (smtplib.SMTPException, OSError) as exc:
            _, text = _describe(exc)
            return Health(False, f"无法连接 SMTP 服务器 {account.settings.get('host')}：{text}"[:500])
        _quit(smtp)
        login = "，已登录" if account.secrets.get("username") else ""
        return Health(True, f"已连接 {account.settings['host']}:{account.settings.get('port', DEFAULT_PORT)}{login}")


def _check_address(value: Any, field: str, *, required: bool) -> None:
    if not value and not required:
        return
    try:
        if not isinstance(value, str) or len(value) > 254:
            raise ValidationError("bad")
        validate_email(value)
    except ValidationError:
        raise SettingsError("请填写有效的邮箱地址 / a valid email address is required", field=field) from None


def _text(reply: bytes | str) -> str:
    return (reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply))[:400]


def _describe(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"smtp:{exc.smtp_code}", _text(exc.smtp_error)
    if isinstance(exc, TimeoutError):
        return "timeout", f"超时 / timed out: {exc}"[:500]
    return "network", f"{type(exc).__name__}: {exc}"[:500]


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()
