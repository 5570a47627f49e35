"""Callback endpoints: ``/callbacks/wecom/<slug>/`` and ``/callbacks/oa/<slug>/``.

Authentication is the platform's signature (token) plus, for encrypted pushes, AES with the
receiveid checked against our corp / app id. Anything that fails (unknown workspace, forged
signature, tampered ciphertext, another corp's message, a declaration in the XML, an
oversized body) is answered 403 / 400 / 413 and leaves nothing behind but one warning log
line. A valid push costs one row of an INSERT into the inbox (``siyu.wecom.receipts``: on
PostgreSQL the request threads of a process share each INSERT and its commit; a platform
retry of a stored event inserts nothing) and is answered once it is committed: empty (WeCom) or
``success`` (Official Account), which stops the platform's retries. The worker's inbox
(``siyu.wecom.inbox``) applies it; handler failures are retried there, not by the platform.
The configuration comes from an in-process cache (``siyu.wecom.endpoints``), so a push reads
no configuration from the database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TypeVar

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from siyu.wecom import endpoints, receipts, rules, services
from siyu.wecom.crypto import CallbackRejected, check_signature
from siyu.wecom.models import CallbackReceipt
from siyu.wecom.services import Endpoint

T = TypeVar("T")

log = logging.getLogger("siyu.wecom.callbacks")
MAX_BODY = 64 * 1024  # real pushes are well under 4 KB; group events with member lists stay small


class NotEncrypted(CallbackRejected):
    """The push's mode (plaintext / encrypted) is not the account's."""

    status = 400


def refuse(source: str, method: str, slug: str, remote: str, status: int, reason: str) -> tuple[int, bytes]:
    """Log one warning line for a refused callback; the (status, body) to answer."""
    log.warning("rejected %s callback %s %s from %s: %s", source, method, slug, remote, reason)
    return status, b""


def _reject(request: HttpRequest, source: str, slug: str, status: int, reason: str) -> HttpResponse:
    refuse(source, request.method or "?", slug, request.META.get("REMOTE_ADDR", "?"), status, reason)
    return HttpResponse(status=status)


def _body(request: HttpRequest) -> bytes | None:
    """The body, or None when it is larger than any real push (checked before reading it)."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if declared > MAX_BODY:
        return None
    body = request.body
    return body if len(body) <= MAX_BODY else None


def _authenticated(source: str, slug: str, endpoint: Endpoint, check: Callable[[Endpoint], T]) -> tuple[Endpoint, T]:
    """``check(endpoint)``; if the cached endpoint rejects the push, once more with the freshly
    loaded configuration when it changed in another process (a new token or key)."""
    try:
        return endpoint, check(endpoint)
    except CallbackRejected:
        fresh = endpoints.reload_after_reject(source, slug)
        if fresh is None:
            raise
        return fresh, check(fresh)


def _open_wecom(body: bytes, query: Mapping[str, str]) -> Callable[[Endpoint], bytes]:
    encrypted = rules.parse_xml(body).get("Encrypt")
    if not isinstance(encrypted, str) or not encrypted:
        raise rules.BadXml("no Encrypt element")
    signature, timestamp, nonce = query.get("msg_signature", ""), query.get("timestamp", ""), query.get("nonce", "")

    def check(endpoint: Endpoint) -> bytes:
        assert endpoint.crypt is not None
        return endpoint.crypt.open(signature, timestamp, nonce, encrypted)

    return check


@csrf_exempt
def wecom_callback(request: HttpRequest, slug: str) -> HttpResponse:
    source = CallbackReceipt.Source.WECOM
    endpoint = endpoints.get(source, slug)
    if endpoint is None or endpoint.crypt is None:
        return _reject(request, source, slug, 403, "unknown workspace or WeCom not configured")
    query = request.GET
    if request.method == "GET":
        signature, timestamp, nonce = query.get("msg_signature", ""), query.get("timestamp", ""), query.get("nonce", "")
        echostr = query.get("echostr", "")

        def verify(candidate: Endpoint) -> str:
            assert candidate.crypt is not None
            return candidate.crypt.verify_url(signature, timestamp, nonce, echostr)

        try:
            endpoint, echo = _authenticated(source, slug, endpoint, verify)
        except CallbackRejected as exc:
            return _reject(request, source, slug, exc.status, str(exc))
        except UnicodeDecodeError:
            return _reject(request, source, slug, 400, "echostr is not UTF-8")
        services.record_verification(source, endpoint)
        # The bare plaintext: no quotes, BOM or newline.
        return HttpResponse(echo.encode(), content_type="text/plain; charset=utf-8")
    if request.method != "POST":
        return HttpResponse(status=405)
    return _post(request, source, slug)


