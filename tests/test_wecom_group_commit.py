"""Group commit of callback receipts (``siyu.wecom.receipts``): concurrent pushes of one process
share an INSERT and its commit, and each is answered only with the outcome of the statement that
carried its row.

The tests hold the first leader inside its INSERT until the other pushes have queued behind it,
so the batches are known without any timing: the next leader writes exactly the queued rows.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from siyu.wecom import endpoints, fastpath, receipts, services
from siyu.wecom.crypto import MsgCrypt
from siyu.wecom.models import CallbackReceipt
from tests.fakes.wecom import encrypted_callback
from tests.test_wecom_callbacks import AES_KEY, CORP, TOKEN, add_event
from tests.test_wecom_fastpath import Django, call

WAIT = 10  # seconds: only a bound for a broken test, never reached when it passes


@pytest.fixture
def app(brand):
    endpoints.invalidate()
    services.configure_wecom(
        brand.workspace, corp_id=CORP, agent_id="1000002", secret="app-secret-abcdef123456", token=TOKEN,
        aes_key=AES_KEY,
    )  # fmt: skip
    yield fastpath.wrap(Django())
    endpoints.invalidate()


def pushes(count, *, first=0):
    crypt = MsgCrypt(TOKEN, AES_KEY, CORP)
    return [encrypted_callback(crypt, add_event(external=f"wmEXT{n:04d}", at=1_790_000_000 + n))
            for n in range(first, first + count)]  # fmt: skip


class Held:
    """Wraps ``GroupCommit._insert``: records each batch's external ids, holds the first INSERT
    until released, and fails the batches ``fail`` says to."""

    def __init__(self, monkeypatch, fail=None):
        self.batches: list[list[str]] = []
        self.inside, self.release = threading.Event(), threading.Event()
        self.fail = fail
        real = receipts.GroupCommit._insert

        def insert(writer, rows):
            self.batches.append([row[6] for row in rows])  # the subject: contact|<external id>
            if len(self.batches) == 1:
                self.inside.set()
                assert self.release.wait(WAIT)
            if self.fail is not None:
                self.fail(rows)
            real(writer, rows)

        monkeypatch.setattr(receipts.GroupCommit, "_insert", insert)


def send_all(app, requests, held, *, queued):
    """The first request becomes the leader and is held in its INSERT; the others are sent once
    it is inside and the writer is released when ``queued`` rows wait behind it."""
    answers: dict[int, tuple[int, bytes]] = {}

    def send(n, query, body):
        try:
            answers[n] = call(app, "POST", "/callbacks/wecom/acme/", query, body)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(n, *request)) for n, request in enumerate(requests)]
    threads[0].start()
    assert held.inside.wait(WAIT)
    for thread in threads[1:]:
        thread.start()
    for _ in range(WAIT * 100):
        if receipts.writer.queued() == queued:
            break
        threading.Event().wait(0.01)
    assert receipts.writer.queued() == queued
    held.release.set()
    for thread in threads:
        thread.join(WAIT)
    return [answers.get(n) for n in range(len(requests))]


postgresql_only = pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="SQLite has one writer: each push inserts its own row"
)


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_pushes_share_one_insert_and_are_all_stored_once(app, monkeypatch):
    held = Held(monkeypatch)
    answers = send_all(app, pushes(6), held, queued=5)
    assert answers == [(200, b"")] * 6
    assert [len(batch) for batch in held.batches] == [1, 5]  # the held leader, then everything queued
    stored = sorted(CallbackReceipt.objects.values_list("subject", flat=True))
    assert stored == [f"contact|wmEXT{n:04d}" for n in range(6)]


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_duplicates_inside_one_batch_are_stored_once_and_all_answered(app, monkeypatch):
    held = Held(monkeypatch)
    first, second = pushes(2)
    retry = encrypted_callback(MsgCrypt(TOKEN, AES_KEY, CORP), add_event(external="wmEXT0001", at=1_790_000_001))
    answers = send_all(app, [first, second, retry, second], held, queued=3)
    assert answers == [(200, b"")] * 4
    assert [len(batch) for batch in held.batches] == [1, 3]  # the same event three times in one INSERT
    assert CallbackReceipt.objects.count() == 2
    assert CallbackReceipt.objects.filter(subject="contact|wmEXT0001").count() == 1


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_database_failure_answers_every_waiter_500_and_stores_nothing_of_the_batch(app, monkeypatch, caplog):
    def away(rows):
        if len(rows) > 1:  # the batch behind the leader: the database goes away for both attempts
            from django.db import OperationalError

            raise OperationalError("server closed the connection unexpectedly")

    held = Held(monkeypatch, fail=away)
    with caplog.at_level("WARNING", logger="siyu.wecom.callbacks"):
        answers = send_all(app, pushes(5), held, queued=4)
    assert answers == [(200, b"")] + [(500, b"")] * 4  # the leader's own batch had committed
    assert list(CallbackReceipt.objects.values_list("subject", flat=True)) == ["contact|wmEXT0000"]
    assert sum("storing a batch of 4 callback receipts failed" in r.getMessage() for r in caplog.records) == 1
    # The platform retries the four: they are stored now, the first is not stored twice.
    for query, body in pushes(5):
        assert call(app, "POST", "/callbacks/wecom/acme/", query, body) == (200, b"")
    assert CallbackReceipt.objects.count() == 5


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_refused_row_fails_alone_and_the_rest_of_its_batch_is_stored(app, brand, monkeypatch):
    """A real database error: the row of a workspace that no longer exists breaks the foreign
    key, so PostgreSQL rolls the whole statement back; the rows are then written one by one."""

    def orphan(rows):
        for n, row in enumerate(rows):
            if row[6] == "contact|wmEXT0002":
                rows[n] = (brand.workspace.pk + 1000, *row[1:])

    held = Held(monkeypatch, fail=orphan)
    answers = send_all(app, pushes(4), held, queued=3)
    assert answers == [(200, b""), (200, b""), (500, b""), (200, b"")]
    assert [len(batch) for batch in held.batches] == [1, 3, 1, 1, 1]  # the batch, then its rows alone
    stored = sorted(CallbackReceipt.objects.values_list("subject", flat=True))
    assert stored == ["contact|wmEXT0000", "contact|wmEXT0001", "contact|wmEXT0003"]


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_broken_connection_is_replaced_and_the_batch_written_once(app, monkeypatch):
    """The INSERT is idempotent, so a batch whose connection broke is simply written again."""
    import psycopg

    calls = []

    original = psycopg.Cursor.execute

    def flaky(cursor, query, params=None, **kwargs):
        if "wecom_callbackreceipt" in str(query) and not calls:
            calls.append("broken")
            cursor.connection.close()  # as if the server had gone away mid-call
        return original(cursor, query, params, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", flaky)
    (query, body), = pushes(1)  # fmt: skip
    assert call(app, "POST", "/callbacks/wecom/acme/", query, body) == (200, b"")
    assert calls == ["broken"]
    assert CallbackReceipt.objects.count() == 1


@pytest.mark.django_db
def test_inside_a_transaction_the_row_is_written_with_the_callers_connection(
    app, monkeypatch, django_assert_num_queries
):
    """Others' rows must not ride on a transaction that may roll back (and SQLite has no group
    commit): the push's own single-row INSERT, which the caller's transaction commits."""
    monkeypatch.setattr(fastpath, "close_old_connections", lambda: None)  # keep the test's transaction
    (query, body), = pushes(1)  # fmt: skip
    call(app, "POST", "/callbacks/wecom/acme/", query, body)  # warms the endpoint cache
    (query, body), = pushes(1, first=1)  # fmt: skip
    batches_before = receipts.writer.batches
    with django_assert_num_queries(1):
        assert call(app, "POST", "/callbacks/wecom/acme/", query, body) == (200, b"")
    assert receipts.writer.batches == batches_before
    assert CallbackReceipt.objects.count() == 2
