"""Storing authenticated pushes in the inbox, with group commit on PostgreSQL.

A push is acknowledged only once its receipt is committed: WeCom and the Official Account do
not retry an event they got an answer for, so an answer before the row is durable could lose
it. A commit waits for PostgreSQL to flush its WAL to disk (``synchronous_commit`` stays on),
2-5 ms on the benchmark machine, and a single-row INSERT per push costs a round trip, a parse,
a plan and a commit per row: most of the CPU a push cost, on both sides.

So the request threads of a web process share one writer (``GroupCommit``): a thread puts its
row in the queue; if no INSERT is running it becomes the *leader* and writes everything
queued in one ``INSERT ... VALUES (...), (...) ON CONFLICT DO NOTHING`` (one statement, one
commit; prepared once per batch size and connection) on its own connection. Rows arriving
meanwhile queue up; when the INSERT returns, the leader hands the queue to its first waiter,
who writes the next batch. Every waiter is released only after the statement that carries its
row has committed, with the outcome of that statement:

- committed: answered 200 (a duplicate, also within one batch, is dropped by the unique
  constraint and answered the same);
- the connection broke: reconnected and the batch is written once more, which is safe because
  the INSERT is idempotent (a batch that did commit inserts nothing the second time);
- a row is refused (an integrity or data error): the statement is atomic, so nothing of the
  batch is stored; each row is then written on its own, so one bad row gets its 500 alone;
- anything else: every waiter of the batch raises ``NotStored`` (answered 500, the platform
  retries) and nothing of the batch is stored.

One batch is in flight per process at a time, which is what makes batches form: under load
the threads queue behind the running INSERT. A lone push costs one single-row INSERT, as
before. On SQLite (one writer anyway), inside a caller's transaction (tests, scripts: others'
rows must not ride on a transaction that may roll back) or with the setting
``SIYU_CALLBACK_GROUP_COMMIT = False``, the row is inserted with the caller's connection.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from django.conf import settings
from django.db import DataError, IntegrityError, InterfaceError, OperationalError, connection

from siyu.core import clock
from siyu.wecom import rules
from siyu.wecom.models import CallbackReceipt
from siyu.wecom.services import CHAT_SETTLE, Endpoint

log = logging.getLogger("siyu.wecom.callbacks")
MAX_BATCH = 64  # rows per INSERT (a prepared statement per size and connection)

COLUMNS = (
    "INSERT INTO wecom_callbackreceipt (workspace_id, source, dedupe_key, event_type, change_type, receiver, "
    "subject, received_at, next_attempt_at, payload, error, attempts) VALUES "
)
ON_CONFLICT = " ON CONFLICT (workspace_id, source, dedupe_key) DO NOTHING"


class NotStored(Exception):
    """The receipt was not committed: answer 500 so the platform retries the push."""


Row = tuple[int, str, str, str, str, str, str, Any, Any, str]


def row(endpoint: Endpoint, source: str, payload: dict[str, Any]) -> Row:
    """The receipt of one authenticated push: the dedupe key, the subject, the event and change
    type, the receiver, when it arrived, when it is due, and the payload as JSON."""
    if source == CallbackReceipt.Source.WECOM:
        key, subject = rules.wecom_dedupe_key(payload), rules.wecom_subject(payload)
    else:
        key, subject = rules.oa_dedupe_key(payload), rules.oa_subject(payload)
    event_type = str(payload.get("Event") or payload.get("MsgType") or "")[:64]
    change_type = str(payload.get("ChangeType") or "")[:64]
    now = clock.now()
    # WeCom updates group details a moment after it pushes the change: read them after that.
    due = now + CHAT_SETTLE if event_type == "change_external_chat" else None
    payload_json = json.dumps(payload, ensure_ascii=False)
    return (endpoint.workspace.pk, source, key, event_type, change_type, endpoint.receive_id[:64], subject, now, due,
            payload_json)  # fmt: skip


def insert_sql(count: int, vendor: str) -> str:
    payload = "%s::jsonb" if vendor == "postgresql" else "%s"
    values = f"(%s, %s, %s, %s, %s, %s, %s, %s, %s, {payload}, '', 0)"
    return COLUMNS + ", ".join([values] * count) + ON_CONFLICT


def store(receipt: Row) -> None:
    """Commit ``receipt`` (or find it already stored); raises ``NotStored`` or a database error
    if it was not, and then nothing of it is stored."""
    if (
        connection.vendor != "postgresql"
        or connection.in_atomic_block
        or not connection.get_autocommit()
        or not group_commit_enabled()
    ):
        with connection.cursor() as cursor:
            cursor.execute(insert_sql(1, connection.vendor), receipt)
        return
    writer.store(receipt)


def group_commit_enabled() -> bool:
    return getattr(settings, "SIYU_CALLBACK_GROUP_COMMIT", True)


class _Waiter:
    __slots__ = ("batch", "done", "error", "receipt")

    def __init__(self, receipt: Row) -> None:
        self.receipt = receipt
        self.done = threading.Event()
        self.batch: list[_Waiter] | None = None  # handed to this waiter to write: it leads
        self.error: BaseException | None = None


class GroupCommit:
    """One process's receipt writer (see the module docstring)."""

    def __init__(self, leaders: int = 1) -> None:
        self.max_leaders = leaders  # INSERTs in flight at once
        self._lock = threading.Lock()
        self._queue: list[_Waiter] = []
        self._leaders = 0
        self.batches = 0
        self.rows = 0

    def store(self, receipt: Row) -> None:
        me = _Waiter(receipt)
        with self._lock:
            self._queue.append(me)
            batch = self._take() if self._leaders < self.max_leaders else None
            if batch is not None:
                self._leaders += 1
        if batch is None:
            me.done.wait()
            batch = me.batch
        if batch is not None:  # this thread leads: its own row is in the batch
            try:
                self._write(batch)
            finally:
                with self._lock:
                    if self._queue:
                        following = self._take()
                        following[0].batch = following
                        following[0].done.set()
                    else:
                        self._leaders -= 1
        if me.error is not None:
            raise NotStored("the batch with this receipt failed") from me.error

    def _take(self) -> list[_Waiter]:
        batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
        return batch

    def queued(self) -> int:
        """Rows waiting behind the running INSERTs (for tests)."""
        with self._lock:
            return len(self._queue)

    def _write(self, batch: list[_Waiter]) -> None:
        try:
            self._insert([w.receipt for w in batch])
        except (IntegrityError, DataError) as exc:
            if len(batch) == 1:
                log.warning("a callback receipt was refused: %s", exc)
                batch[0].error = exc
            else:  # the statement stored nothing: each row on its own finds the one refused
                log.warning(
                    "a batch of %d callback receipts was refused (%s); writing them one by one", len(batch), exc
                )
                for waiter in batch:
                    self._write([waiter])
        except BaseException as exc:  # the database is away, a bug: nobody may wait for ever
            log.exception("storing a batch of %d callback receipts failed", len(batch))
            for waiter in batch:
                waiter.error = exc
        finally:
            for waiter in batch:
                waiter.done.set()

    def _insert(self, rows: list[Row]) -> None:
        """One INSERT of ``rows`` on the leader's connection (autocommit: it has committed when
        it returns); once more on a new connection if the connection broke, which is safe
        because the INSERT is idempotent."""
        import psycopg

        params = [value for receipt in rows for value in receipt]
        sql = insert_sql(len(rows), "postgresql")
        for attempt in (1, 2):
            try:
                connection.ensure_connection()
                with connection.wrap_database_errors:
                    # Server-side binding, prepared: parsed and planned once per batch size.
                    psycopg.Cursor(connection.connection).execute(sql, params, prepare=True)
            except (OperationalError, InterfaceError) as exc:
                if attempt == 2:
                    raise
                log.warning("the database connection failed while storing callback receipts (%s); reconnecting", exc)
                connection.close()
            else:
                break
        self.batches += 1
        self.rows += len(rows)


writer = GroupCommit()
