"""Aliyun SMS (Dysmsapi 2017-05-25): SendSms / SendBatchSms / QuerySendDetails, RPC signature V1.

Send plan: messages are grouped by template; a group of one goes out as ``SendSms`` with
``OutId = <message id>`` (echoed in receipts and in ``QuerySendDetails``), larger groups as
``SendBatchSms`` of at most 100 numbers (each number once). A batch has one ``BizId`` and no
per-number OutId, so the BizId is every member's provider_ref and receipts match on BizId +
phone. When a batch is refused for a reason that concerns one recipient (a bad number, a
per-number flow limit, a variable the provider refuses) nothing in it was sent, so its
messages are retried one by one to find the culprit.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from typing import Any, ClassVar

import httpx

from siyu.channels.base import AccountConfig, Health, Outcome, OutMessage, SendResult, SettingsError
from siyu.channels.sms import numbers, transport
from siyu.channels.sms.signing import aliyun_signature, percent_encode
from siyu.channels.sms.transport import Answer, check_common_settings, post
from siyu.core import clock
from siyu.core.errors import InvalidInput

API_VERSION = "2017-05-25"
DEFAULT_ENDPOINT = "https://dysmsapi.aliyuncs.com"
DEFAULT_REGION = "cn-hangzhou"
BATCH_LIMIT = 100
QUERY_PAGE_SIZE = 50
QUERY_MAX_PAGES = 10

# Error codes [D help.aliyun.com 101346 and the POP common errors].
ACCOUNT_CODES = frozenset(
    {
        "InvalidAccessKeyId.NotFound",
        "InvalidAccessKeyId.Inactive",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "InvalidTimeStamp.Expired",  # our clock is off: every call fails until someone fixes it
        "Forbidden.RAM",
        "isp.RAM_PERMISSION_DENY",
        "isv.SMS_TEMPLATE_ILLEGAL",
        "isv.SMS_SIGNATURE_ILLEGAL",
        "isv.SMS_SIGN_ILLEGAL",
        "isv.OUT_OF_SERVICE",
        "isv.AMOUNT_NOT_ENOUGH",
        "isv.PRODUCT_UN_SUBSCRIPT",
        "isv.PRODUCT_UNSUBSCRIBE",
        "isv.ACCOUNT_NOT_EXISTS",
        "isv.ACCOUNT_ABNORMAL",
        "isv.DENY_IP_RANGE",
        "isv.SMS_SIGNATURE_SCENE_ILLEGAL",
        "isv.EXTEND_CODE_ERROR",
        "isv.DOMESTIC_NUMBER_NOT_SUPPORTED",
    }
)
TRANSIENT_CODES = frozenset(
    {"isv.BUSINESS_LIMIT_CONTROL", "isp.SYSTEM_ERROR", "isp.GATEWAY_ERROR", "SignatureNonceUsed", "ServiceUnavailable"}
)
# Console quotas: they reset at the next day / month.
QUOTA_CODES = {"isv.DAY_LIMIT_CONTROL": "day", "isv.MONTH_LIMIT_CONTROL": "month"}
# Per-recipient refusals. isv.BLACK_KEY_CONTROL_LIMIT is "模板变量中存在黑名单关键字" (a banned
# word in our variables), not a blacklisted recipient: the message fails, the customer is
# not opted out. Dysmsapi has no send-time code for a blacklisted number (that shows up in
# the receipt), so BLOCKED is never returned here.
REJECTED_CODES = frozenset(
    {
        "isv.MOBILE_NUMBER_ILLEGAL",
        "isv.BLACK_KEY_CONTROL_LIMIT",
        "isv.PARAM_LENGTH_LIMIT",
        "isv.PARAM_NOT_SUPPORT_URL",
        "isv.INVALID_JSON_PARAM",
        "isv.TEMPLATE_MISSING_PARAMETERS",
        "isv.SMS_CONTENT_ILLEGAL",
        "isv.INVALID_PARAMETERS",
    }
)
BLOCKED_CODES: frozenset[str] = frozenset()
# Batch refusals that may concern one number only: retry the members one by one.
SPLIT_CODES = REJECTED_CODES | BLOCKED_CODES | {"isv.BUSINESS_LIMIT_CONTROL"}

# "触发小时级流控Permits:5": Aliyun names the window it counted in (rolling windows).
FLOW_WINDOWS = (("分钟", 60.0), ("小时", 3600.0), ("天", 86400.0), ("日", 86400.0))


def classify(answer: Answer, now: dt.datetime) -> tuple[Outcome, float | None]:
    """The outcome of a provider answer that was not "OK", with how long to wait if transient."""
    code = answer.code
    if answer.failure:
        return Outcome.TRANSIENT, None
    if code in QUOTA_CODES:
        return Outcome.TRANSIENT, numbers.seconds_until_next(QUOTA_CODES[code], now)
    if code == "isv.BUSINESS_LIMIT_CONTROL":
        wait = next((seconds for word, seconds in FLOW_WINDOWS if word in answer.message), 60.0)
        return Outcome.TRANSIENT, wait
    if code.startswith("Throttling"):
        return Outcome.TRANSIENT, 1.0
    if code in TRANSIENT_CODES or code.startswith("isp.") or answer.status >= 500:
        return Outcome.TRANSIENT, None
    if code in ACCOUNT_CODES or code.startswith(("InvalidAccessKeyId", "Forbidden")):
        return Outcome.ACCOUNT, None
    if code in BLOCKED_CODES:
        return Outcome.BLOCKED, None
    if not code:
        # A 4xx without a POP error body: the endpoint is not Dysmsapi.
        return Outcome.ACCOUNT, None
    return Outcome.REJECTED, None


class AliyunSmsChannel:
    provider: ClassVar[str] = "aliyun_sms"
    label: ClassVar[str] = "阿里云短信"
    media: ClassVar[tuple[str, ...]] = ("sms",)
    setting_fields: ClassVar[tuple[str, ...]] = ("endpoint", "sign_name", "region")
    secret_fields: ClassVar[tuple[str, ...]] = ("access_key_id", "access_key_secret")
    batch_size: ClassVar[int] = 500

    def __init__(self, *, timeout: float = 5.0) -> None:
        # Aliyun asks for >= 1 s; SendSms is not idempotent, so a short timeout costs duplicates.
        self.timeout = timeout

    # ---- settings ---------------------------------------------------------------------

    def validate(self, settings: dict[str, Any], secrets: dict[str, Any]) -> None:
        for name in self.secret_fields:
            value = secrets.get(name)
            if not isinstance(value, str) or not value.strip() or len(value) > 128:
                raise SettingsError(f"请填写 {name} / {name} is required", field=f"secrets.{name}")
        check_common_settings(settings, default_region=DEFAULT_REGION)

    # ---- calls ------------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        return transport.client(self.timeout)

    def _call(self, client: httpx.Client, account: AccountConfig, action: str, params: dict[str, str]) -> Answer:
        """One signed RPC call (POST, form body: long batches do not fit in a URL)."""
        settings, secrets = account.settings, account.secrets
        query = {
            "AccessKeyId": str(secrets.get("access_key_id", "")),
            "Action": action,
            "Format": "JSON",
            "RegionId": settings.get("region") or DEFAULT_REGION,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "Timestamp": clock.now().astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": API_VERSION,
            **params,
        }
        query["Signature"] = aliyun_signature("POST", query, str(secrets.get("access_key_secret", "")))
        body = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in query.items()).encode()
        endpoint = (settings.get("endpoint") or DEFAULT_ENDPOINT).rstrip("/")
        answer, data = post(
            client, endpoint + "/", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        if data is None:
            return answer
        return Answer(answer.status, code=str(data.get("Code", "")), message=str(data.get("Message", "")), data=data)

    # ---- send -------------------------------------------------------------------------

    def send(self, account: AccountConfig, messages: Sequence[OutMessage]) -> list[SendResult]:
        results: list[SendResult] = []
        groups: dict[str, list[tuple[OutMessage, str]]] = {}
        for message in messages:
            template = message.payload.get("provider_template")
            params = message.payload.get("params") or {}
            try:
                number = numbers.aliyun_number(message.to_address)
            except InvalidInput:
                results.append(_failed(message, "siyu.bad_number", "手机号格式不对 / not a phone number"))
                continue
            if not isinstance(template, str) or not template or not isinstance(params, dict):
                results.append(_failed(message, "siyu.no_template", "缺少短信模板编号 / no provider template"))
                continue
            # Retries go alone, with their OutId, so the earlier attempt can be looked up first.
            key = template if int(message.payload.get("attempt") or 1) <= 1 else f"{template}\x00{message.id}"
            groups.setdefault(key, []).append((message, number))
        with self._client() as client:
            for key, group in groups.items():
                template = key.split("\x00", 1)[0]
                for chunk in numbers.unique_chunks(group, BATCH_LIMIT, lambda item: item[1]):
                    if len(chunk) == 1:
                        results.append(self._send_one(client, account, template, *chunk[0]))
                    else:
                        results.extend(self._send_batch(client, account, template, chunk))
        return results

    def _send_one(
        self, client: httpx.Client, account: AccountConfig, template: str, message: OutMessage, number: str
    ) -> SendResult:
        if int(message.payload.get("attempt") or 1) > 1:
            # A retry: the earlier attempt may have reached Aliyun after all.
            found = self._lookup(client, account, message)
            if isinstance(found, SendResult):
                return found
            if found is _UNKNOWN:
                return SendResult(
                    message.id, Outcome.TRANSIENT, error_code="recheck_failed",
                    error_message="无法核对上次发送结果，稍后再试 / could not check the earlier attempt",
                    retry_after=RECHECK_AFTER_SECONDS,
                )  # fmt: skip
        params = {
            "PhoneNumbers": number,
            "SignName": account.settings["sign_name"],
            "TemplateCode": template,
            "OutId": str(message.id),
        }
        template_params = _template_params(message)
        if template_params:
            params["TemplateParam"] = json.dumps(template_params, ensure_ascii=False, separators=(",", ":"))
        answer = self._call(client, account, "SendSms", params)
        if answer.code == "OK":
            return SendResult(message.id, Outcome.SENT, provider_ref=str(answer.data.get("BizId", "")))
        if answer.maybe_delivered:
            # The request went out and the answer was lost: ask before letting it be sent again.
            found = self._lookup(client, account, message)
            if isinstance(found, SendResult):
                return found
            if found is _UNKNOWN:  # the query failed too: resending could send twice
                return _lost(message, answer)
            # Not found yet. QuerySendDetails can lag behind SendSms, so wait a little; the retry
            # (attempt > 1) asks again by OutId before it sends.
            return SendResult(
                message.id,
                Outcome.TRANSIENT,
                error_code="timeout",
                error_message=("请求超时，稍后按 OutId 核对后再发 / timed out; checked by OutId before retrying: "
                               + answer.message)[:500],
                retry_after=RECHECK_AFTER_SECONDS,
            )  # fmt: skip
        return _result(message, answer)

    def _send_batch(
        self, client: httpx.Client, account: AccountConfig, template: str, chunk: list[tuple[OutMessage, str]]
    ) -> list[SendResult]:
        sign_name = account.settings["sign_name"]
        params = {
            "PhoneNumberJson": json.dumps([number for _m, number in chunk]),
            "SignNameJson": json.dumps([sign_name] * len(chunk), ensure_ascii=False),
            "TemplateCode": template,
            "TemplateParamJson": json.dumps(
                [_template_params(m) for m, _n in chunk], ensure_ascii=False, separators=(",", ":")
            ),
        }
        answer = self._call(client, account, "SendBatchSms", params)
        if answer.code == "OK":
            biz_id = str(answer.data.get("BizId", ""))
            return [SendResult(m.id, Outcome.SENT, provider_ref=biz_id) for m, _n in chunk]
        if answer.code in SPLIT_CODES:
            return [self._send_one(client, account, template, m, n) for m, n in chunk]
        if answer.maybe_delivered:
            # A batch has no OutId per number, so QuerySendDetails cannot attribute it later.
            return [_lost(m, answer) for m, _n in chunk]
        return [_result(m, answer) for m, _n in chunk]

    # ---- recover ------------------------------------------------------------------------

    def recover(self, account: AccountConfig, messages: Sequence[OutMessage]) -> dict[int, SendResult | None]:
        """Ask ``QuerySendDetails`` per number (today and yesterday, China time).

        A record whose OutId is the message id: it was sent. No record to this number without
        an OutId: it certainly was not (None). A record without OutId (a batch send) cannot be
        told apart from this message: left out (the dispatcher marks it unknown).
        """
        found: dict[int, SendResult | None] = {}
        with self._client() as client:
            for message in messages:
                result = self._lookup(client, account, message)
                if result is not _UNKNOWN:
                    found[message.id] = result  # type: ignore[assignment]
        return found

    def _lookup(self, client: httpx.Client, account: AccountConfig, message: OutMessage) -> SendResult | object | None:
        try:
            number = numbers.aliyun_number(message.to_address)
        except InvalidInput:
            return None  # a send would have been refused before reaching Aliyun
        today = clock.now().astimezone(numbers.CHINA).date()
        ambiguous = False
        for day in (today, today - dt.timedelta(days=1)):
            for page in range(1, QUERY_MAX_PAGES + 1):
                answer = self._call(
                    client,
                    account,
                    "QuerySendDetails",
                    {
                        "PhoneNumber": number,
                        "SendDate": day.strftime("%Y%m%d"),
                        "PageSize": str(QUERY_PAGE_SIZE),
                        "CurrentPage": str(page),
                    },
                )
                if answer.code != "OK":
                    return _UNKNOWN
                details = (answer.data.get("SmsSendDetailDTOs") or {}).get("SmsSendDetailDTO") or []
                for detail in details:
                    out_id = str(detail.get("OutId") or "")
                    if out_id == str(message.id):
                        return _detail_result(message, detail)
                    if not out_id:
                        # A batch send carries no OutId: it could be this message under any
                        # template (the dispatcher's probe may not even know the template).
                        ambiguous = True
                if page * QUERY_PAGE_SIZE >= int(answer.data.get("TotalCount") or 0) or not details:
                    break
            else:
                return _UNKNOWN  # more records than we page through
        return _UNKNOWN if ambiguous else None

    # ---- health -------------------------------------------------------------------------

    def healthcheck(self, account: AccountConfig) -> Health:
        """A signed ``QuerySendDetails`` for a dummy number: proves the key, the secret and the route."""
        params = {
            "PhoneNumber": "13800000000",
            "SendDate": clock.now().astimezone(numbers.CHINA).strftime("%Y%m%d"),
            "PageSize": "1",
            "CurrentPage": "1",
        }
        with self._client() as client:
            answer = self._call(client, account, "QuerySendDetails", params)
        if answer.code == "OK":
            return Health(True, "阿里云短信凭证有效，接口可达。")
        if answer.failure:
            return Health(False, f"无法连接阿里云短信接口 / endpoint unreachable ({answer.detail})")
        outcome, _wait = classify(answer, clock.now())
        if outcome == Outcome.ACCOUNT:
            return Health(False, f"凭证无效或账号不可用 / bad credentials or account ({answer.detail})")
        return Health(False, f"阿里云短信接口返回错误 / provider error ({answer.detail})")


_UNKNOWN = object()
# How long QuerySendDetails may take to show a send; a lost answer is rechecked after this.
RECHECK_AFTER_SECONDS = 120.0


def _template_params(message: OutMessage) -> dict[str, str]:
    # Dysmsapi refuses non-string values ({"code":123456} → isv.INVALID_JSON_PARAM).
    return {str(k): str(v) for k, v in (message.payload.get("params") or {}).items()}


def _failed(message: OutMessage, code: str, text: str) -> SendResult:
    return SendResult(message.id, Outcome.REJECTED, error_code=code, error_message=text)


def _result(message: OutMessage, answer: Answer) -> SendResult:
    outcome, wait = classify(answer, clock.now())
    return SendResult(
        message.id,
        outcome,
        error_code=(answer.code or answer.failure or f"http_{answer.status}")[:64],
        error_message=answer.message[:500],
        retry_after=wait,
    )


def _lost(message: OutMessage, answer: Answer) -> SendResult:
    return SendResult(
        message.id,
        Outcome.UNKNOWN,
        error_code=(answer.failure or "lost_answer")[:64],
        error_message=(
            "请求已发出但未收到应答，可能已发送 / the request went out and the answer was lost: " + answer.message
        )[:500],
    )


def _detail_result(message: OutMessage, detail: dict[str, Any]) -> SendResult:
    # SendStatus: 1 waiting for a receipt, 2 failed, 3 delivered. The detail has no BizId,
    # which is fine: receipts for a single send carry our OutId.
    status = int(detail.get("SendStatus") or 1)
    error_code = str(detail.get("ErrCode") or "")
    if status == 3:
        return SendResult(message.id, Outcome.DELIVERED, error_code=error_code)
    if status == 2:
        return SendResult(message.id, Outcome.REJECTED, error_code=error_code or "failed")
    return SendResult(message.id, Outcome.SENT)
