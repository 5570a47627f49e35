"""Helpers shared by the benchmark scripts: a fresh PostgreSQL database, Django setup, timing."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("SIYU_BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
SECRET = "bench-" + "x" * 40


def fresh_pg_database(name: str) -> str:
    """Drop and create ``name``; return its URL."""
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgres://") + f"/{name}"


def setup_django(database_url: str) -> None:
    os.environ["SIYU_DATABASE_URL"] = database_url
    os.environ["SIYU_SECRET_KEY"] = SECRET
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")
    import django

    django.setup()


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def siyu(*args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "siyu"
    return subprocess.run([str(exe), *args], env={**os.environ, **(env or {})}, check=True, **kwargs)


@contextmanager
def timed(results: dict[str, float], key: str):
    start = time.perf_counter()
    yield
    results[key] = time.perf_counter() - start


def machine() -> str:
    cores = os.cpu_count()
    return f"{platform.machine()}, {cores} cores, Python {platform.python_version()}"
