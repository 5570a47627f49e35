"""Django settings: the only module that reads the environment.

Every knob is a ``SIYU_*`` variable parsed by a small typed helper that fails
loudly on a bad value, so a typo in production is an error at start, not a
silent default.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent
INSECURE_DEFAULT_SECRET = "siyu-insecure-development-key-change-me"


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [part.strip() for part in raw.split(",") if part.strip()]


DEBUG = env_bool("SIYU_DEBUG", False)
# `siyu demo` sets SIYU_DEMO=1: a local, throwaway instance may run with the
# development key; anything else must bring its own.
DEMO_MODE = env_bool("SIYU_DEMO", False)
import sys  # noqa: E402

# The test runner needs no secret; pytest is detected so a bare `pytest` just works.
TESTING = env_bool("SIYU_TESTING", False) or "pytest" in sys.modules

SECRET_KEY = env_str("SIYU_SECRET_KEY", "")
if not SECRET_KEY or SECRET_KEY == INSECURE_DEFAULT_SECRET:
    if DEBUG or DEMO_MODE or TESTING:
        SECRET_KEY = INSECURE_DEFAULT_SECRET
    else:
        raise ImproperlyConfigured(
            "SIYU_SECRET_KEY is missing or is the insecure default. Set it to a long random string "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))'), or set SIYU_DEBUG=1 for development."
        )

ALLOWED_HOSTS = env_list("SIYU_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("SIYU_CSRF_TRUSTED_ORIGINS", [])

DEFAULT_SQLITE_PATH = Path.cwd() / "siyu.sqlite3"
DATABASE_URL = env_str("SIYU_DATABASE_URL", f"sqlite:///{DEFAULT_SQLITE_PATH}")
try:
    _database = dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("SIYU_DB_CONN_MAX_AGE", 60))
except ValueError as exc:  # unknown scheme
    raise ImproperlyConfigured(f"SIYU_DATABASE_URL is not a database URL we understand: {exc}") from exc

if _database["ENGINE"] == "django.db.backends.sqlite3":
    _database["CONN_MAX_AGE"] = 0
    _database["OPTIONS"] = {
        # WAL lets the web server read while a worker writes; IMMEDIATE makes a
        # writer take the lock at BEGIN instead of failing midway with "database is locked".
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; "
            "PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY;"
        ),
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    _database.setdefault("TEST", {})["NAME"] = env_str("SIYU_TEST_SQLITE_NAME", "") or None
elif _database["ENGINE"] == "django.db.backends.postgresql":
    _database.setdefault("OPTIONS", {})
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "bootstrap",
    "django_tasks",
    "django_tasks_db",
    "ninja",
    "siyu.core",
    "siyu.org",
    "siyu.customers",
    "siyu.tags",
    "siyu.tracking",
    "siyu.conversations",
    "siyu.segments",
    "siyu.content",
    "siyu.channels",
    "siyu.messaging",
    "siyu.wecom",
    "siyu.acquisition",
    "siyu.handover",
    "siyu.workbench",
    "siyu.console",
    "siyu.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "siyu.console.middleware.LanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "siyu.urls"
WSGI_APPLICATION = "siyu.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "siyu.console.context.console",
            ],
        },
    }
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "console:login"
LOGIN_REDIRECT_URL = "console:dashboard"

# Chinese first, English available.
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = env_str("SIYU_TIME_ZONE", "Asia/Shanghai")

STATIC_URL = "static/"
# Only needed for `collectstatic` behind a separate web server; WhiteNoise serves from the finders.
STATIC_ROOT = Path(os.environ["SIYU_STATIC_ROOT"]) if os.environ.get("SIYU_STATIC_ROOT") else None
# Plotly's own bundle ships inside the plotly wheel; serve it from there.
import plotly as _plotly  # noqa: E402

STATICFILES_DIRS = [("plotly", Path(_plotly.__file__).parent / "package_data")]
# No collectstatic step for a newcomer: WhiteNoise serves straight from the finders.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if env_bool("SIYU_HTTPS", False):
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": ["default"],
    }
}
if TESTING:
    TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    # Tests create and log in many users; the production hasher is deliberately slow.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# API batches: the contract says up to 1,000 items; a body larger than this is refused before parsing.
API_MAX_BATCH = 1000
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("SIYU_MAX_BODY_BYTES", 16 * 1024 * 1024)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("SIYU_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # httpx logs every request URL at INFO: WeCom puts access_token in the query string, and
        # provider URLs must not land in logs. Our own code logs provider answers without secrets.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}

# Channel credentials are encrypted with this key (Fernet). Without it a key is derived from
# SECRET_KEY, so rotating SECRET_KEY then needs the credentials entered again.
CREDENTIALS_KEY = env_str("SIYU_CREDENTIALS_KEY", "")
# The address customers reach this instance at: tracked links, unsubscribe links and provider
# callbacks are built on it.
PUBLIC_URL = env_str("SIYU_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
MEDIA_ROOT = Path(env_str("SIYU_MEDIA_ROOT", str(Path.cwd() / "siyu-media")))
MEDIA_URL = "/media/"
# How long a dispatcher may hold claimed outbox rows before another worker treats it as dead
# and asks the provider what became of them.
DISPATCH_LEASE_SECONDS = env_int("SIYU_DISPATCH_LEASE_SECONDS", 300)
# Hours between periodic WeCom reconciliations of each configured workspace (siyu worker).
WECOM_SYNC_HOURS = env_int("SIYU_WECOM_SYNC_HOURS", 6)
# Hours a WeCom mass-send task waits for its staff member to confirm before its unsent
# messages count as not confirmed (messaging.wecom_poll).
WECOM_MASS_TASK_HOURS = env_int("SIYU_WECOM_MASS_TASK_HOURS", 72)
