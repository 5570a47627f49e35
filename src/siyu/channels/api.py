"""API: channel accounts, compliance settings, the global opt-out list and consent."""

from __future__ import annotations

from collections import defaultdict

from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from pydantic import ConfigDict, Field

from siyu.channels import services
from siyu.channels.models import ChannelAccount, OptOut
from siyu.channels.schemas import (
    AccountIn,
    AccountOut,
    AccountPatch,
    ComplianceIn,
    ComplianceOut,
    ConsentItem,
    HealthOut,
    OptOutItem,
    OptOutPage,
    account_out,
    compliance_out,
    opt_out_out,
    reject_nul,
)
from siyu.core.apischemas import BatchIn, BatchOut, batch_answer, check_batch_size, item_schema_extra
from siyu.core.batch import BatchResult, validate_items
from siyu.core.errors import InvalidInput, NotFound
from siyu.core.limits import MAX_ID
from siyu.customers.services import live_customer_ids
from siyu.org.models import Workspace

router = Router(tags=["reach"])


def access_account(workspace: Workspace, account_id: int) -> ChannelAccount:
    """The workspace's account with this id; another workspace's account is simply not found."""
    found = (
        ChannelAccount.objects.filter(workspace=workspace, pk=account_id).first() if 1 <= account_id <= MAX_ID else None
    )
    if found is None:
        raise NotFound("渠道账号不存在 / no channel account with this id", field="account_id")
    return found


# -- channel accounts ------------------------------------------------------------------------


@router.get("/channel-accounts", response=list[AccountOut])
def list_accounts(request: HttpRequest):
    """The workspace's channel accounts, by name. Credentials are never shown, only `secret_hint`."""
    return [account_out(a) for a in ChannelAccount.objects.filter(workspace=request.workspace).order_by("name")]


@router.post("/channel-accounts", response={201: AccountOut})
def create_account(request: HttpRequest, body: AccountIn):
    """Add a provider account; `secrets` are validated, encrypted and never answered back."""
    reject_nul(body)
    account = services.create_account(
        request.workspace,
        name=body.name,
        provider=body.provider,
        medium=body.medium,
        settings=body.settings,
        secrets=body.secrets,
        rate_per_second=body.rate_per_second,
    )
    return Status(201, account_out(account))


@router.get("/channel-accounts/{account_id}", response=AccountOut)
def get_account(request: HttpRequest, account_id: int):
    return account_out(access_account(request.workspace, account_id))


@router.patch("/channel-accounts/{account_id}", response=AccountOut)
def update_account(request: HttpRequest, account_id: int, body: AccountPatch):
    """Change settings, credentials or the send rate. A secret left out or empty keeps its stored value."""
    account = access_account(request.workspace, account_id)
    reject_nul(body)
    return account_out(
        services.update_account(
            account, settings=body.settings, secrets=body.secrets, rate_per_second=body.rate_per_second
        )
    )


@router.post("/channel-accounts/{account_id}/check", response=HealthOut)
def check_account(request: HttpRequest, account_id: int):
    """Check credentials and reachability with the provider's cheapest real call."""
    account = access_account(request.workspace, account_id)
    health = services.check_account(account)
    return {"ok": health.ok, "detail": health.detail, "checked_at": account.last_check_at}


@router.post("/channel-accounts/{account_id}/enable", response=AccountOut)
def enable_account(request: HttpRequest, account_id: int):
    """Resume an account stopped by a permanent provider error (fix the cause first); its queue is sent."""
    account = access_account(request.workspace, account_id)
    services.enable_account(account)
    return account_out(account)


# -- compliance ------------------------------------------------------------------------------


@router.get("/compliance", response=ComplianceOut)
def get_compliance(request: HttpRequest):
    """Frequency caps, the marketing window, the SMS opt-out suffix and reply keywords."""
    ws = request.workspace
    return compliance_out(services.compliance_settings(ws.pk), ws.time_zone)


@router.put("/compliance", response=ComplianceOut)
def put_compliance(request: HttpRequest, body: ComplianceIn):
    """Change what the compliance gate enforces; fields left out keep their value."""
    ws = request.workspace
    reject_nul(body)
    changes = body.model_dump(exclude_unset=True)
    for name in [k for k, v in changes.items() if v is None]:
        raise InvalidInput("cannot be null; leave the field out to keep it", field=name)
    return compliance_out(services.update_compliance_settings(ws, **changes), ws.time_zone)


# -- opt-outs --------------------------------------------------------------------------------


