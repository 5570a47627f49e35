"""What the setup console reads: recent API calls with their errcode meanings, errcode counts
over the last day, sync runs with what they fixed, and callback receipts. Every query is on
one workspace and walks a ``(workspace, -time)`` index.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.db.models import Count, Q

from siyu.core import clock
from siyu.org.models import Workspace
from siyu.wecom import errcodes
from siyu.wecom.models import ApiCallLog, CallbackReceipt
from siyu.wecom.sync import FIX_KEYS, LABELS
from siyu.wecom.sync_models import SyncRun

API_PAGE = 100
RECEIPT_FAILURES = 20
FAILURE_WINDOW = dt.timedelta(days=30)


@dataclass(frozen=True)
class ApiCallRow:
    api: str
    errcode: int | None
    meaning: errcodes.Meaning
    errmsg: str
    duration_ms: int
    at: dt.datetime

    @property
    def ok(self) -> bool:
        return self.errcode == 0


@dataclass(frozen=True)
class ErrcodeCount:
    errcode: int | None
    meaning: errcodes.Meaning
    calls: int


def api_calls(workspace: Workspace, *, errors_only: bool = False, limit: int = API_PAGE) -> list[ApiCallRow]:
    rows = ApiCallLog.objects.filter(workspace=workspace)
    if errors_only:
        rows = rows.filter(~Q(errcode=0) | Q(errcode__isnull=True))
    return [
        ApiCallRow(r.api, r.errcode, errcodes.meaning(r.errcode), r.errmsg, r.duration_ms, r.at)
        for r in rows.order_by("-at", "-pk")[:limit]
    ]


def errcode_counts(workspace: Workspace, *, hours: int = 24, now: dt.datetime | None = None) -> list[ErrcodeCount]:
    """Calls per errcode over the last ``hours``, most frequent first (0 = ok included)."""
    since = (now or clock.now()) - dt.timedelta(hours=hours)
    rows = (
        ApiCallLog.objects.filter(workspace=workspace, at__gte=since)
        .values("errcode")
        .annotate(n=Count("id"))
        .order_by("-n", "errcode")
    )
    return [ErrcodeCount(r["errcode"], errcodes.meaning(r["errcode"]), r["n"]) for r in rows]


@dataclass(frozen=True)
class RunRow:
    run: SyncRun
    fixed: list[tuple[str, int]]  # (label, count) for what the run changed

    @property
    def seconds(self) -> float:
        return self.run.duration_ms / 1000


def sync_runs(workspace: Workspace, limit: int = 10) -> list[RunRow]:
    runs = SyncRun.objects.filter(workspace=workspace).order_by("-started_at", "-pk")[:limit]
    return [RunRow(run, fixed_items(run.counts)) for run in runs]


def fixed_items(counts: dict) -> list[tuple[str, int]]:
    return [(LABELS[key], int(counts[key])) for key in FIX_KEYS if counts.get(key)]


@dataclass(frozen=True)
class ReceiptStats:
    today: int
    today_failed: int  # the inbox gave up on them (``failed_at``): the operator's to look at
    retrying: int  # handling failed and the inbox will try again (any day)
    failures: list[CallbackReceipt]  # the latest unprocessed receipts with an error (30 days)


def receipt_stats(workspace: Workspace, now: dt.datetime | None = None) -> ReceiptStats:
    """Callbacks received since local midnight, and the latest ones whose handling failed."""
    now = now or clock.now()
    local = now.astimezone(ZoneInfo(workspace.time_zone))
    midnight = dt.datetime.combine(local.date(), dt.time(), local.tzinfo)
    receipts = CallbackReceipt.objects.filter(workspace=workspace)
    unprocessed = Q(processed_at__isnull=True)
    today = receipts.filter(received_at__gte=midnight).aggregate(
        n=Count("id"), failed=Count("id", filter=unprocessed & Q(failed_at__isnull=False))
    )
    retrying = receipts.filter(
        unprocessed & Q(failed_at__isnull=True) & ~Q(error=""), received_at__gte=now - FAILURE_WINDOW
    ).count()
    failures = list(
        # Bounded in time so an error-free workspace does not scan its whole receipt history.
        receipts.filter(unprocessed & ~Q(error=""), received_at__gte=now - FAILURE_WINDOW)
        .only("source", "event_type", "change_type", "received_at", "error")
        .order_by("-received_at", "-pk")[:RECEIPT_FAILURES]
    )
    return ReceiptStats(
        today=today["n"],
        today_failed=today["failed"],
        retrying=retrying,
        failures=failures,
    )
