"""The welcome message (欢迎语) of a channel code, rendered for one customer in WeCom's
``send_welcome_msg`` shape: ``text.content`` plus up to 9 ``attachments``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from siyu.acquisition import rules
from siyu.acquisition.models import ChannelCode
from siyu.content.rendering import RenderContext, customer_values_of, render
from siyu.customers.models import Customer
from siyu.org.models import Staff


@dataclass(frozen=True)
class Welcome:
    text: str
    attachments: list[dict[str, Any]] = field(default_factory=list)

    def body(self, welcome_code: str) -> dict[str, Any]:
        """The ``send_welcome_msg`` request body (the caller has 20 seconds from the event)."""
        out: dict[str, Any] = {"welcome_code": welcome_code}
        if self.text:
            out["text"] = {"content": self.text}
        if self.attachments:
            out["attachments"] = self.attachments
        return out


def welcome_payload(code: ChannelCode, customer: Customer | None, staff: Staff | None = None) -> Welcome:
    """Render the code's welcome text (sandboxed Jinja: ``customer.name``, ``staff.name``,
    ``store.name``…) and build its attachments, the group QR image last. A customer without a
    name reads as 「」: write ``{{ customer.name or '您' }}`` for a fallback."""
    text = ""
    if code.welcome_text.strip():
        store = code.store
        ctx = RenderContext(
            customer=customer_values_of(customer),
            staff={"name": staff.name if staff else ""},
            store={"name": store.name if store else "", "city": store.city if store else ""},
            brand={"name": code.workspace.name},
        )
        text = render(body=code.welcome_text, ctx=ctx, medium="wecom").body.strip()
    attachments = list(code.welcome_attachments or [])
    material = code.group_qr_material
    if material is not None and not material.archived and material.file:
        url = material.url or f"{settings.PUBLIC_URL}{material.file.url}"
        attachments.append({"msgtype": "image", "image": {"pic_url": url}})
    return Welcome(text, attachments[: rules.MAX_ATTACHMENTS])
