"""Tencent Cloud SMS (API 3.0, ``sms`` 2021-01-11): SendSms and PullSmsSendStatusByPhoneNumber,
signed with TC3-HMAC-SHA256.

Send plan: one ``SendSms`` carries one template and one ``TemplateParamSet`` for all its
numbers, so messages are grouped by (template, rendered params, mainland or not — a request
must not mix them), at most 200 numbers each, each number once. ``TemplateParamSet`` lists
``payload["params"]`` in the order of ``payload["param_order"]`` when given (the template's
{1}, {2} … order), else by sorted key — so name params "1", "2" … or give ``param_order``.

Mapping back: every number gets its own ``SerialNo`` (our provider_ref), and status callbacks
name it (``sid``), so receipts map per number without help. ``SessionContext`` (echoed by the
pull APIs) holds the message id for a single message, or ``siyu1:`` and the batch's ids as
base-36 runs (``siyu1:2n9c-2n9k,2na0``); batches are cut so it stays within 512 bytes.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from siyu.channels.base import AccountConfig, Health, Outcome, OutMessage, SendResult, SettingsError
from siyu.channels.sms import numbers, transport
from siyu.channels.sms.signing import tc3_authorization
from siyu.channels.sms.transport import Answer, check_common_settings, post
from siyu.core import clock
from siyu.core.errors import InvalidInput

API_VERSION = "2021-01-11"
SERVICE = "sms"
DEFAULT_ENDPOINT = "https://sms.tencentcloudapi.com"
DEFAULT_REGION = "ap-guangzhou"
CONTENT_TYPE = "application/json; charset=utf-8"
BATCH_LIMIT = 200
SESSION_LIMIT = 500  # bytes; the documented cap is 512
SESSION_PREFIX = "siyu1:"

# Error codes [D cloud.tencent.com/document/api/382/55981 and 382/59177].
ACCOUNT_PREFIXES = ("AuthFailure.", "UnauthorizedOperation.")
ACCOUNT_CODES = frozenset(
    {
        "FailedOperation.SignatureIncorrectOrUnapproved",
        "FailedOperation.TemplateIncorrectOrUnapproved",
        "FailedOperation.TemplateUnapprovedOrNotExist",
        "FailedOperation.InsufficientBalanceInSmsPackage",
        "FailedOperation.MissingSignature",
        "FailedOperation.MissingSignatureToModify",
        "InvalidParameterValue.SdkAppIdNotExist",
        "UnsupportedOperation.ChineseMainlandTemplateToGlobalPhone",
        "UnsupportedOperation.GlobalTemplateToChineseMainlandPhone",
    }
)
BLOCKED_CODES = frozenset({"FailedOperation.PhoneNumberInBlacklist"})
# How long a per-number or per-app limit lasts.
LIMIT_WAITS: dict[str, float | str] = {
    "LimitExceeded.PhoneNumberThirtySecondLimit": 30.0,
    "LimitExceeded.PhoneNumberOneHourLimit": 3600.0,
    "LimitExceeded.PhoneNumberDailyLimit": "day",
    "LimitExceeded.PhoneNumberSameContentDailyLimit": "day",
    "LimitExceeded.AppDailyLimit": "day",
    "LimitExceeded.AppGlobalDailyLimit": "day",
    "LimitExceeded.AppMainlandChinaDailyLimit": "day",
    "LimitExceeded.DailyLimit": "day",
}


def classify(answer: Answer, now: dt.datetime) -> tuple[Outcome, float | None]:
    """The outcome of an error code (top-level ``Response.Error`` or one ``SendStatusSet`` entry)."""
    code = answer.code
    if answer.failure or answer.status >= 500 or code.startswith("InternalError"):
        return Outcome.TRANSIENT, None
    if code.startswith("RequestLimitExceeded"):
        return Outcome.TRANSIENT, 1.0
    if code.startswith("LimitExceeded."):
        wait = LIMIT_WAITS.get(code, 60.0)
        return Outcome.TRANSIENT, numbers.seconds_until_next(wait, now) if isinstance(wait, str) else wait
    if code.startswith(ACCOUNT_PREFIXES) or code in ACCOUNT_CODES:
        return Outcome.ACCOUNT, None
    if code in BLOCKED_CODES:
        return Outcome.BLOCKED, None
    if not code:
        return Outcome.ACCOUNT, None  # an answer that is not API 3.0: wrong endpoint
    # InvalidParameterValue.IncorrectPhoneNumber, ContainSensitiveWord, bad params …
    return Outcome.REJECTED, None


def session_context(ids: Sequence[int]) -> str:
    ordered = sorted(set(ids))
    if len(ordered) == 1:
        return str(ordered[0])
    runs: list[list[int]] = []
    for value in ordered:
        if runs and value == runs[-1][1] + 1:
            runs[-1][1] = value
        else:
            runs.append([value, value])
    parts = [_b36(a) if a == b else f"{_b36(a)}-{_b36(b)}" for a, b in runs]
    return SESSION_PREFIX + ",".join(parts)


def session_ids_contain(context: str, message_id: int) -> bool:
    context = (context or "").strip()
    if context.isdigit():
        return int(context) == message_id
    if not context.startswith(SESSION_PREFIX):
        return False
    try:
        for part in context[len(SESSION_PREFIX) :].split(","):
            low, _sep, high = part.partition("-")
            if int(low, 36) <= message_id <= int(high or low, 36):
                return True
    except ValueError:
        return False
    return False


def _b36(value: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        value, rest = divmod(value, 36)
        out = digits[rest] + out
        if not value:
            return out


class TencentSmsChannel:
    provider: ClassVar[str] = "tencent_sms"
    label: ClassVar[str] = "腾讯云短信"
    media: ClassVar[tuple[str, ...]] = ("sms",)
    setting_fields: ClassVar[tuple[str, ...]] = ("endpoint", "region", "sdk_app_id", "sign_name")
    secret_fields: ClassVar[tuple[str, ...]] = ("secret_id", "secret_key")
    batch_size: ClassVar[int] = 1000

    def __init__(self, *, timeout: float = 5.0) -> None:
        self.timeout = timeout

    def validate(self, settings: dict[str, Any], secrets: dict[str, Any]) -> None:
        for name in self.secret_fields:
            value = secrets.get(name)
            if not isinstance(value, str) or not value.strip() or len(value) > 128:
                raise SettingsError(f"请填写 {name} / {name} is required", field=f"secrets.{name}")
        app_id = settings.get("sdk_app_id")
        if not isinstance(app_id, str) or not re.fullmatch(r"\d{6,20}", app_id.strip()):
            raise SettingsError(
                "请填写短信应用 SdkAppId（数字，如 1400006666）/ sdk_app_id like 1400006666",
                field="settings.sdk_app_id",
            )
        check_common_settings(settings, default_region=DEFAULT_REGION)

    # ---- calls ------------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        return transport.client(self.timeout)

    def _call(self, client: httpx.Client, account: AccountConfig, action: str, body: dict[str, Any]) -> Answer:
        settings, secrets = account.settings, account.secrets
        endpoint = (settings.get("endpoint") or DEFAULT_ENDPOINT).rstrip("/")
        host = urlsplit(endpoint).netloc  # what httpx sends as Host, port included
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = int(clock.now().timestamp())
        headers = {
            "Authorization": tc3_authorization(
                secret_id=str(secrets.get("secret_id", "")),
                secret_key=str(secrets.get("secret_key", "")),
                service=SERVICE,
                host=host,
                content_type=CONTENT_TYPE,
                payload=payload,
                timestamp=timestamp,
            ),
            "Content-Type": CONTENT_TYPE,
            "Host": host,
            "X-TC-Action": action,
            "X-TC-Version": API_VERSION,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Region": settings.get("region") or DEFAULT_REGION,
        }
        answer, data = post(client, endpoint + "/", content=payload, headers=headers)
        if data is None:
            return answer
        response = data.get("Response") if isinstance(data.get("Response"), dict) else {}
        error = response.get("Error") if isinstance(response.get("Error"), dict) else None
        if error is not None:
            return Answer(
                answer.status, code=str(error.get("Code", "")), message=str(error.get("Message", "")), data=response
            )
        if not response:
            return Answer(answer.status, message="no Response in answer")
        return Answer(answer.status, code="Ok", data=response)

    # ---- send -------------------------------------------------------------------------

    def send(self, account: AccountConfig, messages: Sequence[OutMessage]) -> list[SendResult]:
        results: list[SendResult] = []
        groups: dict[tuple[str, tuple[str, ...], bool], list[tuple[OutMessage, str]]] = {}
        for message in messages:
            template = message.payload.get("provider_template")
            try:
                number = numbers.e164(message.to_address)
                params = template_param_set(message.payload)
            except InvalidInput as exc:
                results.append(_failed(message, "siyu.bad_message", exc.message))
                continue
            if not isinstance(template, str) or not template:
                results.append(_failed(message, "siyu.no_template", "缺少短信模板 ID / no provider template"))
                continue
            groups.setdefault((template, tuple(params), number.startswith("+86")), []).append((message, number))
        with self._client() as client:
            for (template, params, _mainland), group in groups.items():
                for chunk in numbers.unique_chunks(group, BATCH_LIMIT, lambda item: item[1]):
                    for part in _fit_session(chunk):
                        results.extend(self._send_chunk(client, account, template, list(params), part))
        return results

    def _send_chunk(
        self,
        client: httpx.Client,
        account: AccountConfig,
        template: str,
        params: list[str],
        chunk: list[tuple[OutMessage, str]],
    ) -> list[SendResult]:
        body = {
            "PhoneNumberSet": [number for _m, number in chunk],
            "SmsSdkAppId": account.settings["sdk_app_id"],
            "SignName": account.settings["sign_name"],
            "TemplateId": template,
            "TemplateParamSet": params,
            "SessionContext": session_context([m.id for m, _n in chunk]),
        }
        answer = self._call(client, account, "SendSms", body)
        if answer.maybe_delivered:
            # Sent and the answer lost: Tencent has no lookup of accepted sends, so resending
            # could deliver twice. The operator sees "result unknown" instead.
            return [
                SendResult(
                    m.id,
                    Outcome.UNKNOWN,
                    error_code=(answer.failure or "lost_answer")[:64],
                    error_message=("请求已发出但未收到应答，可能已发送: " + answer.message)[:500],
                )
                for m, _n in chunk
            ]
        if answer.code != "Ok":
            outcome, _wait = classify(answer, clock.now())
            if len(chunk) > 1 and (outcome in (Outcome.REJECTED, Outcome.BLOCKED) or _per_number(answer.code)):
                # Refused as a whole for what may be one number's fault: nothing went, try each.
                return [r for item in chunk for r in self._send_chunk(client, account, template, params, [item])]
            return [_result(m, answer) for m, _n in chunk]
        statuses = {str(s.get("PhoneNumber")): s for s in answer.data.get("SendStatusSet") or [] if isinstance(s, dict)}
        results = []
        for message, number in chunk:
            status = statuses.get(number)
            if status is None:
                results.append(
                    SendResult(message.id, Outcome.TRANSIENT, error_code="siyu.no_status", error_message="无回执")
                )
            elif status.get("Code") == "Ok":
                results.append(SendResult(message.id, Outcome.SENT, provider_ref=str(status.get("SerialNo", ""))))
            else:
                per_number = Answer(answer.status, code=str(status.get("Code", "")), message=str(status.get("Message")))
                results.append(_result(message, per_number))
        return results

    # ---- recover ------------------------------------------------------------------------

    def recover(self, account: AccountConfig, messages: Sequence[OutMessage]) -> dict[int, SendResult | None]:
        """What ``PullSmsSendStatusByPhoneNumber`` reports for the number (last 2 days).

        That API lists delivery reports, not accepted requests: a report naming the message
        in its SessionContext proves it was sent, but no report does not prove it was not
        (reports lag, some never come). So a message is never answered with None here: it
        is either found or left out (``unknown``, not resent automatically).
        """
        found: dict[int, SendResult | None] = {}
        now = int(clock.now().timestamp())
        with self._client() as client:
            for message in messages:
                try:
                    number = numbers.e164(message.to_address)
                except InvalidInput:
                    found[message.id] = None  # it could never have been sent
                    continue
                answer = self._call(client, account, "PullSmsSendStatusByPhoneNumber", _pull_body(account, number, now))
                if answer.code != "Ok":
                    continue
                for status in answer.data.get("PullSmsSendStatusSet") or []:
                    if isinstance(status, dict) and session_ids_contain(str(status.get("SessionContext")), message.id):
                        delivered = status.get("ReportStatus") == "SUCCESS"
                        found[message.id] = SendResult(
                            message.id,
                            Outcome.DELIVERED if delivered else Outcome.REJECTED,
                            provider_ref=str(status.get("SerialNo", "")),
                            error_code="" if delivered else str(status.get("Description", ""))[:64],
                        )
                        break
        return found

    def healthcheck(self, account: AccountConfig) -> Health:
        """A signed status pull for a dummy number: proves the keys, the SdkAppId and the route."""
        with self._client() as client:
            body = _pull_body(account, "+8613800000000", int(clock.now().timestamp()))
            answer = self._call(client, account, "PullSmsSendStatusByPhoneNumber", body)
        if answer.code == "Ok":
            return Health(True, "腾讯云短信凭证有效，接口可达。")
        if answer.failure:
            return Health(False, f"无法连接腾讯云短信接口 / endpoint unreachable ({answer.detail})")
        outcome, _wait = classify(answer, clock.now())
        if outcome == Outcome.ACCOUNT:
            return Health(False, f"凭证无效或账号不可用 / bad credentials or account ({answer.detail})")
        return Health(False, f"腾讯云短信接口返回错误 / provider error ({answer.detail})")


def template_param_set(payload: dict[str, Any]) -> list[str]:
    """``params`` as the positional list Tencent wants: ``param_order`` if given, else sorted keys."""
    params = payload.get("params") or {}
    if not isinstance(params, dict):
        raise InvalidInput("params must be an object", field="params")
    order = payload.get("param_order")
    if order is None:
        # Numeric keys ("1", "2", … "10") sort as numbers, the template's {1} {2} … order.
        order = sorted(params, key=lambda k: (0, int(k), "") if str(k).isdigit() else (1, 0, str(k)))
    missing = [k for k in order if k not in params]
    if missing:
        raise InvalidInput(f"param_order names missing params: {', '.join(map(str, missing))}", field="param_order")
    return [str(params[k]) for k in order]


def _per_number(code: str) -> bool:
    return code.startswith("LimitExceeded.PhoneNumber")


def _pull_body(account: AccountConfig, number: str, now: int) -> dict[str, Any]:
    return {
        "BeginTime": now - 2 * 86400,
        "EndTime": now,
        "Offset": 0,
        "Limit": 100,
        "PhoneNumber": number,
        "SmsSdkAppId": account.settings.get("sdk_app_id", ""),
    }


def _fit_session(chunk: list[tuple[OutMessage, str]]) -> list[list[tuple[OutMessage, str]]]:
    """Cut a chunk so each part's SessionContext fits the provider's 512 bytes."""
    parts: list[list[tuple[OutMessage, str]]] = []
    current: list[tuple[OutMessage, str]] = []
    for item in sorted(chunk, key=lambda it: it[0].id):
        if current and len(session_context([m.id for m, _n in [*current, item]])) > SESSION_LIMIT:
            parts.append(current)
            current = []
        current.append(item)
    if current:
        parts.append(current)
    return parts


def _failed(message: OutMessage, code: str, text: str) -> SendResult:
    return SendResult(message.id, Outcome.REJECTED, error_code=code, error_message=text[:500])


def _result(message: OutMessage, answer: Answer) -> SendResult:
    outcome, wait = classify(answer, clock.now())
    return SendResult(
        message.id,
        outcome,
        error_code=(answer.code or answer.failure or f"http_{answer.status}")[:64],
        error_message=answer.message[:500],
        retry_after=wait,
    )