@router.post("/opt-outs", response=BatchOut, openapi_extra=item_schema_extra(OptOutItem))
def opt_out(request: HttpRequest, body: BatchIn):
    """Opt people out of all marketing on every channel (service messages still reach them).

    Name each by `customer_id`, `phone` or `email`. Someone already opted out counts as a
    duplicate; an unknown customer or address rejects only its item.
    """
    check_batch_size(body)
    ws = request.workspace
    result = BatchResult(ids=[None] * len(body.items))
    valid = validate_items(OptOutItem, body.items, result)
    live = live_customer_ids(ws.pk, [item.customer_id for _, item in valid if item.customer_id])
    items = dict(valid)
    by_phone = services.customers_for_addresses(
        ws.pk, "sms", [i.phone for _, i in valid if i.customer_id is None and i.phone]
    )
    by_email = services.customers_for_addresses(
        ws.pk, "email", [i.email or "" for _, i in valid if i.customer_id is None and not i.phone]
    )
    targets: dict[int, list[int]] = {}
    for index, item in valid:
        if item.customer_id is not None:
            ids = [live[item.customer_id]] if item.customer_id in live else []
            where = "customer_id"
        elif item.phone:
            ids, where = by_phone[item.phone], "phone"
        else:
            ids, where = by_email[item.email or ""], "email"
        if not ids:
            result.reject(index, where, "客户不存在 / no customer with this id or address in the workspace")
            continue
        targets[index] = ids
        result.ids[index] = ids[0]
    everyone = sorted({c for ids in targets.values() for c in ids})
    already = set(
        OptOut.objects.filter(workspace_id=ws.pk, customer_id__in=everyone).values_list("customer_id", flat=True)
    )
    # One write per (source, detail): record_opt_out takes them per call.
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, ids in targets.items():
        item = items[index]
        groups[(item.source, item.detail)].extend(ids)
        result.accepted += 1
        if all(c in already for c in ids):
            result.duplicates += 1
        already.update(ids)
    for (source, detail), ids in groups.items():
        services.record_opt_out(ws.pk, ids, source=source, detail=detail)
    return batch_answer(result, with_ids=True)


class OptOutQuery(Schema):
    model_config = ConfigDict(extra="forbid")
    after: int | None = Field(default=None, ge=1, le=MAX_ID, description="`next_after` of the previous page")
    limit: int = Field(default=50, ge=1, le=200)


@router.get("/opt-outs", response=OptOutPage)
def list_opt_outs(request: HttpRequest, filters: Query[OptOutQuery]):
    """Everyone opted out, newest first, keyset-paginated."""
    qs = OptOut.objects.filter(workspace=request.workspace)
    if filters.after is not None:
        qs = qs.filter(pk__lt=filters.after)
    rows = list(qs.order_by("-pk")[: filters.limit + 1])
    more = len(rows) > filters.limit
    rows = rows[: filters.limit]
    return {"items": [opt_out_out(r) for r in rows], "next_after": rows[-1].pk if more else None}


@router.delete("/opt-outs/{customer_id}", response={204: None})
def withdraw_opt_out(request: HttpRequest, customer_id: int):
    """The customer asked to hear from us again; 404 when they were not opted out."""
    ws = request.workspace
    live = live_customer_ids(ws.pk, [customer_id]).get(customer_id)
    if live is None or not services.withdraw_opt_out(ws.pk, live, source="api"):
        raise NotFound("该客户未退订 / this customer is not opted out", field="customer_id")
    return Status(204, None)


# -- consent ---------------------------------------------------------------------------------


@router.post("/consents", response=BatchOut, openapi_extra=item_schema_extra(ConsentItem))
def record_consents(request: HttpRequest, body: BatchIn):
    """Record grants and withdrawals: `{customer_id, channel, purpose, granted, source}` per item.

    Marketing needs a grant for the channel; service messages go unless revoked.
    """
    check_batch_size(body)
    ws = request.workspace
    result = BatchResult(ids=[None] * len(body.items))
    valid = validate_items(ConsentItem, body.items, result)
    live = live_customer_ids(ws.pk, [item.customer_id for _, item in valid])
    accepted: list[tuple[int, services.ConsentChange]] = []
    for index, item in valid:
        customer_id = live.get(item.customer_id)
        if customer_id is None:
            result.reject(index, "customer_id", "客户不存在 / no customer with this id in the workspace")
            continue
        change = services.ConsentChange(customer_id, item.channel, item.purpose, item.granted, item.source)
        try:
            services.check_consent_change(change)
        except InvalidInput as exc:
            result.reject(index, exc.field or "", exc.message)
            continue
        accepted.append((index, change))
    # One upsert for the whole batch (not a transaction per item).
    for (index, _change), pk in zip(accepted, services.set_consents(ws.pk, [c for _, c in accepted]), strict=True):
        result.accepted += 1
        result.ids[index] = pk
    return batch_answer(result, with_ids=True)
