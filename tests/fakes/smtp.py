"""A real SMTP server on 127.0.0.1 (aiosmtpd), for the email channel's tests.

It speaks SMTP with AUTH LOGIN / PLAIN against one username and password, records every
message it accepts (envelope and parsed headers), and injects the faults a relay really
answers with: 421 at MAIL or RCPT, 550 for chosen recipients, 554 at DATA, 535 at AUTH.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes
    login: str


@dataclass
class Faults:
    # Each of these counts down: the next N commands of that kind get the fault.
    mail_421: int = 0
    rcpt_421: int = 0
    data_554: int = 0
    auth_535: int = 0
    # Recipients whose mailbox does not exist (550 at RCPT, every time).
    unknown_mailboxes: set[str] = field(default_factory=set)


class _Handler:
    def __init__(self, server: FakeSMTPServer) -> None:
        self.server = server

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        with self.server.lock:
            if self.server.faults.mail_421 > 0:
                self.server.faults.mail_421 -= 1
                return "421 4.3.2 Service not available, closing transmission channel"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.server.lock:
            if self.server.faults.rcpt_421 > 0:
                self.server.faults.rcpt_421 -= 1
                return "421 4.7.0 Try again later, closing connection"
            if address.lower() in self.server.faults.unknown_mailboxes:
                return "550 5.1.1 The email account that you tried to reach does not exist"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.server.lock:
            if self.server.faults.data_554 > 0:
                self.server.faults.data_554 -= 1
                return "554 5.7.1 Message rejected as spam"
            raw = envelope.original_content or envelope.content
            parsed = message_from_bytes(raw, policy=policy.default)
            login = session.auth_data.login.decode() if session.auth_data else ""
            self.server.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed, raw, login))
        return "250 2.0.0 OK queued"


class FakeSMTPServer:
    """Start with ``start()``; ``port`` is an ephemeral one. ``received`` lists accepted mail."""

    def __init__(self, *, username: str = "mailer", password: str = "s3cret-pass") -> None:
        self.username, self.password = username, password
        self.faults = Faults()
        self.received: list[Received] = []
        self.auth_attempts = 0
        self.lock = threading.Lock()
        self.port = 0
        self._controller: Controller | None = None

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        with self.lock:
            self.auth_attempts += 1
            if self.faults.auth_535 > 0:
                self.faults.auth_535 -= 1
                return AuthResult(success=False, handled=False)
        ok = (
            mechanism in ("LOGIN", "PLAIN")
            and isinstance(auth_data, LoginPassword)
            and auth_data.login == self.username.encode()
            and auth_data.password == self.password.encode()
        )
        # handled=False lets aiosmtpd answer "535 5.7.8 Authentication credentials invalid".
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def start(self) -> FakeSMTPServer:
        # aiosmtpd 1.4 needs a concrete port (it connects to itself to confirm start-up).
        for _ in range(5):
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                self.port = probe.getsockname()[1]
            controller = Controller(
                _Handler(self),
                hostname="127.0.0.1",
                port=self.port,
                authenticator=self._authenticate,
                # Plain-text AUTH is fine on loopback in tests; real relays require TLS first.
                auth_require_tls=False,
                ready_timeout=5,
            )
            try:
                controller.start()
            except OSError:
                continue
            self._controller = controller
            return self
        raise RuntimeError("could not start the fake SMTP server")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def settings(self, **overrides) -> dict:
        """Account settings pointing at this server."""
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "security": "none",
            "from_address": "news@acme.example",
            "from_name": "Acme 美妆",
            "timeout": 5,
            **overrides,
        }

    def secrets(self) -> dict:
        return {"username": self.username, "password": self.password}
