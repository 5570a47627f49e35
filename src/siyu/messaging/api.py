"""API: send messages through the outbox, read them back, and run broadcasts (群发)."""

from __future__ import annotations

from django.db.models import Count
from django.http import HttpRequest
from ninja import Query, Router, Status

from siyu.channels.api import access_account
from siyu.channels.models import ChannelAccount
from siyu.channels.schemas import reject_nul
from siyu.content.models import MessageTemplate
from siyu.content.rendering import MAX_SUBJECT, check_template
from siyu.core.apischemas import BatchOut, batch_answer, check_batch_size
from siyu.core.batch import BatchResult, validate_items
from siyu.core.errors import InvalidInput, NotFound
from siyu.core.limits import MAX_ID
from siyu.customers.services import live_customer_ids
from siyu.messaging import broadcasts
from siyu.messaging.models import Broadcast, OutboundMessage
from siyu.messaging.schemas import (
    BroadcastIn,
    BroadcastOut,
    BroadcastPage,
    BroadcastPreviewOut,
    BroadcastQuery,
    CancelOut,
    MessageOut,
    MessagePage,
    MessageQuery,
    MessagesIn,
    OutboundItem,
    broadcast_out,
    message_out,
)
from siyu.messaging.services import NewMessage, enqueue
from siyu.org.models import Workspace

router = Router(tags=["reach"])


def _id(value: int, what: str) -> int:
    if not 1 <= value <= MAX_ID:
        raise NotFound(f"no {what} with this id", field=f"{what}_id")
    return value


# -- messages --------------------------------------------------------------------------------


@router.post("/messages", response=BatchOut)
def send_messages(request: HttpRequest, body: MessagesIn):
    """Queue up to 1,000 messages through one channel account; the dispatcher sends them.

    Every item is checked first (customer, template, variables); a bad item is rejected on
    its own and the good ones are queued. An `idempotency_key` used before is a duplicate:
    accepted, never sent twice. `ids[i]` is the message item i landed on. Whether a message
    was sent or stopped by the compliance gate (opt-out, consent, quiet hours, caps) shows
    later in `GET /messages/{id}`.
    """
    check_batch_size(body)
    account = access_account(request.workspace, body.account_id)
    result = BatchResult(ids=[None] * len(body.items))
    prepared, accepted = prepare_messages(request.workspace, account, body.items, result)
    if prepared:
        try:
            _queued, raced = enqueue(
                account,
                [message for _, message in prepared],
                purpose=body.purpose,
                quiet_policy=body.quiet_policy,
            )
        except InvalidInput as exc:
            raise _original_index(exc, [index for index, _ in prepared]) from None
        # A concurrent request may have stored one of these keys since we looked.
        result.duplicates += raced
    # New and duplicate items alike answer with the id of the message their key names.
    ids = dict(
        OutboundMessage.objects.filter(
            workspace=request.workspace, idempotency_key__in=sorted(set(accepted.values()))
        ).values_list("idempotency_key", "id")
    )
    for index, key in accepted.items():
        result.ids[index] = ids.get(key)
    return batch_answer(result, with_ids=True)


def prepare_messages(
    workspace: Workspace, account: ChannelAccount, items: list, result: BatchResult
) -> tuple[list[tuple[int, NewMessage]], dict[int, str]]:
    """Check each item the way ``enqueue`` and dispatch will, so one bad item rejects only itself.

    Counts accepted items and duplicates (a key already stored or repeated in this batch).
    Returns the new messages to queue with their index in the request, and the key of every
    accepted item by index.
    """
    valid = validate_items(OutboundItem, items, result)
    wanted_templates = {item.template_id for _, item in valid if item.template_id}
    templates = {
        t.pk: t for t in MessageTemplate.objects.filter(workspace=workspace, pk__in=wanted_templates, archived=False)
    }
    live = live_customer_ids(workspace.pk, [item.customer_id for _, item in valid])
    stored = set(
        OutboundMessage.objects.filter(
            workspace=workspace, idempotency_key__in=[item.idempotency_key for _, item in valid]
        ).values_list("idempotency_key", flat=True)
    )
    prepared: list[tuple[int, NewMessage]] = []
    accepted: dict[int, str] = {}
    seen: set[str] = set()
    for index, item in valid:
        try:
            message = _new_message(account, item, templates, live)
        except InvalidInput as exc:
            result.reject(index, exc.field or "", exc.message)
            continue
        result.accepted += 1
        accepted[index] = item.idempotency_key
        if item.idempotency_key in stored or item.idempotency_key in seen:
            result.duplicates += 1
            continue
        seen.add(item.idempotency_key)
        prepared.append((index, message))
    return prepared, accepted


