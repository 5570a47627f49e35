"""The callback inbox: the worker applies the receipts the endpoints stored.

The endpoints only authenticate, decrypt and insert (``services.store_receipt``), so WeCom and
the Official Account get their answer in milliseconds. Here a worker thread (``siyu worker``)
polls every ``POLL_SECONDS`` and, per round:

1. claims up to ``limit`` due receipts in id (arrival) order — ``FOR UPDATE SKIP LOCKED`` on
   PostgreSQL, so several workers share the inbox; SQLite's write lock serialises them — but
   never a receipt whose subject (the external contact, chat, corp tag list or follower) has an
   earlier receipt still pending: one subject's events apply in the order they arrived, even
   when an earlier one is being applied by another worker or waits for a retry (the claim looks
   past such receipts, so a busy subject does not hold up the others);
2. applies them: a workspace's adds, deletes and OA follows together, set-based, in a savepoint
   (``siyu.wecom.batch_apply``; a failing batch is rolled back and applied one by one), the
   others each with ``services.handle_event`` inside a savepoint;
3. marks the applied ones processed, and records each failure (error, ``attempts`` + 1,
   ``next_attempt_at`` after a growing back-off; after ``MAX_ATTEMPTS`` ``failed_at``: left for
   the operator, never dropped).

Claim, apply and mark share one transaction: a worker that dies at any line leaves its
receipts unclaimed and unapplied, and the next round applies them exactly once. Welcome
messages are queued in the same transaction when tasks live in the database, else on commit
(``batch_apply.queue_welcomes``), so they leave only with the commit.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from typing import Any

from django.db import close_old_connections, connection, transaction

from siyu.core import clock
from siyu.core.sql import id_list_condition, text_list_condition
from siyu.org.models import Workspace
from siyu.wecom import batch_apply, rules, services
from siyu.wecom.models import CallbackReceipt

log = logging.getLogger("siyu.wecom.inbox")
POLL_SECONDS = 0.2  # welcome codes live 20 s: a new add must not wait long
BATCH = 1000  # a round of 1,000 adds takes well under a second (benchmarks/bench_wecom_inbox.py)
# Fewer batchable receipts of a workspace than this in a round are applied one by one: the
# batch's fixed statements only pay off from a few events on.
BATCH_MIN = 8
# Receipts applied one by one per round (API reads, handed-back and fallback receipts): the
# round's transaction, and with it the welcome messages of its batch, waits for them.
PER_EVENT_MAX = 100
MAX_ATTEMPTS = 5
# Waits after the 1st, 2nd, ... failure; the last attempt's failure is final.
BACKOFF = (dt.timedelta(seconds=10), dt.timedelta(minutes=1), dt.timedelta(minutes=5), dt.timedelta(minutes=30))

CLAIM = """
SELECT r.id, r.workspace_id, r.source, r.subject, r.receiver, r.payload, r.attempts
FROM wecom_callbackreceipt r
WHERE r.processed_at IS NULL AND r.failed_at IS NULL
  AND (r.next_attempt_at IS NULL OR r.next_attempt_at <= %s) AND r.id > %s
ORDER BY r.id
LIMIT %s
"""
# The first pending receipt of each subject (in two steps rather than one NOT EXISTS: PostgreSQL
# planned that as an anti join over every pending row per candidate when its statistics lagged
# behind a burst, 5 s per claim; each step here is a plain index scan whatever the statistics).
FIRST_OF_SUBJECTS = """
SELECT workspace_id, source, subject, min(id) FROM wecom_callbackreceipt
WHERE processed_at IS NULL AND failed_at IS NULL AND subject <> '' AND {subjects}
GROUP BY workspace_id, source, subject
"""


@dataclass
class Stats:
    claimed: int = 0
    processed: int = 0
    retrying: int = 0
    failed: int = 0

    def add(self, other: Stats) -> None:
        self.claimed += other.claimed
        self.processed += other.processed
        self.retrying += other.retrying
        self.failed += other.failed


def backoff(attempts: int) -> dt.timedelta:
    """The wait after the ``attempts``-th failure."""
    return BACKOFF[min(attempts, len(BACKOFF)) - 1]


def process_pending(limit: int = BATCH) -> Stats:
    """Apply up to ``limit`` due receipts in one transaction; returns what happened.

    The common events (adds, deletes, OA follows) of one workspace are applied together by
    ``batch_apply`` when there are at least ``BATCH_MIN`` of them; the rest, and everything
    when the batch fails, one by one with ``services.handle_event`` (at most
    ``PER_EVENT_MAX`` per round: the others stay pending for the next round, still first of
    their subject)."""
    stats = Stats()
    now = clock.now()
    with transaction.atomic():
        rows = _claim(now, limit)
        if not rows:
            return stats
        workspaces = Workspace.objects.in_bulk({row[1] for row in rows})
        done = _apply_batches(rows, workspaces)
        # The rest (not batchable, a small group, a failed batch, handed back) one by one.
        single = [row for row in rows if row[0] not in done]
        applied = _apply_one_by_one(single[:PER_EVENT_MAX], workspaces, now, stats)
        done.update(applied)
        if done:
            condition, params = id_list_condition("id", sorted(done))
            with connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE wecom_callbackreceipt SET processed_at = %s, error = '' WHERE {condition}",
                    [now, *params],
                )
        stats.processed = len(done)
        stats.claimed = stats.processed + stats.retrying + stats.failed
    return stats


def _apply_batches(rows: list[tuple[Any, ...]], workspaces: dict[int, Workspace]) -> set[int]:
    """Apply each workspace's batchable receipts together (``batch_apply``), in a savepoint.

    Returns the receipt ids applied; the others (including those a batch hands back) go the
    per-event path. A batch that
    raises is rolled back whole and its receipts go the per-event path, which records each
    one's own error and back-off: nothing is lost or applied twice."""
    groups: dict[int, list[tuple[int, rules.Event]]] = {}
    others: dict[int, list[tuple[int, rules.Event]]] = {}
    for pk, workspace_id, source, _subject, receiver, payload, _attempts in rows:
        try:
            event = services.parse_receipt(source, receiver, _json(payload))
        except Exception:
            continue
        if batch_apply.batchable(event):
            groups.setdefault(workspace_id, []).append((pk, event))
        else:
            others.setdefault(workspace_id, []).append((pk, event))
    done: set[int] = set()
    for workspace_id, group in groups.items():
        if len(group) < BATCH_MIN:
            continue  # a handful: the per-event path costs no more
        try:
            with transaction.atomic():
                back = batch_apply.apply(workspaces[workspace_id], group, others.get(workspace_id, []))
        except Exception as exc:  # the per-event path applies them one by one
            log.warning("callback batch of %s receipts failed, applying one by one: %s", len(group), exc, exc_info=True)
            continue
        done.update(pk for pk, _ in group if pk not in back)
    return done


