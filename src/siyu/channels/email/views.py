"""The page behind ``List-Unsubscribe``: GET asks, POST opts out (RFC 8058 one-click or the button)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from siyu.channels.email.unsubscribe import recipient_for_token
from siyu.channels.email.unsubscribe import unsubscribe as do_unsubscribe


# CSRF exemption is required, and safe here: mail providers send the RFC 8058 one-click POST
# from their servers, with no cookie and no CSRF token, so Django's check would refuse every
# real unsubscribe. The token in the URL is the authorisation (an unguessable HMAC naming one
# message), and the only effect a forged cross-site POST could have is the one the link exists
# for: opting that recipient out.
@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    recipient = recipient_for_token(token)
    if recipient is None:
        raise Http404("unknown unsubscribe link")
    done = recipient.opted_out
    if request.method == "POST":
        # A GET never opts out: link scanners and previews fetch every URL in a mail.
        one_click = request.POST.get("List-Unsubscribe") == "One-Click"
        do_unsubscribe(recipient, one_click=one_click)
        done = True
    response = render(
        request,
        "channels/unsubscribe.html",
        {"brand_name": recipient.brand_name, "done": done},
    )
    # The page is per-recipient: never cached by a proxy, never framed.
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex"
    return response