def _new_message(account: ChannelAccount, item, templates: dict[int, MessageTemplate], live: dict[int, int]):
    customer_id = live.get(item.customer_id)
    if customer_id is None:
        raise InvalidInput("客户不存在 / no customer with this id in the workspace", field="customer_id")
    provider_template, params = "", None
    if item.template_id is not None:
        template = templates.get(item.template_id)
        if template is None:
            raise InvalidInput("模板不存在 / no such template", field="template_id")
        if template.medium != account.medium:
            raise InvalidInput(
                f"模板是{template.get_medium_display()}模板，与渠道不符 / template is for {template.medium}",
                field="template_id",
            )
        body, subject = template.body, item.subject if item.subject is not None else template.subject
        provider_template, params = template.provider_template, template.provider_params or None
    else:
        body, subject = item.body or "", item.subject or ""
    if not body.strip():
        raise InvalidInput("内容不能为空 / the message body is empty", field="body")
    check_template(body, field="body", medium=account.medium)
    if subject:
        check_template(subject, field="subject", medium=account.medium, max_length=MAX_SUBJECT)
    elif account.medium == "email":
        raise InvalidInput("邮件需要标题 / an email needs a subject", field="subject")
    for key, src in (params or {}).items():
        check_template(src, field=f"provider_params.{key}", medium=account.medium)
    if account.provider in broadcasts.PROVIDER_TEMPLATE_REQUIRED and not provider_template:
        raise InvalidInput(
            "短信服务商只发送已审核的模板：请用 template_id 指定带模板编号的模板 / the provider needs an approved "
            "template: send a template_id whose template has a provider template code",
            field="template_id",
        )
    return NewMessage(
        customer_id=customer_id,
        idempotency_key=item.idempotency_key,
        body=body,
        subject=subject,
        variables=dict(item.variables) or None,
        provider_template=provider_template,
        provider_params=params,
    )


def _original_index(exc: InvalidInput, indexes: list[int]) -> InvalidInput:
    """``enqueue`` names items by their position in what it was given; answer with the request's."""
    parts = (exc.field or "").split(".")
    if len(parts) >= 2 and parts[0] == "items" and parts[1].isdigit() and int(parts[1]) < len(indexes):
        parts[1] = str(indexes[int(parts[1])])
    return InvalidInput(exc.message, field=".".join(parts) or None)


@router.get("/messages", response=MessagePage)
def list_messages(request: HttpRequest, filters: Query[MessageQuery]):
    """Messages, newest first, keyset-paginated; filter by customer, state or broadcast."""
    qs = OutboundMessage.objects.filter(workspace=request.workspace)
    if filters.customer_id is not None:
        qs = qs.filter(customer_id=filters.customer_id)
    if filters.state is not None:
        qs = qs.filter(state=filters.state)
    if filters.broadcast_id is not None:
        qs = qs.filter(broadcast_id=filters.broadcast_id)
    if filters.after is not None:
        qs = qs.filter(pk__lt=filters.after)
    rows = list(qs.order_by("-pk")[: filters.limit + 1])
    more = len(rows) > filters.limit
    rows = rows[: filters.limit]
    return {"items": [message_out(m) for m in rows], "next_after": rows[-1].pk if more else None}


@router.get("/messages/{message_id}", response=MessageOut)
def get_message(request: HttpRequest, message_id: int):
    """One message: its state, the gate's reason, the provider's reference and the rendered text."""
    found = OutboundMessage.objects.filter(workspace=request.workspace, pk=_id(message_id, "message")).first()
    if found is None:
        raise NotFound("消息不存在 / no message with this id", field="message_id")
    return message_out(found)


