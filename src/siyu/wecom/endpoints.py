"""The callback endpoints' configuration, cached in the process so a push costs no config SQL.

Building an endpoint means reading the app row, decrypting the stored EncodingAESKey and
deriving the AES key: more than the rest of a push. So each web process keeps the endpoint of
a slug and trusts it for ``TTL`` seconds; after that one small query compares the app row's
``updated_at`` and the endpoint is rebuilt only if it changed. Configuring in this process
(``services.configure_*``) drops the entry at once.

A token or key changed by another process (``siyu wecom configure``, another web worker) must
not wait for the TTL: WeCom verifies the URL with the new token right after the operator saves.
So a push or verification the cached endpoint rejects reloads the endpoint (at most once per
``RELOAD_AFTER_REJECT`` seconds per slug, so forged pushes cannot turn into a query each) and
is checked again if the configuration really changed. Unknown slugs are not cached: a newly
configured workspace works at once.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from siyu.wecom.models import CallbackReceipt, OfficialAccountApp, WecomApp

if TYPE_CHECKING:
    from siyu.wecom.services import Endpoint

TTL = 5.0
RELOAD_AFTER_REJECT = 1.0
monotonic = time.monotonic  # tests move it


@dataclass
class _Entry:
    endpoint: Endpoint
    updated_at: dt.datetime
    checked: float  # when the row was last known to be unchanged
    loaded: float  # when the endpoint was built


_cache: dict[tuple[str, str], _Entry] = {}
_lock = threading.Lock()


def _model(source: str) -> type[WecomApp] | type[OfficialAccountApp]:
    return WecomApp if source == CallbackReceipt.Source.WECOM else OfficialAccountApp


def _load(source: str, slug: str, now: float) -> _Entry | None:
    from siyu.wecom import services

    build = services.wecom_endpoint if source == CallbackReceipt.Source.WECOM else services.oa_endpoint
    loaded = build(slug)
    with _lock:
        if loaded is None:
            _cache.pop((source, slug), None)
            return None
        endpoint, updated_at = loaded
        entry = _cache[(source, slug)] = _Entry(endpoint, updated_at, now, now)
        return entry


def get(source: str, slug: str) -> Endpoint | None:
    """The endpoint of ``slug`` (None: unknown workspace or not configured)."""
    now = monotonic()
    entry = _cache.get((source, slug))
    if entry is not None and now - entry.checked < TTL:
        return entry.endpoint
    if entry is not None:
        current = _model(source).objects.filter(pk=entry.endpoint.app_pk).values_list("updated_at", flat=True).first()
        if current == entry.updated_at:
            entry.checked = now
            return entry.endpoint
    loaded = _load(source, slug, now)
    return loaded.endpoint if loaded is not None else None


def reload_after_reject(source: str, slug: str) -> Endpoint | None:
    """A push the cached endpoint rejected: the new endpoint if the configuration changed
    since it was cached, else None (the rejection stands)."""
    now = monotonic()
    entry = _cache.get((source, slug))
    if entry is None or now - entry.loaded < RELOAD_AFTER_REJECT:
        return None
    fresh = _load(source, slug, now)
    if fresh is None or fresh.updated_at == entry.updated_at:
        return None
    return fresh.endpoint


def invalidate(source: str | None = None, slug: str | None = None) -> None:
    """Forget cached endpoints (all, one source's, or one slug's)."""
    with _lock:
        for key in list(_cache):
            if (source is None or key[0] == source) and (slug is None or key[1] == slug):
                del _cache[key]
