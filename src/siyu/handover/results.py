"""Following started transfers: ``poll_workspace`` (the ``handover.poll_results`` job) reads
transfer_result / resigned/transfer_result for every (kind, handover, takeover) pair with
unfinished rows, records each outcome, and for every customer WeCom reports done moves the
relation, the owner and the timeline (``_complete``). ``poll_batch`` is the console's 刷新:
the same reading for one batch's pairs only. ``unassigned`` reads get_unassigned_list.

Clients are opened here with ``with client_for(...)`` when the caller gives none, so the HTTP
connection pool is closed when the poll ends.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet

from siyu.core import clock
from siyu.customers.models import Customer, StaffRelation
from siyu.customers.services import mark_changed
from siyu.handover import rules
from siyu.handover.models import HandoverBatch, HandoverTransfer, Kind
from siyu.handover.services import _describe, _refresh_batches, send_planned
from siyu.org.models import Staff, Workspace
from siyu.tracking.services import record_system_events
from siyu.wecom.client import WecomClient, WecomError

RESULT_API = {
    Kind.ON_JOB: "externalcontact/transfer_result",
    Kind.RESIGNED: "externalcontact/resigned/transfer_result",
}


@dataclass
class PollReport:
    pairs: int = 0
    calls: int = 0
    sent_calls: int = 0
    changed: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    errors: list[str] = field(default_factory=list)


def poll_workspace(workspace: Workspace, client: WecomClient | None = None) -> PollReport:
    """Send what is still planned, then read transfer_result for every (kind, handover,
    takeover) pair with unfinished rows and apply what WeCom reports (the job's work)."""
    if client is None:
        from siyu.wecom.services import client_for

        with client_for(workspace) as own:
            return poll_workspace(workspace, own)
    report = PollReport()
    pending_batches = set(
        HandoverTransfer.objects.filter(workspace=workspace, status=rules.PLANNED).values_list("batch_id", flat=True)
    )
    for batch_id in sorted(pending_batches):
        report.sent_calls += send_planned(workspace, batch_id, client)
    pairs = HandoverTransfer.objects.filter(workspace=workspace, status__in=rules.IN_FLIGHT)
    _poll_pairs(workspace, client, pairs, report)
    return report


def poll_batch(workspace: Workspace, batch: HandoverBatch, client: WecomClient | None = None) -> PollReport:
    """The console's 刷新: read transfer_result for this batch's pairs only. Nothing is sent
    (planned rows are the background sender's and the job's) and no other batch's pair is
    read, so the request stays short and its errors name only this batch's staff."""
    if client is None:
        from siyu.wecom.services import client_for

        with client_for(workspace) as own:
            return poll_batch(workspace, batch, own)
    report = PollReport()
    pairs = HandoverTransfer.objects.filter(workspace=workspace, batch=batch, status__in=rules.IN_FLIGHT)
    _poll_pairs(workspace, client, pairs, report)
    return report


def _poll_pairs(workspace: Workspace, client: WecomClient, rows: QuerySet, report: PollReport) -> None:
    """transfer_result for each distinct (kind, handover, takeover) of ``rows``, page by page."""
    pairs = sorted(set(rows.values_list("kind", "handover_staff_id", "takeover_staff_id").distinct()))
    ids = {staff_id for _kind, handover_id, takeover_id in pairs for staff_id in (handover_id, takeover_id)}
    userids = dict(
        Staff.objects.filter(workspace=workspace, pk__in=ids)
        .exclude(wecom_userid=None)
        .values_list("pk", "wecom_userid")
    )
    touched: set[int] = set()
    for kind, handover_id, takeover_id in pairs:
        if handover_id not in userids or takeover_id not in userids:
            report.errors.append(f"staff {handover_id} / {takeover_id} has no WeCom userid any more")
            continue
        report.pairs += 1
        since = clock.now()  # rows this poll lists are stamped seen_at >= since
        cursor = ""
        try:
            while True:
                body = {
                    "handover_userid": userids[handover_id],
                    "takeover_userid": userids[takeover_id],
                    "cursor": cursor,
                }
                data = client.post(RESULT_API[kind], body, idempotent=True)
                report.calls += 1
                customers = data.get("customer") or []
                touched |= _apply_results(workspace, kind, handover_id, takeover_id, customers, report)
                cursor = str(data.get("next_cursor") or "")
                if not cursor:
                    break
        except WecomError as exc:
            report.errors.append(_describe(exc))
            continue
        touched |= _fail_stale(workspace, kind, handover_id, takeover_id, since, report)
    _refresh_batches(sorted(touched))


def _pair_rows(workspace: Workspace, kind: str, handover_id: int, takeover_id: int):
    return HandoverTransfer.objects.filter(
        workspace=workspace,
        kind=kind,
        handover_staff_id=handover_id,
        takeover_staff_id=takeover_id,
        status__in=rules.IN_FLIGHT,
    )


def _apply_results(
    workspace: Workspace, kind: str, handover_id: int, takeover_id: int, customers: list[dict], report: PollReport
) -> set[int]:
    """One page of transfer_result: one UPDATE per outcome; done customers move (see
    ``_complete``). Returns the batches touched."""
    now = clock.now()
    listed = [str(item.get("external_userid", "")) for item in customers]
    if listed:  # one page (at most 1,000): what the stale check must not fail
        _pair_rows(workspace, kind, handover_id, takeover_id).filter(external_userid__in=listed).update(seen_at=now)
    by_status: dict[str, dict[str, int]] = defaultdict(dict)
    for item in customers:
        status = rules.RESULT_STATUS.get(int(item.get("status") or 0))
        if status:
            by_status[status][str(item.get("external_userid", ""))] = int(item.get("takeover_time") or 0)
    touched: set[int] = set()
    for status, times in by_status.items():
        with transaction.atomic():
            rows = list(
                _pair_rows(workspace, kind, handover_id, takeover_id)
                .filter(external_userid__in=list(times))
                .exclude(status=status)
                .select_for_update()
                .values_list("pk", "batch_id", "customer_id", "external_userid")
            )
            if not rows:
                continue
            values: dict[str, Any] = {"status": status}
            if status != rules.WAITING:
                values["finished_at"] = now
            HandoverTransfer.objects.filter(pk__in=[r[0] for r in rows]).update(**values)
            if status == rules.DONE:
                _complete(workspace, kind, handover_id, takeover_id, rows, times, now)
        report.changed[status] += len(rows)
        touched.update(r[1] for r in rows)
    return touched


def _complete(
    workspace: Workspace,
    kind: str,
    handover_id: int,
    takeover_id: int,
    rows: list[tuple[int, int, int, str]],
    times: dict[str, int],
    now: dt.datetime,
) -> None:
    """Customers WeCom reports taken over: the takeover's relation becomes active, the handover's
    ends, the owner moves if it was the handover staff member, and the timeline says so."""
    taken: dict[int, dt.datetime] = {}
    stamped: list[HandoverTransfer] = []
    for pk, _batch, customer_id, ext in rows:
        stamp = times.get(ext) or 0
        taken[customer_id] = dt.datetime.fromtimestamp(stamp, dt.UTC) if stamp else now
        stamped.append(HandoverTransfer(pk=pk, takeover_at=taken[customer_id]))
    HandoverTransfer.objects.bulk_update(stamped, ["takeover_at"], batch_size=1000)
    ids = sorted(taken)
    already = set(
        StaffRelation.objects.filter(
            staff_id=takeover_id, customer_id__in=ids, status=StaffRelation.Status.ACTIVE
        ).values_list("customer_id", flat=True)
    )
    StaffRelation.objects.bulk_create(
        [
            StaffRelation(
                workspace=workspace,
                customer_id=cid,
                staff_id=takeover_id,
                added_at=taken[cid],
                status=StaffRelation.Status.ACTIVE,
                status_changed_at=now,
            )
            for cid in ids
            if cid not in already
        ],
        update_conflicts=True,
        unique_fields=["staff", "customer"],
        update_fields=["status", "status_changed_at", "added_at"],
    )
    StaffRelation.objects.filter(staff_id=handover_id, customer_id__in=ids, status=StaffRelation.Status.ACTIVE).update(
        status=rules.HANDOVER_RELATION_STATUS, status_changed_at=now
    )
    Customer.objects.filter(pk__in=ids, owner_staff_id=handover_id).update(owner_staff_id=takeover_id, updated_at=now)
    properties = {"kind": kind, "from_staff_id": handover_id, "to_staff_id": takeover_id}
    events = [(cid, "wecom_transferred", {**properties, "batch_id": batch}, taken[cid]) for _pk, batch, cid, _e in rows]
    # Keyed by transfer row: a poll repeated after a crash adds nothing twice.
    record_system_events(workspace.pk, events, source="wecom", event_ids=[f"handover-{pk}" for pk, *_rest in rows])
    mark_changed(workspace.pk, ids)


def _fail_stale(
    workspace: Workspace, kind: str, handover_id: int, takeover_id: int, since: dt.datetime, report: PollReport
) -> set[int]:
    """Rows WeCom did not list in this poll (not seen since ``since``), requested long ago:
    WeCom has no such transfer. One UPDATE, whatever the number of customers of the pair."""
    now = clock.now()
    stale = (
        _pair_rows(workspace, kind, handover_id, takeover_id)
        .filter(requested_at__lt=now - rules.STALE_AFTER)
        .filter(Q(seen_at__isnull=True) | Q(seen_at__lt=since))
    )
    batches = set(stale.values_list("batch_id", flat=True).distinct())
    count = stale.update(status=rules.FAILED, finished_at=now)
    if count:
        report.changed[rules.FAILED] += count
    return batches


def unassigned(workspace: Workspace, client: WecomClient | None = None, *, limit: int = 10_000) -> dict[str, int]:
    """Departed members WeCom still holds customers for (get_unassigned_list): userid → count."""
    if client is None:
        from siyu.wecom.services import client_for

        with client_for(workspace) as own:
            return unassigned(workspace, own, limit=limit)
    counts: dict[str, int] = defaultdict(int)
    cursor, seen = "", 0
    while seen < limit:
        data = client.post(
            "externalcontact/get_unassigned_list", {"cursor": cursor, "page_size": 1000}, idempotent=True
        )
        for item in data.get("info") or []:
            counts[str(item.get("handover_userid", ""))] += 1
            seen += 1
        cursor = str(data.get("next_cursor") or "")
        if not cursor or data.get("is_last"):
            break
    return dict(counts)