# -- broadcasts ------------------------------------------------------------------------------


def access_broadcast(workspace: Workspace, broadcast_id: int) -> Broadcast:
    return broadcasts.get_broadcast(workspace, _id(broadcast_id, "broadcast"))


@router.get("/broadcasts", response=BroadcastPage)
def list_broadcasts(request: HttpRequest, filters: Query[BroadcastQuery]):
    """Broadcasts, newest first, keyset-paginated."""
    qs = Broadcast.objects.filter(workspace=request.workspace).prefetch_related("variants")
    if filters.status is not None:
        qs = qs.filter(status=filters.status)
    if filters.after is not None:
        qs = qs.filter(pk__lt=filters.after)
    rows = list(qs.order_by("-pk")[: filters.limit + 1])
    more = len(rows) > filters.limit
    rows = rows[: filters.limit]
    return {"items": [broadcast_out(b) for b in rows], "next_after": rows[-1].pk if more else None}


@router.post("/broadcasts", response={201: BroadcastOut})
def create_broadcast(request: HttpRequest, body: BroadcastIn):
    """Save a draft: audience (segment and/or tags), channel account, 1-5 content variants
    (A/B split by weight) and an optional holdout. Every template is checked now; a bad one
    answers 422 naming it, e.g. `variants.1.body`. Then preview it, and send it."""
    reject_nul(body)
    broadcast = broadcasts.create_broadcast(
        request.workspace,
        name=body.name,
        account_id=body.account_id,
        variants=[broadcasts.VariantIn(**v.model_dump()) for v in body.variants],
        segment_id=body.segment_id,
        tags_any=body.tags_any,
        tags_all=body.tags_all,
        purpose=body.purpose,
        quiet_policy=body.quiet_policy,
        holdout_percent=body.holdout_percent,
        scheduled_at=body.scheduled_at,
        coupon_code=body.coupon_code,
        conversion_days=body.conversion_days,
    )
    return Status(201, broadcast_out(broadcast))


@router.get("/broadcasts/{broadcast_id}", response=BroadcastOut)
def get_broadcast(request: HttpRequest, broadcast_id: int):
    """A broadcast with its outbox messages counted by state."""
    broadcast = access_broadcast(request.workspace, broadcast_id)
    counts = dict(
        OutboundMessage.objects.filter(broadcast_id=broadcast.pk)
        .order_by()
        .values("state")
        .annotate(n=Count("id"))
        .values_list("state", "n")
    )
    return broadcast_out(broadcast, counts)


@router.post("/broadcasts/{broadcast_id}/preview", response=BroadcastPreviewOut)
def preview_broadcast(request: HttpRequest, broadcast_id: int):
    """Before sending: the audience, the holdout, and how many the compliance gate would stop now, by reason."""
    return broadcasts.preview(access_broadcast(request.workspace, broadcast_id))


@router.post("/broadcasts/{broadcast_id}/send", response=BroadcastOut)
def send_broadcast(request: HttpRequest, broadcast_id: int):
    """Send now (every member becomes an outbox message), or schedule it if `scheduled_at` is ahead."""
    return broadcast_out(broadcasts.send(access_broadcast(request.workspace, broadcast_id)))


@router.post("/broadcasts/{broadcast_id}/cancel", response=CancelOut)
def cancel_broadcast(request: HttpRequest, broadcast_id: int):
    """Stop a draft, scheduled or sending broadcast; messages not yet sent are suppressed as `cancelled`."""
    broadcast = access_broadcast(request.workspace, broadcast_id)
    stopped = broadcasts.cancel(broadcast)
    broadcast.refresh_from_db()
    return {"stopped": stopped, "broadcast": broadcast_out(broadcast)}


@router.get("/broadcasts/{broadcast_id}/report", response=dict)
def broadcast_report(request: HttpRequest, broadcast_id: int):
    """Sent, delivered, clicked, suppressed by reason; conversions and revenue with lift against the holdout."""
    return broadcasts.report(access_broadcast(request.workspace, broadcast_id))