def _apply_one_by_one(
    rows: list[tuple[Any, ...]], workspaces: dict[int, Workspace], now: dt.datetime, stats: Stats
) -> list[int]:
    """``services.handle_event`` per receipt, each in a savepoint; failures recorded."""
    done: list[int] = []
    for pk, workspace_id, source, _subject, receiver, payload, attempts in rows:
        try:
            with transaction.atomic():
                event = services.parse_receipt(source, receiver, _json(payload))
                services.handle_event(workspaces[workspace_id], event)
        except Exception as exc:  # kept on the receipt, retried later
            log.warning("callback receipt %s failed (attempt %s): %s", pk, attempts + 1, exc, exc_info=True)
            final = _record_failure(pk, attempts + 1, exc, now)
            stats.failed += final
            stats.retrying += not final
        else:
            done.append(pk)
    return done


def _claim(now: dt.datetime, limit: int, pages: int = 10) -> list[tuple[Any, ...]]:
    """Up to ``limit`` due receipts that are the first pending one of their subject, locked.
    Receipts waiting behind an earlier one are passed over (up to ``pages`` windows), so one
    busy subject cannot hold up the others."""
    sql = CLAIM + (" FOR UPDATE OF r SKIP LOCKED" if connection.vendor == "postgresql" else "")
    claimed: list[tuple[Any, ...]] = []
    after = 0
    with connection.cursor() as cursor:
        for _ in range(pages):
            want = limit - len(claimed)
            cursor.execute(sql, [now, after, want])
            window = cursor.fetchall()
            claimed += _first_of_their_subjects(cursor, window)
            if len(window) < want or len(claimed) >= limit:
                break  # nothing more is due, or enough
            after = window[-1][0]
    return claimed


def _first_of_their_subjects(cursor: Any, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The claimed rows that are the earliest pending receipt of their subject: a later one waits
    while an earlier one is pending (being applied by another worker, or backing off)."""
    subjects = sorted({row[3] for row in rows if row[3]})
    if not subjects:
        return rows
    condition, params = text_list_condition("subject", subjects)
    cursor.execute(FIRST_OF_SUBJECTS.format(subjects=condition), params)
    first = {(ws, source, subject): pk for ws, source, subject, pk in cursor.fetchall()}
    return [row for row in rows if not row[3] or first.get((row[1], row[2], row[3])) == row[0]]


def _json(payload: Any) -> dict[str, Any]:
    if isinstance(payload, str):  # SQLite hands JSON columns back as text
        import json

        payload = json.loads(payload)
    return payload if isinstance(payload, dict) else {}


def _record_failure(pk: int, attempts: int, exc: Exception, now: dt.datetime) -> bool:
    """Store the error; True when this was the last attempt."""
    final = attempts >= MAX_ATTEMPTS
    CallbackReceipt.objects.filter(pk=pk).update(
        attempts=attempts,
        error=f"{type(exc).__name__}: {exc}"[:500],
        next_attempt_at=None if final else now + backoff(attempts),
        failed_at=now if final else None,
    )
    return final


def process_all(limit: int = BATCH) -> Stats:
    """Rounds of ``process_pending`` until nothing is due (the CLI, tests, benchmarks)."""
    total = Stats()
    while True:
        stats = process_pending(limit)
        total.add(stats)
        if stats.claimed == 0:
            return total


def retry_failed(workspace: Workspace, ids: list[int] | None = None) -> int:
    """Give receipts that ran out of attempts a fresh start (after the cause is fixed)."""
    rows = CallbackReceipt.objects.filter(workspace=workspace, failed_at__isnull=False, processed_at__isnull=True)
    if ids is not None:
        rows = rows.filter(pk__in=ids)
    return rows.update(failed_at=None, attempts=0, next_attempt_at=None)


def run_forever(stop: threading.Event | None = None, *, poll: float = POLL_SECONDS, batch: int = BATCH) -> None:
    """The worker's inbox thread: apply what is due, sleep ``poll`` seconds when idle."""
    stop = stop or threading.Event()
    log.info("callback inbox started")
    while not stop.is_set():
        try:
            stats = process_pending(batch)
        except Exception:  # the database may be briefly away; keep the thread alive
            log.exception("callback inbox round failed; retrying")
            stats = Stats()
        finally:
            close_old_connections()
        if stats.claimed < batch:
            stop.wait(poll)
    close_old_connections()
