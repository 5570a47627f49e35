"""One-click unsubscribe (RFC 8058): what an unsubscribe token (``channel.unsubscribe_token``)
opts out.

The token names the outbox message, not the customer: it reveals nothing and cannot be
enumerated; the customer it opts out is the one the message was sent to, resolved through
merges.
"""

from __future__ import annotations

from dataclasses import dataclass

from siyu.channels.email.channel import parse_unsubscribe_token
from siyu.channels.models import OptOut
from siyu.channels.services import record_opt_out
from siyu.customers.services import live_customer_id
from siyu.messaging.models import OutboundMessage


@dataclass(frozen=True)
class Recipient:
    """Who an unsubscribe link speaks for."""

    message_id: int
    workspace_id: int
    customer_id: int
    brand_name: str
    opted_out: bool


def recipient_for_token(token: str) -> Recipient | None:
    """The (live) customer a token's message went to; None for a bad token or an unknown message."""
    message_id = parse_unsubscribe_token(token)
    if message_id is None:
        return None
    row = (
        OutboundMessage.objects.filter(pk=message_id, customer__isnull=False)
        .values_list("workspace_id", "customer_id", "workspace__name")
        .first()
    )
    if row is None:
        return None
    workspace_id, customer_id, brand_name = row
    customer_id = live_customer_id(workspace_id, customer_id) or customer_id
    opted_out = OptOut.objects.filter(workspace_id=workspace_id, customer_id=customer_id).exists()
    return Recipient(message_id, workspace_id, customer_id, brand_name, opted_out)


def unsubscribe(recipient: Recipient, *, one_click: bool) -> bool:
    """Opt the recipient out of all marketing on every channel; False if they already were."""
    how = "one-click" if one_click else "page"
    return bool(
        record_opt_out(
            recipient.workspace_id,
            [recipient.customer_id],
            source=OptOut.Source.EMAIL_LINK,
            detail=f"message:{recipient.message_id} {how}",
        )
    )
