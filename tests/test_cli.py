"""The `siyu` command against a scratch SQLite file, as a newcomer would run it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.fixture
def run(tmp_path):
    env = {**os.environ, "SIYU_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}", "SIYU_SECRET_KEY": "k" * 50}
    env.pop("SIYU_TESTING", None)

    def siyu(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "siyu.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        if ok:
            assert result.returncode == 0, result.stderr
        return result

    siyu("migrate")
    return siyu


def test_workspace_admin_and_api_key(run):
    run("workspace", "create", "--slug", "mybrand", "--name", "我的品牌")
    again = run("workspace", "create", "--slug", "mybrand", "--name", "x", ok=False)
    assert again.returncode != 0 and "already exists" in again.stderr
    bad = run("workspace", "create", "--slug", "My Brand", "--name", "x", ok=False)
    assert "slug" in bad.stderr
    run("createadmin", "--username", "boss", "--password", "pw-12345678", "--workspace", "mybrand")
    key = run("apikey", "create", "--workspace", "mybrand", "--name", "crm").stdout.strip().splitlines()[-1]
    assert key.startswith("siyu_") and len(key) > 40
    missing = run("apikey", "create", "--workspace", "nope", ok=False)
    assert missing.returncode != 0 and "does not exist" in missing.stderr


def test_secret_key_required_outside_debug(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIYU_")}
    env["SIYU_DATABASE_URL"] = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    result = subprocess.run([sys.executable, "-m", "siyu.cli", "migrate"], env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "SIYU_SECRET_KEY" in result.stderr


def test_segments_refresh_runs_for_every_workspace_and_can_recompute_layers(run):
    run("workspace", "create", "--slug", "mybrand", "--name", "我的品牌")
    first = run("segments", "refresh", "--with-layers").stdout
    assert "mybrand: layers for 0 customers" in first and "mybrand: 0 segments" in first
    missing = run("segments", "refresh", "--workspace", "nope", ok=False)
    assert missing.returncode != 0 and "does not exist" in missing.stderr
