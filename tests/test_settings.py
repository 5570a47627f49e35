import subprocess
import sys


def run_settings(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='siyu.settings'; django.setup()"
    return subprocess.run(
        [sys.executable, "-c", code], env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True
    )


def test_secret_key_is_refused_when_missing_outside_debug():
    result = run_settings({})
    assert result.returncode != 0
    assert "SIYU_SECRET_KEY" in result.stderr


def test_secret_key_is_refused_when_default_outside_debug():
    result = run_settings({"SIYU_SECRET_KEY": "siyu-insecure-development-key-change-me"})
    assert result.returncode != 0
    assert "SIYU_SECRET_KEY" in result.stderr


def test_debug_allows_development_key():
    result = run_settings({"SIYU_DEBUG": "1"})
    assert result.returncode == 0, result.stderr


def test_bad_boolean_is_an_error():
    result = run_settings({"SIYU_DEBUG": "maybe"})
    assert result.returncode != 0
    assert "SIYU_DEBUG must be a boolean" in result.stderr
