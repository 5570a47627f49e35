"""A local Dysmsapi (2017-05-25) that speaks the RPC protocol: signature V1 checked exactly
as Aliyun does, SendSms / SendBatchSms / QuerySendDetails, POP error codes, fault injection.

    with FakeAliyunSms() as fake:
        settings = {"endpoint": fake.url, "sign_name": "阿里云短信测试"}
        secrets = {"access_key_id": fake.access_key_id, "access_key_secret": fake.access_key_secret}
        ...
        assert [s.phone for s in fake.sends] == ["13800000001"]
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
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

from siyu.channels.sms.signing import aliyun_signature

CHINA = ZoneInfo("Asia/Shanghai")
COMMON = ("AccessKeyId", "Action", "SignatureMethod", "SignatureNonce", "SignatureVersion", "Timestamp", "Version")
PHONE = re.compile(r"^(?:\+?86|0086)?1[3-9]\d{9}$|^[1-9]\d{7,14}$")


@dataclass
class Sent:
    """One number the fake accepted."""

    action: str
    phone: str
    sign_name: str
    template: str
    params: dict[str, Any]
    out_id: str
    biz_id: str
    at: dt.datetime
    send_status: int = 1  # 1 waiting for receipt, 2 failed, 3 delivered
    err_code: str = ""


@dataclass
class Fault:
    status: int | None = None  # answer with this HTTP status and an HTML page (e.g. 503)
    code: str | None = None  # answer with this POP error code
    message: str = ""
    delay: float = 0.0  # sleep this long before answering
    accept: bool = False  # with delay: process the request first (the answer is what is lost)


@dataclass
class FakeAliyunSms:
    access_key_id: str = "LTAI5tFakeKeyId"
    access_key_secret: str = "fake-access-key-secret"
    sign_names: set[str] = field(default_factory=lambda: {"阿里云短信测试"})
    templates: set[str] | None = None  # None: any template code is approved
    sends: list[Sent] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)  # every request, refused or not

    def __post_init__(self) -> None:
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._nonces: set[str] = set()
        self._biz = itertools.count(900619746936498440)
        self._server: ThreadingHTTPServer | None = None

    # ---- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> FakeAliyunSms:
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

    # ---- test controls ---------------------------------------------------------------------

    def fail_next(self, count: int = 1, **fault: Any) -> None:
        """The next ``count`` calls get ``Fault(**fault)``."""
        with self._lock:
            self._faults.extend(Fault(**fault) for _ in range(count))

    def sent_to(self, phone: str) -> list[Sent]:
        return [s for s in self.sends if s.phone == phone]

    @staticmethod
    def report_item(sent: Sent, *, success: bool = True, err_code: str = "") -> dict[str, Any]:
        """An SmsReport push item for one accepted number, as Aliyun writes it."""
        now = dt.datetime.now(CHINA).strftime("%Y-%m-%d %H:%M:%S")
        return {
            "phone_number": sent.phone,
            "send_time": sent.at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S"),
            "report_time": now,
            "success": success,
            "err_code": err_code or ("DELIVERED" if success else "MOBILE_NOT_ON_SERVICE"),
            "err_msg": "用户接收成功" if success else "停机",
            "sms_size": "1",
            "biz_id": sent.biz_id,
            "out_id": sent.out_id,
        }

    @staticmethod
    def reply_item(phone: str, content: str, *, sequence_id: int, sign_name: str = "阿里云短信测试") -> dict[str, Any]:
        """An SmsUp push item."""
        return {
            "phone_number": phone,
            "send_time": dt.datetime.now(CHINA).strftime("%Y-%m-%d %H:%M:%S"),
            "content": content,
            "sign_name": sign_name,
            "dest_code": "1234",
            "sequence_id": sequence_id,
        }

    # ---- the protocol ------------------------------------------------------------------------

    def handle(self, method: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append(dict(params))
        error = self._authenticate(method, params)
        if error:
            return error
        action = params["Action"]
        handlers = {
            "SendSms": self._send_sms,
            "SendBatchSms": self._send_batch_sms,
            "QuerySendDetails": self._query_send_details,
        }
        if action not in handlers:
            return _error(
                404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method."
            )
        return handlers[action](params)

    def _authenticate(self, method: str, params: dict[str, str]) -> tuple[int, dict[str, Any]] | None:
        missing = [k for k in (*COMMON, "Signature") if not params.get(k)]
        if missing:
            return _error(
                400, "MissingParameter", f"The input parameter {missing[0]} that is mandatory is not supplied."
            )
        if params["Version"] != "2017-05-25":
            return _error(400, "InvalidVersion", "Specified parameter Version is not valid.")
        if params["AccessKeyId"] != self.access_key_id:
            return _error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        expected = aliyun_signature(method, params, self.access_key_secret)
        if params["Signature"] != expected:
            return _error(400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation.")
        try:
            stamp = dt.datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        except ValueError:
            return _error(400, "InvalidTimeStamp.Format", "Specified time stamp is not valid.")
        if abs((dt.datetime.now(dt.UTC) - stamp).total_seconds()) > 15 * 60:
            return _error(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
        with self._lock:
            if params["SignatureNonce"] in self._nonces:
                return _error(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
            self._nonces.add(params["SignatureNonce"])
        return None

    def _check_content(self, signs: list[str], template: str) -> tuple[int, dict[str, Any]] | None:
        if any(s not in self.sign_names for s in signs):
            return _error(200, "isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")
        if self.templates is not None and template not in self.templates:
            return _error(200, "isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
        return None

    def _send_sms(self, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        phones = [p for p in params.get("PhoneNumbers", "").split(",") if p]
        template = params.get("TemplateCode", "")
        if not phones or not template or not params.get("SignName"):
            return _error(400, "MissingParameter", "PhoneNumbers, SignName and TemplateCode are required.")
        refused = self._check_content([params["SignName"]], template)
        if refused:
            return refused
        if any(not PHONE.match(p) for p in phones):
            return _error(200, "isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
        try:
            template_params = json.loads(params.get("TemplateParam") or "{}")
        except ValueError:
            return _error(200, "isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        if not isinstance(template_params, dict) or any(not isinstance(v, str) for v in template_params.values()):
            return _error(200, "isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        biz_id = f"{next(self._biz)}^0"
        now = dt.datetime.now(dt.UTC)
        with self._lock:
            for phone in phones:
                self.sends.append(
                    Sent(
                        "SendSms",
                        phone,
                        params["SignName"],
                        template,
                        template_params,
                        params.get("OutId", ""),
                        biz_id,
                        now,
                    )
                )
        return 200, {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": str(uuid.uuid4()).upper()}

    def _send_batch_sms(self, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        try:
            phones = json.loads(params.get("PhoneNumberJson", ""))
            signs = json.loads(params.get("SignNameJson", ""))
            template_params = json.loads(params.get("TemplateParamJson") or "null")
        except ValueError:
            return _error(200, "isv.INVALID_JSON_PARAM", "JSON参数不合法")
        template = params.get("TemplateCode", "")
        if not isinstance(phones, list) or not isinstance(signs, list) or not template:
            return _error(400, "MissingParameter", "PhoneNumberJson, SignNameJson and TemplateCode are required.")
        if len(phones) > 100:
            return _error(200, "isv.MOBILE_COUNT_OVER_LIMIT", "手机号码数量超过限制")
        if template_params is None:
            template_params = [{}] * len(phones)
        if len(signs) != len(phones) or len(template_params) != len(phones):
            return _error(200, "isv.INVALID_PARAMETERS", "参数异常：号码、签名、模板参数个数不一致")
        refused = self._check_content(signs, template)
        if refused:
            return refused
        if any(not isinstance(p, str) or not PHONE.match(p) for p in phones):
            return _error(200, "isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
        biz_id = f"{next(self._biz)}^0"
        now = dt.datetime.now(dt.UTC)
        with self._lock:
            for phone, sign, values in zip(phones, signs, template_params, strict=True):
                self.sends.append(Sent("SendBatchSms", phone, sign, template, values, "", biz_id, now))
        return 200, {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": str(uuid.uuid4()).upper()}

    def _query_send_details(self, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        phone, send_date = params.get("PhoneNumber", ""), params.get("SendDate", "")
        try:
            size, page = int(params.get("PageSize", "")), int(params.get("CurrentPage", ""))
        except ValueError:
            return _error(200, "isv.INVALID_PARAMETERS", "PageSize and CurrentPage are required")
        if not phone or not re.fullmatch(r"\d{8}", send_date) or not (1 <= size <= 50) or page < 1:
            return _error(200, "isv.INVALID_PARAMETERS", "参数异常")
        with self._lock:
            found = [
                s
                for s in self.sends
                if s.phone == phone
                and s.at.astimezone(CHINA).strftime("%Y%m%d") == send_date
                and (not params.get("BizId") or s.biz_id == params["BizId"])
            ]
        shown = found[(page - 1) * size : page * size]
        details = [
            {
                "PhoneNum": s.phone,
                "SendStatus": s.send_status,
                "ErrCode": s.err_code or ("DELIVERED" if s.send_status == 3 else ""),
                "TemplateCode": s.template,
                "Content": f"【{s.sign_name}】{json.dumps(s.params, ensure_ascii=False)}",
                "SendDate": s.at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S"),
                "ReceiveDate": "",
                "OutId": s.out_id,
            }
            for s in shown
        ]
        return 200, {
            "Code": "OK",
            "Message": "OK",
            "RequestId": str(uuid.uuid4()).upper(),
            "TotalCount": str(len(found)),
            "SmsSendDetailDTOs": {"SmsSendDetailDTO": details},
        }

    def next_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"Code": code, "Message": message, "RequestId": str(uuid.uuid4()).upper(), "HostId": "dysmsapi"}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeAliyunSms

    def log_message(self, *args: object) -> None:  # keep test output quiet
        return None

    def do_GET(self) -> None:
        self._serve("GET", dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True)))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        params = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
        params.update(parse_qsl(body, keep_blank_values=True))
        self._serve("POST", params)

    def _serve(self, method: str, params: dict[str, str]) -> None:
        fault = self.fake.next_fault()
        if fault and fault.delay and not fault.accept:
            time.sleep(fault.delay)  # hung before doing anything
        if fault and fault.status:
            self._write(fault.status, b"<html><body>Service Unavailable</body></html>", "text/html")
            return
        if fault and fault.code:
            status, answer = _error(200, fault.code, fault.message or fault.code)
        else:
            status, answer = self.fake.handle(method, params)
        if fault and fault.delay and fault.accept:
            time.sleep(fault.delay)  # did the work, the answer comes too late
        self._write(status, json.dumps(answer, ensure_ascii=False).encode(), "application/json;charset=utf-8")

    def _write(self, status: int, body: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up (timeout)
