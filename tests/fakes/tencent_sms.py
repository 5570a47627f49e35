"""A local Tencent Cloud SMS (API 3.0, sms 2021-01-11) that checks TC3-HMAC-SHA256 exactly as
Tencent does (including the 5-minute timestamp window), answers SendSms and
PullSmsSendStatusByPhoneNumber with the documented shapes and error codes, and takes faults.

Every accepted number is in ``fake.sends``; a delivery report (SUCCESS unless the number is
in ``fail_numbers``) is kept for the status pull.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from siyu.channels.sms.signing import tc3_canonical_request, tc3_date, tc3_signature, tc3_string_to_sign

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
MAINLAND = re.compile(r"^\+861[3-9]\d{9}$")
AUTH = re.compile(
    r"^TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[a-z]+)/tc3_request, "
    r"SignedHeaders=(?P<headers>[a-z;-]+), Signature=(?P<sig>[0-9a-f]{64})$"
)


@dataclass
class Sent:
    phone: str  # E.164
    template: str
    params: list[str]
    sign_name: str
    session_context: str
    serial_no: str
    at: dt.datetime


@dataclass
class Fault:
    status: int | None = None  # HTTP status with an HTML page (e.g. 502 from the gateway)
    code: str | None = None  # top-level Response.Error.Code
    message: str = ""
    delay: float = 0.0
    accept: bool = False  # with delay: do the work, then answer too late


@dataclass
class FakeTencentSms:
    secret_id: str = "AKIDFakeSecretId0123456789"
    secret_key: str = "fake-secret-key"
    sdk_app_id: str = "1400006666"
    sign_names: set[str] = field(default_factory=lambda: {"腾讯云测试"})
    templates: set[str] | None = None  # None: any template id is approved
    # Per-number answers other than "Ok", e.g. {"+8613800000009": "FailedOperation.PhoneNumberInBlacklist"}.
    number_codes: dict[str, str] = field(default_factory=dict)
    fail_numbers: set[str] = field(default_factory=set)  # accepted, but the report says FAIL
    sends: list[Sent] = field(default_factory=list)
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._serial = itertools.count(1045710669157053657849499619)
        self._server: ThreadingHTTPServer | None = None

    def __enter__(self) -> FakeTencentSms:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def fail_next(self, count: int = 1, **fault: Any) -> None:
        with self._lock:
            self._faults.extend(Fault(**fault) for _ in range(count))

    def next_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def sent_to(self, phone: str) -> list[Sent]:
        return [s for s in self.sends if s.phone == phone]

    def status_item(self, sent: Sent) -> dict[str, Any]:
        """A status callback item for one accepted number, as Tencent pushes it."""
        ok = sent.phone not in self.fail_numbers
        return {
            "user_receive_time": sent.at.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d %H:%M:%S"),
            # Mainland numbers come as 86 + 11 digits; the fake gives others whole, without nationcode.
            "nationcode": "86" if sent.phone.startswith("+86") else "",
            "mobile": sent.phone[3:] if sent.phone.startswith("+86") else sent.phone,
            "report_status": "SUCCESS" if ok else "FAIL",
            "errmsg": "DELIVRD" if ok else "MK:0001",
            "description": "用户短信送达成功" if ok else "空号",
            "sid": sent.serial_no,
        }

    @staticmethod
    def reply_item(mobile: str, text: str, *, when: int, nationcode: str = "86") -> dict[str, Any]:
        return {
            "extend": "",
            "mobile": mobile,
            "nationcode": nationcode,
            "sign": "腾讯云测试",
            "text": text,
            "time": when,
        }

    # ---- protocol ------------------------------------------------------------------------

    def handle(self, headers: dict[str, str], payload: bytes) -> dict[str, Any]:
        try:
            body = json.loads(payload or b"{}")
        except ValueError:
            return _error("InvalidParameter", "body is not JSON")
        action = headers.get("x-tc-action", "")
        with self._lock:
            self.requests.append((action, body))
        refused = self._authenticate(headers, payload)
        if refused:
            return refused
        if headers.get("x-tc-version") != "2021-01-11":
            return _error("InvalidParameterValue", "X-TC-Version must be 2021-01-11 here")
        if not headers.get("x-tc-region"):
            return _error("MissingParameter", "The request is missing a required parameter `Region`.")
        if action == "SendSms":
            return self._send_sms(body)
        if action == "PullSmsSendStatusByPhoneNumber":
            return self._pull_status(body)
        return _error("InvalidAction", f"The action `{action}` is not found.")

    def _authenticate(self, headers: dict[str, str], payload: bytes) -> dict[str, Any] | None:
        match = AUTH.match(headers.get("authorization", ""))
        if not match:
            return _error("AuthFailure.InvalidAuthorization", "Authorization header is malformed.")
        try:
            timestamp = int(headers.get("x-tc-timestamp", ""))
        except ValueError:
            return _error("InvalidParameter", "X-TC-Timestamp must be an integer.")
        if abs(time.time() - timestamp) > 300:
            return _error("AuthFailure.SignatureExpire", "Request timestamp is out of the 5 minute window.")
        if match["id"] != self.secret_id:
            return _error("AuthFailure.SecretIdNotFound", "The SecretId is not found.")
        if match["headers"] != "content-type;host" or match["service"] != "sms" or match["date"] != tc3_date(timestamp):
            return _error("AuthFailure.SignatureFailure", "The credential scope or signed headers do not match.")
        canonical = tc3_canonical_request(
            payload, host=headers.get("host", ""), content_type=headers.get("content-type", "")
        )
        expected = tc3_signature(
            self.secret_key,
            date=match["date"],
            service="sms",
            string_to_sign=tc3_string_to_sign(canonical, timestamp=timestamp, service="sms"),
        )
        if match["sig"] != expected:
            return _error("AuthFailure.SignatureFailure", "The provided credentials could not be validated.")
        return None

    def _send_sms(self, body: dict[str, Any]) -> dict[str, Any]:
        phones = body.get("PhoneNumberSet")
        if not isinstance(phones, list) or not phones:
            return _error("MissingParameter", "PhoneNumberSet is required.")
        if len(phones) > 200:
            return _error("LimitExceeded.PhoneNumberCountLimit", "单次请求号码个数超过 200。")
        if body.get("SmsSdkAppId") != self.sdk_app_id:
            return _error("InvalidParameterValue.SdkAppIdNotExist", "SdkAppId 不存在。")
        if body.get("SignName") not in self.sign_names:
            return _error("FailedOperation.SignatureIncorrectOrUnapproved", "签名未审批或格式错误。")
        template = body.get("TemplateId")
        if not template or (self.templates is not None and template not in self.templates):
            return _error("FailedOperation.TemplateIncorrectOrUnapproved", "模板未审批或内容不匹配。")
        params = body.get("TemplateParamSet") or []
        if not isinstance(params, list) or any(not isinstance(p, str) for p in params):
            return _error("InvalidParameterValue.TemplateParameterFormatError", "模板参数须为字符串。")
        context = body.get("SessionContext") or ""
        if len(context.encode()) > 512:
            return _error("InvalidParameterValue.InvalidParameters", "SessionContext 超过 512 字节。")
        domestic = [bool(MAINLAND.match(p)) for p in phones if isinstance(p, str)]
        if len(set(domestic)) > 1:
            return _error("UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber", "国内与国际号码混发。")
        now = dt.datetime.now(dt.UTC)
        statuses = []
        with self._lock:
            for phone in phones:
                code = self.number_codes.get(phone) or (
                    "Ok"
                    if isinstance(phone, str) and E164.match(phone)
                    else "InvalidParameterValue.IncorrectPhoneNumber"
                )
                serial = f"2645:{next(self._serial)}" if code == "Ok" else ""
                if code == "Ok":
                    self.sends.append(Sent(phone, template, params, body["SignName"], context, serial, now))
                statuses.append(
                    {
                        "SerialNo": serial,
                        "PhoneNumber": phone,
                        "Fee": 1 if code == "Ok" else 0,
                        "SessionContext": context,
                        "Code": code,
                        "Message": "send success" if code == "Ok" else code,
                        "IsoCode": "CN" if str(phone).startswith("+86") else "",
                    }
                )
        return {"Response": {"SendStatusSet": statuses, "RequestId": str(uuid.uuid4())}}

    def _pull_status(self, body: dict[str, Any]) -> dict[str, Any]:
        phone = body.get("PhoneNumber")
        if body.get("SmsSdkAppId") != self.sdk_app_id:
            return _error("InvalidParameterValue.SdkAppIdNotExist", "SdkAppId 不存在。")
        if not isinstance(phone, str) or not E164.match(phone) or not isinstance(body.get("BeginTime"), int):
            return _error("InvalidParameterValue.IncorrectPhoneNumber", "PhoneNumber / BeginTime invalid.")
        begin, end = body["BeginTime"], body.get("EndTime") or int(time.time())
        limit = min(int(body.get("Limit") or 100), 100)
        with self._lock:
            found = [s for s in self.sends if s.phone == phone and begin <= s.at.timestamp() <= end + 1][:limit]
        return {
            "Response": {
                "PullSmsSendStatusSet": [
                    {
                        "UserReceiveTime": int(s.at.timestamp()),
                        "CountryCode": s.phone[1:3],
                        "SubscriberNumber": s.phone[3:],
                        "PhoneNumber": s.phone,
                        "SerialNo": s.serial_no,
                        "ReportStatus": "FAIL" if s.phone in self.fail_numbers else "SUCCESS",
                        "Description": "MK:0001" if s.phone in self.fail_numbers else "DELIVRD",
                        "SessionContext": s.session_context,
                    }
                    for s in found
                ],
                "RequestId": str(uuid.uuid4()),
            }
        }


def _error(code: str, message: str) -> dict[str, Any]:
    return {"Response": {"Error": {"Code": code, "Message": message}, "RequestId": str(uuid.uuid4())}}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeTencentSms

    def log_message(self, *args: object) -> None:
        return None

    def do_POST(self) -> None:
        payload = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        fault = self.fake.next_fault()
        if fault and fault.delay and not fault.accept:
            time.sleep(fault.delay)
        if fault and fault.status:
            self._write(fault.status, b"<html><body>502 Bad Gateway</body></html>", "text/html")
            return
        answer = _error(fault.code, fault.message or fault.code) if fault and fault.code else None
        if answer is None:
            answer = self.fake.handle(headers, payload)
        if fault and fault.delay and fault.accept:
            time.sleep(fault.delay)
        # API 3.0 answers errors with HTTP 200 and Response.Error.
        self._write(200, json.dumps(answer, ensure_ascii=False).encode(), "application/json")

    def _write(self, status: int, body: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass
