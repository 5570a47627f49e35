"""The callback inbox: pushes stored by the endpoint, applied once by the worker, in order per
subject, retried with back-off and finally left visible as failed; and the endpoint's
configuration cache (a reconfigured token takes effect)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection

from siyu.customers.models import Customer, StaffRelation
from siyu.tracking.models import Event
from siyu.wecom import endpoints, inbox, services
from siyu.wecom.crypto import MsgCrypt
from siyu.wecom.models import CallbackReceipt, WecomApp
from tests.fakes.wecom import encrypted_callback, verification_query
from tests.test_wecom_callbacks import AES_KEY, CORP, TOKEN, URL, add_event, post, push

T0 = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
REAL_HANDLE = services.handle_event


@pytest.fixture(autouse=True)
def fresh_endpoint_cache():
    endpoints.invalidate()
    yield
    endpoints.invalidate()


@pytest.fixture
def clock(monkeypatch):
    """siyu's clock, pinned; ``clock.at(t)`` moves it."""

    class Clock:
        now = T0

        def at(self, value):
            self.now = value

    state = Clock()
    monkeypatch.setattr("siyu.core.clock.now", lambda: state.now)
    return state


@pytest.fixture
def wecom_app(brand):
    return services.configure_wecom(
        brand.workspace,
        corp_id=CORP,
        agent_id="1000002",
        secret="app-secret-abcdef123456",
        token=TOKEN,
        aes_key=AES_KEY,
    )


@pytest.fixture
def crypt():
    return MsgCrypt(TOKEN, AES_KEY, CORP)


class Boom(Exception):
    pass


def failing(monkeypatch, should_fail):
    """Make ``handle_event`` raise for events ``should_fail(event)`` picks; returns the log of
    (change_type, external id) actually applied."""
    applied = []
    real = services.handle_event

    def handle(workspace, event):
        if should_fail(event):
            raise Boom("WeCom said no")
        real(workspace, event)
        applied.append((event.change_type, getattr(event, "external_user_id", "")))

    monkeypatch.setattr(services, "handle_event", handle)
    return applied


# ---- exactly once --------------------------------------------------------------------------


def test_retries_before_and_after_the_inbox_runs_are_applied_once(client, wecom_app, crypt, clock):
    xml = add_event()
    for _ in range(3):
        assert push(client, crypt, xml).status_code == 200
    assert inbox.process_all().processed == 1
    assert push(client, crypt, xml).status_code == 200
    assert inbox.process_all().claimed == 0
    assert CallbackReceipt.objects.count() == 1
    assert Event.objects.filter(name="wecom_friend_added").count() == 1


def test_sequential_workers_claim_in_id_order_and_never_twice(client, wecom_app, crypt, clock, monkeypatch):
    applied = failing(monkeypatch, lambda event: False)
    for n in range(5):
        push(client, crypt, add_event(external=f"wmEXT{n}", at=1_790_000_000 + n))
    first, second = inbox.process_pending(limit=2), inbox.process_pending(limit=2)
    assert (first.processed, second.processed) == (2, 2)
    assert inbox.process_pending(limit=10).processed == 1
    assert inbox.process_pending(limit=10).claimed == 0
    assert [ext for _, ext in applied] == [f"wmEXT{n}" for n in range(5)]


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_never_apply_a_receipt_twice(client, wecom_app, crypt, monkeypatch):
    """PostgreSQL: worker A holds its claimed receipts (mid-apply) while worker B claims;
    B skips A's rows and takes the rest."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has one writer at a time: covered by the sequential test")
    for n in range(6):
        push(client, crypt, add_event(external=f"wmEXT{n}", at=1_790_000_000 + n))
    inside, release = threading.Event(), threading.Event()
    applied: list[tuple[str, str]] = []
    real = services.handle_event

    def handle(workspace, event):
        if threading.current_thread().name == "A":
            inside.set()
            assert release.wait(10)
        real(workspace, event)
        applied.append((threading.current_thread().name, event.external_user_id))

    monkeypatch.setattr(services, "handle_event", handle)
    results = {}

    def run(name, limit):
        try:
            results[name] = inbox.process_pending(limit=limit)
        finally:
            connection.close()

    a = threading.Thread(target=run, args=("A", 3), name="A")
    a.start()
    assert inside.wait(10)
    b = threading.Thread(target=run, args=("B", 10), name="B")
    b.start()
    b.join(10)
    b_finished_while_a_held_its_rows = not b.is_alive()
    release.set()
    a.join(10)
    b.join(10)
    assert b_finished_while_a_held_its_rows  # SKIP LOCKED: B did not wait for A
    assert (results["A"].processed, results["B"].processed) == (3, 3)
    assert sorted(ext for _, ext in applied) == [f"wmEXT{n}" for n in range(6)]
    assert {ext for name, ext in applied if name == "A"} == {"wmEXT0", "wmEXT1", "wmEXT2"}
    assert CallbackReceipt.objects.filter(processed_at__isnull=True).count() == 0
    assert StaffRelation.objects.count() == 6


class WorkerDied(BaseException):
    """Not an Exception: like the process being killed, nothing catches it."""


def test_a_worker_dying_mid_apply_leaves_nothing_half_done(client, wecom_app, crypt, clock, monkeypatch):
    push(client, crypt, add_event())
    real = services.friend_added

    def die_after_writing(workspace, event):
        real(workspace, event)  # customer, relation and timeline written ...
        raise WorkerDied  # ... then the worker is gone before it marks the receipt

    monkeypatch.setattr(services, "friend_added", die_after_writing)
    with pytest.raises(WorkerDied):
        inbox.process_pending()
    assert Customer.objects.count() == 0 and Event.objects.count() == 0
    assert CallbackReceipt.objects.get().processed_at is None
    monkeypatch.setattr(services, "friend_added", real)
    assert inbox.process_all().processed == 1
    assert Customer.objects.count() == 1 and Event.objects.filter(name="wecom_friend_added").count() == 1


# ---- failures, back-off, ordering ------------------------------------------------------------


def test_a_failing_receipt_backs_off_and_ends_visible_as_failed(client, wecom_app, crypt, clock, monkeypatch):
    failing(monkeypatch, lambda event: True)
    push(client, crypt, add_event())
    receipt = CallbackReceipt.objects.get()
    now = T0
    for attempt in range(1, inbox.MAX_ATTEMPTS + 1):
        stats = inbox.process_pending()
        assert stats.claimed == 1
        receipt.refresh_from_db()
        assert receipt.attempts == attempt and receipt.error == "Boom: WeCom said no"
        if attempt < inbox.MAX_ATTEMPTS:
            assert stats.retrying == 1 and receipt.failed_at is None
            assert receipt.next_attempt_at == now + inbox.backoff(attempt)
            clock.at(receipt.next_attempt_at - dt.timedelta(seconds=1))
            assert inbox.process_pending().claimed == 0  # not before its time
            now = receipt.next_attempt_at
            clock.at(now)
    assert stats.failed == 1 and receipt.failed_at == now and receipt.processed_at is None
    clock.at(now + dt.timedelta(days=30))
    assert inbox.process_pending().claimed == 0  # left for the operator, not retried, not dropped
    assert CallbackReceipt.objects.filter(failed_at__isnull=False).count() == 1

    monkeypatch.setattr(services, "handle_event", REAL_HANDLE)  # the cause is fixed
    assert inbox.retry_failed(wecom_app.workspace) == 1
    assert inbox.process_all().processed == 1
    receipt.refresh_from_db()
    assert receipt.processed_at is not None and receipt.error == ""
    assert StaffRelation.objects.count() == 1


def test_one_subjects_events_wait_for_an_earlier_retry(client, brand, wecom_app, crypt, clock, monkeypatch):
    """An add that fails keeps the delete that followed it waiting; other customers go on."""
    fail_once = {"left": 1}

    def should_fail(event):
        if event.external_user_id == "wmX" and event.change_type == "add_external_contact" and fail_once["left"]:
            fail_once["left"] -= 1
            return True
        return False

    applied = failing(monkeypatch, should_fail)
    push(client, crypt, add_event(external="wmX", at=1_790_000_000))
    push(client, crypt, add_event(external="wmX", change="del_follow_user", at=1_790_000_001))
    push(client, crypt, add_event(external="wmY", at=1_790_000_002))
    stats = inbox.process_all()
    assert (stats.processed, stats.retrying) == (1, 1)
    assert applied == [("add_external_contact", "wmY")]
    clock.at(T0 + inbox.backoff(1))
    inbox.process_all()
    assert applied[1:] == [("add_external_contact", "wmX"), ("del_follow_user", "wmX")]
    relation = StaffRelation.objects.get(customer__identities__value="wmX")
    assert relation.status == StaffRelation.Status.DELETED_BY_CUSTOMER


def test_group_events_wait_for_wecom_to_settle(client, wecom_app, crypt, clock, monkeypatch):
    from tests.fakes.wecom import event_xml

    applied = []
    monkeypatch.setattr(services, "handle_event", lambda ws, event: applied.append(event.chat_id))
    push(client, crypt, event_xml(CORP, "change_external_chat", "create", create_time=1_790_000_000, ChatId="wrC1"))
    assert inbox.process_all().claimed == 0
    clock.at(T0 + services.CHAT_SETTLE)
    assert inbox.process_all().processed == 1 and applied == ["wrC1"]


# ---- the endpoint cache --------------------------------------------------------------------


@pytest.fixture
def ticking(monkeypatch):
    """The cache's monotonic clock, moved by hand."""
    state = {"now": 1000.0}
    monkeypatch.setattr(endpoints, "monotonic", lambda: state["now"])
    return state


def test_a_token_changed_in_another_process_takes_effect(client, brand, wecom_app, crypt, ticking):
    assert push(client, crypt, add_event(at=1_790_000_000)).status_code == 200  # cached now
    # Another process (siyu wecom configure) saves a new token: this process's cache is not told.
    new_token = "RotatedToken2027"
    WecomApp.objects.filter(pk=wecom_app.pk).update(
        callback_token=new_token, updated_at=wecom_app.updated_at + dt.timedelta(seconds=5)
    )
    rotated = MsgCrypt(new_token, AES_KEY, CORP)
    ticking["now"] += endpoints.RELOAD_AFTER_REJECT + 0.1
    # WeCom verifies the URL with the new token, then pushes with it: both accepted at once.
    query, echo = verification_query(rotated)
    response = client.get(URL, query)
    assert response.status_code == 200 and response.content == echo.encode()
    assert push(client, rotated, add_event(at=1_790_000_001)).status_code == 200
    # The old token is refused from now on.
    assert push(client, crypt, add_event(at=1_790_000_002)).status_code == 403
    assert CallbackReceipt.objects.count() == 2


def test_the_cache_rechecks_the_row_after_its_ttl(client, brand, wecom_app, crypt, ticking):
    assert push(client, crypt, add_event(at=1_790_000_000)).status_code == 200
    new_key = "A" * 43
    WecomApp.objects.filter(pk=wecom_app.pk).update(updated_at=wecom_app.updated_at + dt.timedelta(seconds=5))
    # Within the TTL and without a rejection the cached endpoint is used (no query).
    ticking["now"] += endpoints.TTL / 2
    assert push(client, crypt, add_event(at=1_790_000_001)).status_code == 200
    # Past the TTL the changed updated_at rebuilds it; a changed key is then in force.
    from siyu.channels.crypto import encrypt_secrets

    WecomApp.objects.filter(pk=wecom_app.pk).update(
        secret=encrypt_secrets({"secret": "app-secret-abcdef123456", "aes_key": new_key}),
        updated_at=wecom_app.updated_at + dt.timedelta(seconds=9),
    )
    ticking["now"] += endpoints.TTL
    assert push(client, crypt, add_event(at=1_790_000_002)).status_code == 400  # the old key: undecryptable
    assert push(client, MsgCrypt(TOKEN, new_key, CORP), add_event(at=1_790_000_003)).status_code == 200
    assert CallbackReceipt.objects.count() == 3


def test_configuring_in_this_process_drops_the_cached_endpoint(client, brand, wecom_app, crypt):
    assert push(client, crypt, add_event(at=1_790_000_000)).status_code == 200
    services.configure_wecom(
        brand.workspace, corp_id=CORP, agent_id="1000002", secret="s-123456", token="NewToken1", aes_key=AES_KEY
    )
    assert push(client, crypt, add_event(at=1_790_000_001)).status_code == 403
    assert push(client, MsgCrypt("NewToken1", AES_KEY, CORP), add_event(at=1_790_000_002)).status_code == 200


def test_forged_pushes_do_not_reload_the_configuration_each_time(
    client, wecom_app, crypt, ticking, django_assert_num_queries
):
    push(client, crypt, add_event(at=1_790_000_000))
    forged = MsgCrypt("GuessedToken", AES_KEY, CORP)
    query, body = encrypted_callback(forged, add_event(at=1_790_000_001))
    ticking["now"] += endpoints.RELOAD_AFTER_REJECT + 0.1
    with django_assert_num_queries(1):  # reloads once (the app row): unchanged, still refused
        assert post(client, query, body).status_code == 403
    with django_assert_num_queries(0):
        assert post(client, query, body).status_code == 403  # within the reload interval: no query


def test_cli_applies_due_callbacks_and_requeues_failed_ones(client, brand, wecom_app, crypt, clock, monkeypatch):
    from click.testing import CliRunner

    from siyu.cli import main

    push(client, crypt, add_event())
    CallbackReceipt.objects.update(failed_at=T0, attempts=inbox.MAX_ATTEMPTS, error="Boom")
    runner = CliRunner()
    result = runner.invoke(main, ["wecom", "process-callbacks"])
    assert result.exit_code == 0, result.output
    assert "applied: 0" in result.output and StaffRelation.objects.count() == 0
    result = runner.invoke(main, ["wecom", "process-callbacks", "--retry-failed", "acme"])
    assert result.exit_code == 0, result.output
    assert "requeued: 1" in result.output and "applied: 1" in result.output
    assert StaffRelation.objects.count() == 1


def test_the_worker_loop_applies_what_is_due_and_keeps_going_after_an_error(
    client, wecom_app, crypt, clock, monkeypatch
):
    push(client, crypt, add_event())
    monkeypatch.setattr(inbox, "close_old_connections", lambda: None)  # the test's connection stays
    stop = threading.Event()
    rounds = []
    real = inbox.process_pending

    def round_(limit):
        rounds.append(limit)
        if len(rounds) == 1:
            raise RuntimeError("database away")  # logged; the loop goes on
        if len(rounds) == 3:
            stop.set()
        return real(limit)

    monkeypatch.setattr(inbox, "process_pending", round_)
    inbox.run_forever(stop, poll=0)
    assert len(rounds) == 3
    assert StaffRelation.objects.count() == 1 and CallbackReceipt.objects.get().processed_at is not None


def test_a_busy_subject_waiting_for_a_retry_does_not_hold_up_the_others(client, wecom_app, crypt, clock, monkeypatch):
    """More waiting receipts of one subject than a claim window: the claim looks past them."""
    applied = failing(
        monkeypatch, lambda event: event.external_user_id == "wmBUSY" and event.change_type.startswith("add")
    )
    push(client, crypt, add_event(external="wmBUSY", at=1_790_000_000))  # fails, backs off
    for n in range(1, 6):  # then five more events of the same contact wait behind it
        push(client, crypt, add_event(external="wmBUSY", change="del_follow_user", at=1_790_000_000 + n))
    push(client, crypt, add_event(external="wmOTHER", at=1_790_000_100))
    stats = inbox.process_pending(limit=2)  # windows [1 2] [3 4] [5 6] [7]: 1 and 7 are first of their subject
    assert (stats.claimed, stats.retrying, stats.processed) == (2, 1, 1)
    assert applied == [("add_external_contact", "wmOTHER")]
    assert inbox.process_pending(limit=2).claimed == 0  # the rest wait for wmBUSY's add
