"""Callback endpoints: ``/callbacks/wecom/<slug>/`` and ``/callbacks/oa/<slug>/``.

Authentication is the platform's signature (token) plus, for encrypted pushes, AES with the
receiveid checked against our corp / app id. Anything that fails (unknown workspace, forged
signature, tampered ciphertext, another corp's message, a declaration in the XML, an
oversized body) is answered 403 / 400 / 413 and leaves nothing behind but one warning log
line. A valid push is deduplicated and handled in ``services.receive_event``; its answer is
empty (WeCom) or ``success`` (Official Account), which stops the platform's retries; a
handler failure answers 500 so the platform retries it.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from siyu.wecom import rules, services
from siyu.wecom.crypto import CallbackRejected, check_signature
from siyu.wecom.models import CallbackReceipt

log = logging.getLogger("siyu.wecom.callbacks")
MAX_BODY = 64 * 1024  # real pushes are well under 4 KB; group events with member lists stay small


def _reject(request: HttpRequest, source: str, slug: str, status: int, reason: str) -> HttpResponse:
    log.warning(
        "rejected %s callback %s %s from %s: %s",
        source,
        request.method,
        slug,
        request.META.get("REMOTE_ADDR", "?"),
        reason,
    )
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


def _answer(outcome: services.Received, ok_body: str) -> HttpResponse:
    if outcome.outcome == "failed":
        return HttpResponse(status=500)
    return HttpResponse(ok_body, content_type="text/plain; charset=utf-8")


@csrf_exempt
def wecom_callback(request: HttpRequest, slug: str) -> HttpResponse:
    source = CallbackReceipt.Source.WECOM
    endpoint = services.wecom_endpoint(slug)
    if endpoint is None or endpoint.crypt is None:
        return _reject(request, source, slug, 403, "unknown workspace or WeCom not configured")
    query = request.GET
    signature, timestamp, nonce = query.get("msg_signature", ""), query.get("timestamp", ""), query.get("nonce", "")
    if request.method == "GET":
        try:
            echo = endpoint.crypt.verify_url(signature, timestamp, nonce, query.get("echostr", ""))
        except CallbackRejected as exc:
            return _reject(request, source, slug, exc.status, str(exc))
        except UnicodeDecodeError:
            return _reject(request, source, slug, 400, "echostr is not UTF-8")
        services.record_verification(source, endpoint)
        # The bare plaintext: no quotes, BOM or newline.
        return HttpResponse(echo.encode(), content_type="text/plain; charset=utf-8")
    if request.method != "POST":
        return HttpResponse(status=405)
    body = _body(request)
    if body is None:
        return _reject(request, source, slug, 413, "body too large")
    try:
        encrypted = rules.parse_xml(body).get("Encrypt")
        if not isinstance(encrypted, str) or not encrypted:
            return _reject(request, source, slug, 400, "no Encrypt element")
        payload = rules.parse_xml(endpoint.crypt.open(signature, timestamp, nonce, encrypted))
    except CallbackRejected as exc:
        return _reject(request, source, slug, exc.status, str(exc))
    except rules.BadXml as exc:
        return _reject(request, source, slug, 400, str(exc))
    return _answer(services.receive_event(endpoint, source, payload), "")


@csrf_exempt
def oa_callback(request: HttpRequest, slug: str) -> HttpResponse:
    """Plaintext mode: ``signature`` over (token, timestamp, nonce). Safe mode
    (``encrypt_type=aes``): ``msg_signature`` over Encrypt, decrypted with the app id."""
    source = CallbackReceipt.Source.OA
    endpoint = services.oa_endpoint(slug)
    if endpoint is None:
        return _reject(request, source, slug, 403, "unknown workspace or Official Account not configured")
    query = request.GET
    timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
    if request.method == "GET":
        try:
            check_signature(query.get("signature", ""), endpoint.token, timestamp, nonce)
        except CallbackRejected as exc:
            return _reject(request, source, slug, exc.status, str(exc))
        services.record_verification(source, endpoint)
        return HttpResponse(query.get("echostr", "").encode(), content_type="text/plain; charset=utf-8")
    if request.method != "POST":
        return HttpResponse(status=405)
    body = _body(request)
    if body is None:
        return _reject(request, source, slug, 413, "body too large")
    try:
        if query.get("encrypt_type", "") == "aes":
            if endpoint.crypt is None:
                return _reject(request, source, slug, 400, "encrypted push but no EncodingAESKey configured")
            encrypted = rules.parse_xml(body).get("Encrypt")
            if not isinstance(encrypted, str) or not encrypted:
                return _reject(request, source, slug, 400, "no Encrypt element")
            plain = endpoint.crypt.open(query.get("msg_signature", ""), timestamp, nonce, encrypted)
        elif endpoint.crypt is not None:
            # The plain signature does not cover the body: in safe mode only encrypted pushes count.
            return _reject(request, source, slug, 400, "plaintext push to an account in safe mode")
        else:
            check_signature(query.get("signature", ""), endpoint.token, timestamp, nonce)
            plain = body
        payload = rules.parse_xml(plain)
    except CallbackRejected as exc:
        return _reject(request, source, slug, exc.status, str(exc))
    except rules.BadXml as exc:
        return _reject(request, source, slug, 400, str(exc))
    return _answer(services.receive_event(endpoint, source, payload), "success")
