"""Attribution: a customer added (WeCom) or followed (OA) through a channel code.

``record_add`` is the one entry the callback handlers call once they resolved the customer;
``services`` re-exports it.
"""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, transaction

from siyu.acquisition.models import ChannelCode, ChannelCodeAdd
from siyu.acquisition.welcome import Welcome, welcome_payload
from siyu.core import clock
from siyu.customers.models import Customer
from siyu.customers.services import live_customer_id, mark_changed
from siyu.org.models import Staff, Workspace
from siyu.tags.models import CustomerTag, TagSource
from siyu.tracking.services import record_system_events

# First-touch sources the callback handlers write before a code is known: a code refines them.
GENERIC_SOURCES = ("", "wecom", "official_account")
SOURCE_BY_KIND = {
    "staff": "channel_code",
    "rotating": "channel_code",
    "store": "store_code",
    "oa_qr": "official_account",
}


def code_for_state(workspace: Workspace, state: str) -> ChannelCode | None:
    """The code behind a WeCom ``State`` or an OA ``scene_str`` (``qrscene_`` already stripped)."""
    state = (state or "").strip()
    if not state or len(state) > 64:
        return None
    return ChannelCode.objects.filter(workspace=workspace, state=state).select_related("store", "workspace").first()


def record_add(
    workspace: Workspace, *, state: str, customer_id: int, staff_id: int | None, at: dt.datetime
) -> Welcome | None:
    """Attribute a customer's add (WeCom) or follow (OA) to the code with this state.

    Called by the callback handlers after they resolved the customer. Unknown state → None and
    nothing else. Otherwise, in one transaction: write the ``ChannelCodeAdd`` (a retried event
    with the same code, customer and time writes nothing more); set the first-touch source
    when the customer has none yet (or only the carrier's generic one); record the latest
    source in ``attributes["latest_source"]``; apply the code's tags; make the adding staff
    member the owner (and the code's store the store) when empty; put ``channel_code_added``
    on the timeline. Returns the welcome message to send with ``send_welcome_msg`` (``None``
    when the code has none or the add was a repeat).
    """
    code = code_for_state(workspace, state)
    if code is None:
        return None
    live = live_customer_id(workspace.pk, customer_id)
    if live is None:
        return None
    with transaction.atomic():
        customer = Customer.objects.select_for_update().filter(pk=live).first()
        if customer is None:
            return None
        if ChannelCodeAdd.objects.filter(code=code, customer_id=live, at=at).exists():
            return None
        first_touch = (
            customer.source_channel in GENERIC_SOURCES
            and not customer.source_detail
            and not ChannelCodeAdd.objects.filter(customer_id=live).exists()
        )
        try:
            # Two deliveries of one event racing: the unique constraint lets one through.
            with transaction.atomic():
                ChannelCodeAdd.objects.create(
                    workspace=workspace, code=code, customer_id=live, staff_id=staff_id, at=at, first_touch=first_touch
                )
        except IntegrityError:
            return None
        _update_profile(customer, code, staff_id, at, first_touch)
        _apply_tags(workspace, code, live, at)
        properties = {"code_id": code.pk, "code": code.name, "state": code.state, "staff_id": staff_id}
        properties["first_touch"] = first_touch
        event_id = f"channel_code_added:{code.pk}:{live}:{int(at.timestamp())}"
        record_system_events(
            workspace.pk, [(live, "channel_code_added", properties, at)], source="acquisition", event_ids=[event_id]
        )
    staff = Staff.objects.filter(pk=staff_id).first() if staff_id else None
    payload = welcome_payload(code, customer, staff)
    return payload if payload.text or payload.attachments else None


def _update_profile(customer: Customer, code: ChannelCode, staff_id: int | None, at: dt.datetime, first: bool) -> None:
    customer.save(update_fields=apply_touch(customer, code, staff_id, at, first, clock.now()))


def apply_touch(
    customer: Customer, code: ChannelCode, staff_id: int | None, at: dt.datetime, first: bool, now: dt.datetime
) -> list[str]:
    """Credit an add through ``code`` on the in-memory ``customer``: the latest source, the first
    touch, and the owner and store when they are empty. The fields changed, for ``save``
    (the batch path in ``attribution_batch`` writes many customers at once instead)."""
    fields = ["attributes", "updated_at"]
    latest = (customer.attributes or {}).get("latest_source") or {}
    # Callbacks can arrive out of order: an older add never replaces a newer latest source.
    if not latest.get("at") or str(latest["at"]) <= at.isoformat():
        customer.attributes = {
            **(customer.attributes or {}),
            "latest_source": {
                "channel": SOURCE_BY_KIND[code.kind],
                "code_id": code.pk,
                "code": code.name,
                "state": code.state,
                "at": at.isoformat(),
            },
        }
    if first:
        customer.source_channel = SOURCE_BY_KIND[code.kind]
        customer.source_detail = f"{code.name} [{code.state}]"[:200]
        fields += ["source_channel", "source_detail"]
    if customer.owner_staff_id is None and staff_id:
        customer.owner_staff_id = staff_id
        fields.append("owner_staff")
    if customer.store_id is None and code.store_id:
        customer.store_id = code.store_id
        fields.append("store")
    customer.updated_at = now
    return fields


def _apply_tags(workspace: Workspace, code: ChannelCode, customer_id: int, at: dt.datetime) -> None:
    # tags.services has no "apply with a source" service; rows are written as the importer
    # writes them (one statement, existing tags kept), tagged with the code as their source.
    tag_ids = list(code.tags.values_list("pk", flat=True))
    if not tag_ids:
        return
    CustomerTag.objects.bulk_create(
        [
            CustomerTag(
                workspace=workspace,
                customer_id=customer_id,
                tag_id=tag_id,
                source=TagSource.RULE,
                source_ref=f"channel_code:{code.pk}",
                created_at=at,
            )
            for tag_id in tag_ids
        ],
        ignore_conflicts=True,
    )
    mark_changed(workspace.pk, [customer_id])
