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
