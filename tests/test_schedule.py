"""Periodic jobs: claimed by one worker per period, failures recorded, results kept."""

from __future__ import annotations

import datetime as dt

import pytest

from siyu.core import schedule
from siyu.core.models import PeriodicRun

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def registry(monkeypatch):
    monkeypatch.setattr(schedule, "_JOBS", {})
    monkeypatch.setattr(schedule, "_discovered", True)
    monkeypatch.setattr("siyu.core.clock.now", lambda: T0)
    return schedule._JOBS


def test_a_due_job_runs_once_per_period_however_many_workers_ask(registry):
    calls = []
    schedule.job("demo.count", every=60)(lambda: calls.append(1) or {"n": len(calls)})

    assert schedule.run_due(T0) == {"demo.count": {"n": 1}}
    # A second worker in the same period finds it claimed.
    assert schedule.run_due(T0) == {}
    assert schedule.run_due(T0 + dt.timedelta(seconds=59)) == {}
    assert schedule.run_due(T0 + dt.timedelta(seconds=60)) == {"demo.count": {"n": 2}}
    run = PeriodicRun.objects.get(key="demo.count")
    assert run.last_ok is True and run.last_result == {"n": 2}
    assert run.next_due_at == T0 + dt.timedelta(seconds=120)


def test_a_failing_job_is_recorded_and_does_not_stop_the_others(registry):
    def broken():
        raise RuntimeError("WeCom said no")

    schedule.job("a.broken", every=10)(broken)
    schedule.job("b.fine", every=10)(lambda: "fine")

    ran = schedule.run_due(T0)
    assert ran == {"a.broken": {"error": True}, "b.fine": {"result": "fine"}}
    broken_run = PeriodicRun.objects.get(key="a.broken")
    assert broken_run.last_ok is False and "WeCom said no" in broken_run.last_error


def test_installed_apps_jobs_modules_are_discovered(monkeypatch):
    monkeypatch.setattr(schedule, "_discovered", False)
    # Whatever the apps declare, discovery must not fail and must return Job objects.
    found = schedule.jobs()
    assert all(isinstance(j, schedule.Job) and j.every > 0 for j in found.values())


def test_a_job_slower_than_its_period_is_not_started_again_while_it_runs(registry):
    """Worker A claims a reconciliation; its period passes while it still runs: worker B must
    not start a second one. If A dies, B may take over once A's lease has passed."""
    calls = []
    schedule.job("slow.reconcile", every=60, lease=600)(lambda: calls.append(1))

    [claimed] = schedule.claim_due(T0)  # worker A starts it (and, say, runs for 10 minutes)
    assert claimed.name == "slow.reconcile"
    assert schedule.claim_due(T0 + dt.timedelta(seconds=61)) == []  # due again, but running
    assert schedule.claim_due(T0 + dt.timedelta(seconds=599)) == []
    # A died without finishing: after the lease, B claims and runs it.
    assert schedule.run_due(T0 + dt.timedelta(seconds=601)) == {"slow.reconcile": {"result": None}}
    assert calls == [1]
    # Finished runs release the claim: the next period is claimable as usual.
    assert PeriodicRun.objects.get(key="slow.reconcile").running_until is None
    assert [j.name for j in schedule.claim_due(T0 + dt.timedelta(seconds=662))] == ["slow.reconcile"]


def test_the_default_lease_covers_at_least_the_period_and_fifteen_minutes():
    assert schedule.Job("x", 60, lambda: None).lease_seconds == 900
    assert schedule.Job("x", 6 * 3600, lambda: None).lease_seconds == 6 * 3600
    assert schedule.Job("x", 60, lambda: None, lease=30).lease_seconds == 30


def test_the_scheduler_thread_runs_claimed_jobs_in_threads_of_their_own(registry, monkeypatch):
    """A long job must not hold up the others: run_forever starts each in its own thread."""
    import threading

    started = []
    monkeypatch.setattr(schedule, "claim_due", lambda *a, **k: [schedule.Job("a", 1, lambda: None)])
    monkeypatch.setattr(schedule, "_run_in_thread", lambda job_: started.append(threading.current_thread().name))
    stop = threading.Event()
    runner = threading.Thread(target=schedule.run_forever, args=(stop,), kwargs={"tick": 0.01})
    runner.start()
    for _ in range(200):
        if started:
            break
        threading.Event().wait(0.01)
    stop.set()
    runner.join(5)
    assert started and started[0] == "job:a"
