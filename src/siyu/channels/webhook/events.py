"""Domain events for webhook subscribers, where building one dict per item would be too much.

``messaging.services.emit_domain_events`` queues events from items already in memory. Two
things it cannot do cheaply live here:

- ``subscribed``: whether any active webhook account of the workspace wants an event type, so a
  caller can skip even the query that would find the items (one small indexed lookup);
- ``emit_segment_entered``: a segment refresh can open a million stays at once, so the outbox
  rows are written with one ``INSERT ... SELECT`` from the refresh's ``seg_enter`` temp table,
  never through Python.

Rows look exactly like ``emit_domain_events``'s: purpose ``system``, key
``evt:<account>:<event key>``, body the event JSON, payload ``{"event": ...}``.
"""

from __future__ import annotations

import datetime as dt
import json

from django.db import connection

from siyu.channels.models import ChannelAccount
from siyu.core import clock
from siyu.core.sql import adapt

# Stands in for the customer id while the event JSON is built, then is split out.
_CUSTOMER = "\x00customer\x00"


def subscribers(workspace_id: int, event_type: str) -> list[ChannelAccount]:
    """Active webhook accounts of the workspace subscribed to ``event_type``."""
    return [
        account
        for account in ChannelAccount.objects.filter(
            workspace_id=workspace_id, provider="webhook", status=ChannelAccount.Status.ACTIVE
        ).only("pk", "medium", "settings")
        if event_type in (account.settings.get("events") or [])
    ]


def subscribed(workspace_id: int, event_type: str) -> bool:
    return bool(subscribers(workspace_id, event_type))


def emit_segment_entered(workspace_id: int, segment_id: int, segment_name: str, at: dt.datetime) -> int:
    """Queue ``segment.entered`` for every customer in ``seg_enter`` whose stay opened just now.

    Call after the refresh inserted the new memberships: the event key is the stay's id, so a
    customer who leaves and comes back is told about again, and a replay queues nothing.
    Returns the number of rows written (0, after one lookup, when nobody subscribes).
    """
    accounts = subscribers(workspace_id, "segment.entered")
    if not accounts:
        return 0
    event = {
        "type": "segment.entered",
        "occurred_at": at.isoformat(),
        "data": {"segment_id": segment_id, "segment": segment_name, "customer_id": _CUSTOMER},
    }
    # The body is the event JSON with the customer id spliced in by SQL (an integer, so the
    # concatenation is valid JSON), the same text emit_domain_events would have produced.
    before, after = json.dumps(event, ensure_ascii=False).split(json.dumps(_CUSTOMER))
    pg = connection.vendor == "postgresql"
    body = "CAST(%s AS TEXT) || CAST(m.customer_id AS TEXT) || CAST(%s AS TEXT)"
    payload = f"CAST(%s AS TEXT) || {body} || CAST(%s AS TEXT)"
    now = adapt(clock.now(), "datetime")
    written = 0
    with connection.cursor() as cursor:
        for account in accounts:
            cursor.execute(
                "INSERT INTO messaging_outboundmessage (workspace_id, customer_id, account_id, medium, purpose, "
                "idempotency_key, to_address, subject, body, payload, state, reason, quiet_policy, attempts, "
                "claimed_by, provider_ref, error_code, error_message, created_at, updated_at) "
                f"SELECT %s, m.customer_id, %s, %s, 'system', CAST(%s AS TEXT) || CAST(m.id AS TEXT), '', '', {body}, "
                f"{'CAST(' + payload + ' AS jsonb)' if pg else payload}, 'queued', '', 'hold', 0, '', '', '', '', %s, %s "
                "FROM segments_segmentmembership m JOIN seg_enter e ON e.customer_id = m.customer_id "
                "WHERE m.segment_id = %s AND m.exited_at IS NULL ON CONFLICT DO NOTHING",
                [
                    workspace_id,
                    account.pk,
                    account.medium,
                    f"evt:{account.pk}:segment.entered:",
                    before,
                    after,
                    '{"event": ',
                    before,
                    after,
                    "}",
                    now,
                    now,
                    segment_id,
                ],
            )
            written += cursor.rowcount
    return written
