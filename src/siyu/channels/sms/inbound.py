"""What inbound SMS callbacks do once parsed: replies feed the timeline and the global opt-out.

Delivery reports go straight to ``messaging.services.record_receipts``.
"""

from __future__ import annotations

from dataclasses import dataclass

from siyu.channels.models import ChannelAccount
from siyu.channels.services import customer_for_address, is_optout_reply, record_opt_out
from siyu.channels.sms.callbacks import Reply
from siyu.tracking.services import record_system_events


@dataclass(frozen=True)
class ReplyOutcome:
    recorded: int  # timeline events stored (repeats are not)
    opted_out: int  # customers newly opted out


def record_replies(account: ChannelAccount, replies: list[Reply]) -> ReplyOutcome:
    """Steps, per reply: find the customers holding the number (unknown numbers are ignored);
    opt them out when the text is an opt-out keyword (R / T / TD / 退订 …); store an
    ``sms_replied`` timeline event, deduplicated on the reply's key."""
    workspace_id = account.workspace_id
    rows: list = []
    event_ids: list[str | None] = []
    opted_out = 0
    seen: set[str] = set()
    for reply in replies:
        customers = customer_for_address(workspace_id, "sms", reply.phone)
        if not customers:
            continue
        if is_optout_reply(workspace_id, reply.content):
            opted_out += record_opt_out(workspace_id, customers, source="sms_reply", detail=reply.content)
        for customer_id in customers:
            event_id = f"sms-reply:{account.pk}:{reply.key}:{customer_id}"[:100]
            if event_id in seen:  # the same reply twice in one push
                continue
            seen.add(event_id)
            properties = {"content": reply.content[:500], "provider": account.provider, "account_id": account.pk}
            if reply.sign_name:
                properties["sign_name"] = reply.sign_name
            rows.append((customer_id, "sms_replied", properties, reply.at))
            event_ids.append(event_id)
    recorded = record_system_events(workspace_id, rows, source="sms", event_ids=event_ids) if rows else 0
    return ReplyOutcome(recorded, opted_out)
