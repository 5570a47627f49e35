"""A brand's webhook endpoint on 127.0.0.1, as a careful receiver builds it.

It verifies the Standard Webhooks signature and timestamp (401 otherwise), dedupes on
``webhook-id`` (a repeat is answered 200 and counted in ``duplicates``, never processed
twice), and injects faults from a script: an HTTP status (500, 410, 429 with Retry-After)
instead of processing, or a slow answer after processing (the sender times out).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from siyu.channels.webhook.signing import WebhookVerificationError, verify


@dataclass
class Fault:
    status: int = 0  # answer this instead of processing
    retry_after: str = ""
    slow: bool = False  # process, then hold the answer until ``release`` is set


class FakeWebhookReceiver:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.lock = threading.Lock()
        self.faults: list[Fault] = []
        self.processed: dict[str, Any] = {}  # webhook-id -> body, each exactly once
        self.order: list[str] = []  # webhook-ids in the order processed
        self.duplicates = 0
        self.bad_signatures = 0
        self.attempts = 0
        self.headers: list[dict[str, str]] = []
        self.release = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    # ---- fault injection ---------------------------------------------------------------
    def fail_next(self, status: int, *, retry_after: str = "", times: int = 1) -> None:
        with self.lock:
            self.faults.extend(Fault(status=status, retry_after=retry_after) for _ in range(times))

    def slow_next(self) -> None:
        with self.lock:
            self.faults.append(Fault(slow=True))

    # ---- server --------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/siyu"

    def start(self) -> FakeWebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                receiver.handle(self, body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def handle(self, request: BaseHTTPRequestHandler, body: bytes) -> None:
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self.lock:
            self.attempts += 1
            self.headers.append(headers)
        try:
            verify(self.secret, headers, body)
        except WebhookVerificationError as exc:
            with self.lock:
                self.bad_signatures += 1
            return _answer(request, 401, {"error": str(exc)})
        with self.lock:
            fault = self.faults.pop(0) if self.faults else Fault()
        if fault.status:
            extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return _answer(request, fault.status, {"error": "injected"}, extra)
        webhook_id = headers["webhook-id"]
        with self.lock:
            if webhook_id in self.processed:
                self.duplicates += 1
            else:
                self.processed[webhook_id] = json.loads(body)
                self.order.append(webhook_id)
        if fault.slow:
            self.release.wait(10)
        _answer(request, 200, {"ok": True}, {"x-request-id": f"req-{webhook_id}"})


def _answer(request: BaseHTTPRequestHandler, status: int, document: dict, headers: dict | None = None) -> None:
    payload = json.dumps(document).encode()
    try:
        request.send_response(status)
        request.send_header("content-type", "application/json")
        request.send_header("content-length", str(len(payload)))
        for name, value in (headers or {}).items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(payload)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the sender gave up (timeout): it will retry with the same webhook-id
