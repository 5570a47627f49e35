"""Inbound SMS callbacks: delivery reports and replies pushed by Aliyun and Tencent.

Neither provider signs these pushes, so the unguessable per-account token in the URL is the
credential: an unknown token gets 403 and nothing is recorded. A body that is not a JSON
array (Tencent replies: object) gets 400; otherwise the valid items are applied (each is
idempotent: receipts only move a message forward, replies are keyed) and any bad items are
named in a 400 answer, so the provider's retry can only repeat what already happened.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from siyu.channels.models import ChannelAccount
from siyu.channels.services import account_by_callback_token
from siyu.channels.sms import callbacks
from siyu.channels.sms.inbound import record_replies
from siyu.messaging.services import record_receipts

MAX_ITEMS = 5000

Parser = Callable[[list[Any]], tuple[list[Any], list[str]]]
Applier = Callable[[ChannelAccount, list[Any]], object]


def _apply_receipts(account: ChannelAccount, receipts: list[Any]) -> object:
    return record_receipts(account.pk, receipts)


def _aliyun_answer(ok: bool, message: str = "") -> dict[str, Any]:
    # Aliyun only checks that "code" is a number; 0 means received.
    return {"code": 0, "msg": "接收成功"} if ok else {"code": 1, "msg": message}


def _tencent_answer(ok: bool, message: str = "") -> dict[str, Any]:
    return {"result": 0, "errmsg": "OK"} if ok else {"result": 1, "errmsg": message}


def _inbound(
    request: HttpRequest,
    *,
    provider: str,
    token: str,
    parse: Parser,
    apply: Applier,
    answer: Callable[..., dict[str, Any]],
    single_object: bool = False,
) -> JsonResponse:
    def respond(status: int, message: str = "") -> JsonResponse:
        return JsonResponse(answer(status == 200, message), status=status, json_dumps_params={"ensure_ascii": False})

    account = account_by_callback_token(provider, token)
    if account is None:
        return respond(403, "未知的回调地址 / unknown callback URL")
    try:
        body = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return respond(400, "请求体不是 JSON / body is not JSON")
    if single_object and isinstance(body, dict):
        body = [body]
    if not isinstance(body, list):
        return respond(400, "请求体应为 JSON 数组 / body must be a JSON array")
    if len(body) > MAX_ITEMS:
        return respond(400, f"一次最多 {MAX_ITEMS} 条 / at most {MAX_ITEMS} items per request")
    items, problems = parse(body)
    if items:
        apply(account, items)
    if problems:
        return respond(400, "部分条目无效 / invalid items: " + "; ".join(problems[:20]))
    return respond(200)


@csrf_exempt
@require_POST
def aliyun_report(request: HttpRequest, token: str) -> JsonResponse:
    return _inbound(
        request,
        provider="aliyun_sms",
        token=token,
        parse=callbacks.parse_aliyun_reports,
        apply=_apply_receipts,
        answer=_aliyun_answer,
    )


@csrf_exempt
@require_POST
def aliyun_reply(request: HttpRequest, token: str) -> JsonResponse:
    return _inbound(
        request,
        provider="aliyun_sms",
        token=token,
        parse=callbacks.parse_aliyun_replies,
        apply=record_replies,
        answer=_aliyun_answer,
    )


@csrf_exempt
@require_POST
def tencent_status(request: HttpRequest, token: str) -> JsonResponse:
    return _inbound(
        request,
        provider="tencent_sms",
        token=token,
        parse=callbacks.parse_tencent_statuses,
        apply=_apply_receipts,
        answer=_tencent_answer,
    )


@csrf_exempt
@require_POST
def tencent_reply(request: HttpRequest, token: str) -> JsonResponse:
    # The reply callback is documented as one object per request; an array is accepted too.
    return _inbound(
        request,
        provider="tencent_sms",
        token=token,
        parse=callbacks.parse_tencent_replies,
        apply=record_replies,
        answer=_tencent_answer,
        single_object=True,
    )
