"""Public endpoints customers hit: tracked links."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponseRedirect
from django.views.decorators.http import require_GET

from siyu.content.rendering import parse_link_token
from siyu.messaging.services import record_click


class _Redirect(HttpResponseRedirect):
    # Deep links into the app / mini program (smart SMS) use the weixin:// scheme.
    allowed_schemes = ["http", "https", "weixin"]


@require_GET
def tracked_link(request: HttpRequest, token: str):
    """Record a ``link_clicked`` event for the message's customer, then redirect."""
    parsed = parse_link_token(token)
    if parsed is None:
        raise Http404("unknown link")
    url = record_click(*parsed, user_agent=request.headers.get("user-agent", "")[:200])
    if url is None:
        raise Http404("unknown link")
    return _Redirect(url)
