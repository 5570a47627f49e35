"""Callback pushes answered in front of Django's request stack.

A push is verified, decrypted, parsed and stored by ``views.accept_push``, the same function the
Django views use. Building Django's request, running ten middlewares and resolving the URL
cost more CPU than all of that together (measured: ~0.7 ms per push through Django, ~0.3 ms
here). WeCom and the Official Account send bursts, so ``siyu.wsgi`` wraps the application with
``wrap``.

Only POSTs to ``/callbacks/wecom/<slug>/`` and ``/callbacks/oa/<slug>/`` take this path. Nothing
of Django's middleware is wanted there: there are no sessions, no CSRF and no HTML. URL
verification (GET) and everything else go to Django. The database connection is managed as
Django's request signals manage it: old or broken connections are closed before and after.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from django.db import close_old_connections

from siyu.wecom import receipts, views
from siyu.wecom.models import CallbackReceipt

log = logging.getLogger("siyu.wecom.callbacks")
CALLBACK_PATH = re.compile(r"^/callbacks/(wecom|oa)/([-a-zA-Z0-9_]+)/$")  # the urls.py routes
SOURCES = {"wecom": CallbackReceipt.Source.WECOM, "oa": CallbackReceipt.Source.OA}
REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 413: "Payload Too Large", 500: "Internal Server Error"}

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def wrap(application: WsgiApp) -> WsgiApp:
    """``application`` with callback pushes taken off in front of it."""

    def callbacks_first(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "POST":
            match = CALLBACK_PATH.match(environ.get("PATH_INFO", ""))
            if match is not None:
                return _push(environ, start_response, SOURCES[match.group(1)], match.group(2))
        return application(environ, start_response)

    return callbacks_first


def _push(environ: dict[str, Any], start_response: Callable[..., Any], source: str, slug: str) -> list[bytes]:
    remote = environ.get("REMOTE_ADDR", "?")
    close_old_connections()
    try:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = views.MAX_BODY + 1
        if length > views.MAX_BODY:
            status, answer = views.refuse(source, "POST", slug, remote, 413, "body too large")
        else:
            body = environ["wsgi.input"].read(length) if length > 0 else b""
            query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
            status, answer = views.accept_push(source, slug, query, body, remote)
    except receipts.NotStored as exc:  # the writer logged why, once for its batch
        log.warning("%s callback for %s not stored: %s", source, slug, exc.__cause__ or exc)
        status, answer = 500, b""
    except Exception:  # the database is away, a bug: the platform retries a 500
        log.exception("%s callback for %s failed", source, slug)
        status, answer = 500, b""
    finally:
        close_old_connections()
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(answer)))]
    start_response(f"{status} {REASONS.get(status, 'Error')}", headers)
    return [answer]