@csrf_exempt
def oa_callback(request: HttpRequest, slug: str) -> HttpResponse:
    """Plaintext mode: ``signature`` over (token, timestamp, nonce). Safe mode
    (``encrypt_type=aes``): ``msg_signature`` over Encrypt, decrypted with the app id."""
    source = CallbackReceipt.Source.OA
    endpoint = endpoints.get(source, slug)
    if endpoint is None:
        return _reject(request, source, slug, 403, "unknown workspace or Official Account not configured")
    query = request.GET
    timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")

    def plain_signature(candidate: Endpoint) -> None:
        check_signature(query.get("signature", ""), candidate.token, timestamp, nonce)

    if request.method == "GET":
        try:
            endpoint, _ = _authenticated(source, slug, endpoint, plain_signature)
        except CallbackRejected as exc:
            return _reject(request, source, slug, exc.status, str(exc))
        services.record_verification(source, endpoint)
        return HttpResponse(query.get("echostr", "").encode(), content_type="text/plain; charset=utf-8")
    if request.method != "POST":
        return HttpResponse(status=405)
    return _post(request, source, slug)


def _open_oa(body: bytes, query: Mapping[str, str]) -> Callable[[Endpoint], bytes]:
    """Plaintext mode: ``signature`` over (token, timestamp, nonce). Safe mode
    (``encrypt_type=aes``): ``msg_signature`` over Encrypt, decrypted with the app id."""
    timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")

    def check(candidate: Endpoint) -> bytes:
        if query.get("encrypt_type", "") == "aes":
            if candidate.crypt is None:
                raise NotEncrypted("encrypted push but no EncodingAESKey configured")
            encrypted = rules.parse_xml(body).get("Encrypt")
            if not isinstance(encrypted, str) or not encrypted:
                raise rules.BadXml("no Encrypt element")
            return candidate.crypt.open(query.get("msg_signature", ""), timestamp, nonce, encrypted)
        if candidate.crypt is not None:
            # The plain signature does not cover the body: in safe mode only encrypted pushes count.
            raise NotEncrypted("plaintext push to an account in safe mode")
        check_signature(query.get("signature", ""), candidate.token, timestamp, nonce)
        return body

    return check


def _post(request: HttpRequest, source: str, slug: str) -> HttpResponse:
    body = _body(request)
    remote = request.META.get("REMOTE_ADDR", "?")
    if body is None:
        status, answer = refuse(source, "POST", slug, remote, 413, "body too large")
    else:
        try:
            status, answer = accept_push(source, slug, request.GET, body, remote)
        except receipts.NotStored:  # logged by the writer; the platform retries a 500
            status, answer = 500, b""
    return HttpResponse(answer, status=status, content_type="text/plain; charset=utf-8")


ACK = {CallbackReceipt.Source.WECOM: b"", CallbackReceipt.Source.OA: b"success"}


def accept_push(source: str, slug: str, query: Mapping[str, str], body: bytes, remote: str) -> tuple[int, bytes]:
    """A POSTed push (body already size-checked): authenticate, decrypt, parse, store; the
    (status, body) to answer. Shared by the Django views and ``siyu.wecom.fastpath``."""
    endpoint = endpoints.get(source, slug)
    if endpoint is None or (source == CallbackReceipt.Source.WECOM and endpoint.crypt is None):
        return refuse(source, "POST", slug, remote, 403, "unknown workspace or not configured")
    try:
        opener = _open_wecom(body, query) if source == CallbackReceipt.Source.WECOM else _open_oa(body, query)
        endpoint, plain = _authenticated(source, slug, endpoint, opener)
        payload = rules.parse_xml(plain)
    except CallbackRejected as exc:
        return refuse(source, "POST", slug, remote, exc.status, str(exc))
    except rules.BadXml as exc:
        return refuse(source, "POST", slug, remote, 400, str(exc))
    # Answered once committed (group commit: see siyu.wecom.receipts); a duplicate is acknowledged all the same.
    receipts.store(receipts.row(endpoint, source, payload))
    return 200, ACK[source]
