"""Periodic jobs run by ``siyu worker``: reconciliation, result polling, housekeeping.

An app declares its jobs in a ``jobs`` module (found by autodiscovery)::

    from siyu.core.schedule import job

    @job("wecom.poll_group_messages", every=300)
    def poll_group_messages() -> dict:
        ...  # iterate the workspaces itself; return a small JSON-able summary

Any number of workers may run the scheduler: a due job is claimed with one conditional
UPDATE (``next_due_at <= now`` and not running → ``now + every``, running for at most
``lease`` seconds), so exactly one worker runs it per period and a job slower than its period
never runs twice at once. A job that raises is recorded with its error and tried again at its
next period; a worker that dies mid-job leaves it claimable once its lease has passed. The
worker's scheduler thread runs each claimed job in its own thread, so a long reconciliation
does not hold up the five-minute result polls.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import close_old_connections, connection
from django.db.models import Q

from siyu.core import clock

log = logging.getLogger("siyu.schedule")


@dataclass(frozen=True)
class Job:
    name: str
    every: float  # seconds between runs
    fn: Callable[[], Any]
    lease: float = 0.0  # longest a run may take before another worker may start it; 0: default

    @property
    def lease_seconds(self) -> float:
        return self.lease or max(self.every, MIN_LEASE)


MIN_LEASE = 900.0


_JOBS: dict[str, Job] = {}
_discovered = False


def job(name: str, *, every: float, lease: float = 0.0) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
    """Register ``fn`` to run every ``every`` seconds (at most once per period across workers,
    never twice at once; ``lease``: the longest a run may take, default max(every, 15 min))."""

    def register(fn: Callable[[], Any]) -> Callable[[], Any]:
        _JOBS[name] = Job(name, float(every), fn, float(lease))
        return fn

    return register


def jobs() -> dict[str, Job]:
    """Every registered job, after importing each installed app's ``jobs`` module."""
    global _discovered
    if not _discovered:
        from django.utils.module_loading import autodiscover_modules

        autodiscover_modules("jobs")
        _discovered = True
    return dict(_JOBS)


def _claim(job_: Job, now: dt.datetime) -> bool:
    from siyu.core.models import PeriodicRun

    PeriodicRun.objects.get_or_create(key=job_.name, defaults={"next_due_at": now})
    not_running = Q(running_until__isnull=True) | Q(running_until__lte=now)
    claimed = PeriodicRun.objects.filter(not_running, key=job_.name, next_due_at__lte=now).update(
        next_due_at=now + dt.timedelta(seconds=job_.every),
        last_started_at=now,
        running_until=now + dt.timedelta(seconds=job_.lease_seconds),
    )
    return claimed == 1


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return str(value)


def run_job(job_: Job) -> tuple[bool, Any]:
    """Run one job now and record how it went (no claim: the caller decided it is due)."""
    from siyu.core.models import PeriodicRun

    PeriodicRun.objects.get_or_create(key=job_.name, defaults={"next_due_at": clock.now()})
    try:
        result = job_.fn()
    except Exception as exc:  # a failing job must not stop the others; the operator reads the error
        log.exception("periodic job %s failed", job_.name)
        PeriodicRun.objects.filter(key=job_.name).update(
            last_finished_at=clock.now(),
            last_ok=False,
            last_error=f"{type(exc).__name__}: {exc}"[:500],
            running_until=None,
        )
        return False, None
    result = _json_safe(result if isinstance(result, dict) else {"result": result})
    PeriodicRun.objects.filter(key=job_.name).update(
        last_finished_at=clock.now(), last_ok=True, last_result=result, last_error="", running_until=None
    )
    return True, result


def run_due(now: dt.datetime | None = None, *, only: set[str] | None = None) -> dict[str, Any]:
    """Run every job that is due and that this worker claims, one after the other;
    ``{name: result}``."""
    now = now or clock.now()
    ran: dict[str, Any] = {}
    for job_ in claim_due(now, only=only):
        ok, result = run_job(job_)
        ran[job_.name] = result if ok else {"error": True}
    return ran


def claim_due(now: dt.datetime | None = None, *, only: set[str] | None = None) -> list[Job]:
    """The due jobs this worker claimed (each must then be run with ``run_job``)."""
    now = now or clock.now()
    return [job_ for name, job_ in sorted(jobs().items()) if (only is None or name in only) and _claim(job_, now)]


def _run_in_thread(job_: Job) -> None:
    try:
        run_job(job_)
    finally:
        connection.close()  # this thread's own connection


def run_forever(stop: threading.Event | None = None, *, tick: float = 5.0) -> None:
    """The worker's scheduler thread: every ``tick`` seconds, start each due job it claims
    in a thread of its own (a long job never delays the others)."""
    stop = stop or threading.Event()
    while not stop.is_set():
        close_old_connections()
        try:
            for job_ in claim_due():
                threading.Thread(target=_run_in_thread, args=(job_,), name=f"job:{job_.name}", daemon=True).start()
        except Exception:  # the database may be briefly away; keep the thread alive
            log.exception("scheduler tick failed")
        stop.wait(tick)
    close_old_connections()
