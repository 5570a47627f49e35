"""Real worker processes against a fake provider: a worker killed mid-dispatch and restarted
sends nothing twice and loses nothing; on PostgreSQL two workers share a queue without ever
sending the same message."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from tests.fakes.aliyun_sms import FakeAliyunSms

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def database_url(tmp_path):
    """A database of its own (the test database is not visible to other processes)."""
    base = os.environ.get("SIYU_DATABASE_URL", "")
    if base.startswith("postgres"):
        import psycopg

        name = f"siyu_proc_{uuid.uuid4().hex[:8]}"
        admin = base.replace("postgres://", "postgresql://").rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        yield base.rsplit("/", 1)[0] + "/" + name
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    else:
        yield f"sqlite:///{tmp_path / 'procs.sqlite3'}"


def env_for(url: str, lease: int = 2) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        SIYU_DATABASE_URL=url,
        SIYU_DEBUG="1",
        SIYU_DISPATCH_LEASE_SECONDS=str(lease),
        SIYU_SECRET_KEY="proc-test-secret-key-proc-test-secret-key-0123456789",
    )
    env.pop("SIYU_TESTING", None)
    return env


def run_script(url: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "crash_scenario.py"), *args],
        env=env_for(url),
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def dispatcher(url: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "siyu.cli", "dispatch", *args],
        env=env_for(url),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def states(url: str) -> list[dict]:
    return json.loads(run_script(url, "report"))


def test_worker_killed_mid_dispatch_and_restarted_sends_each_message_once(database_url):
    n = 6
    with FakeAliyunSms() as fake:
        run_script(database_url, "setup", fake.url, str(n), "1")  # one SendSms (with OutId) per message
        # The provider accepts the third call, then answers slowly: the worker dies while waiting.
        fake.fail_next(2, delay=0.0)
        fake.fail_next(1, delay=30.0, accept=True)
        worker = dispatcher(database_url)
        try:
            wait_for(lambda: len(fake.sends) >= 3)
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
        finally:
            if worker.poll() is None:
                worker.kill()
        before = states(database_url)
        assert Counter(r["state"] for r in before)["sending"] >= 1  # left in flight by the dead worker
        time.sleep(2.5)  # the lease expires
        restarted = dispatcher(database_url, "--once")
        out, _ = restarted.communicate(timeout=120)
        assert restarted.returncode == 0, out.decode()[-2000:]
        after = states(database_url)
    per_phone = Counter(s.phone for s in fake.sends)
    assert len(per_phone) == n and set(per_phone.values()) == {1}, per_phone  # nothing twice, nothing lost
    assert Counter(r["state"] for r in after) == {"sent": n}


def test_worker_killed_during_a_batch_send_leaves_the_batch_unknown_never_resent(database_url):
    """One SendBatchSms carries every message (same template): Aliyun cannot tell afterwards
    which numbers a batch without OutIds reached, so recovery marks them unknown for the
    operator instead of sending again."""
    n = 6
    with FakeAliyunSms() as fake:
        run_script(database_url, "setup", fake.url, str(n), "0")
        fake.fail_next(1, delay=30.0, accept=True)
        worker = dispatcher(database_url)
        try:
            wait_for(lambda: len(fake.sends) >= n)
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
        finally:
            if worker.poll() is None:
                worker.kill()
        time.sleep(2.5)
        restarted = dispatcher(database_url, "--once")
        out, _ = restarted.communicate(timeout=120)
        assert restarted.returncode == 0, out.decode()[-2000:]
        after = states(database_url)
    assert Counter(s.phone for s in fake.sends) == Counter({s.phone: 1 for s in fake.sends}) and len(fake.sends) == n
    assert Counter(r["state"] for r in after) == {"unknown": n}


@pytest.mark.skipif(
    not os.environ.get("SIYU_DATABASE_URL", "").startswith("postgres"),
    reason="SKIP LOCKED claims: concurrent dispatchers are a PostgreSQL deployment (SQLite runs one writer)",
)
def test_two_workers_on_postgresql_never_send_the_same_message(database_url):
    n = 120
    with FakeAliyunSms() as fake:
        run_script(database_url, "setup", fake.url, str(n), "1")
        # Slow every answer a little so the two workers overlap.
        fake.fail_next(n, delay=0.02, accept=True)
        workers = [dispatcher(database_url, "--once", "--batch", "20") for _ in range(2)]
        outputs = [w.communicate(timeout=180)[0].decode() for w in workers]
        assert all(w.returncode == 0 for w in workers), outputs
        rows = states(database_url)
    per_phone = Counter(s.phone for s in fake.sends)
    assert len(per_phone) == n and set(per_phone.values()) == {1}
    assert Counter(r["state"] for r in rows) == {"sent": n}
    # Both workers took part (the claims really were shared).
    claimers = Counter(r["claimed_by"] for r in rows)
    assert len(claimers) == 2, claimers
