"""Headless Chromium: an operator creates a broadcast through the form and sees the preview chart.

Uses the system Chromium like ``test_browser.py``; skipped without it, except under CI=true.
"""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.test_browser import browser_page  # noqa: F401  (fixture)
from tests.test_outbox import clock_at  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser


@pytest.fixture
def reach_data(transactional_db, brand, personas, clock_at):  # noqa: F811
    """A sandbox SMS account and 12 tagged customers, 4 without marketing consent (ORM work before Playwright)."""
    from siyu.channels.services import create_account, set_consent
    from siyu.customers.models import Customer, Identity
    from siyu.tags.models import CustomerTag, Tag, TagGroup
    from tests.test_outbox import NOON

    ws = brand.workspace
    create_account(ws, name="沙箱短信", provider="sandbox", medium="sms")
    tag = Tag.objects.create(workspace=ws, group=TagGroup.objects.create(workspace=ws, name="等级"), name="VIP")
    for n in range(12):
        c = Customer.objects.create(workspace=ws, name=f"会员{n}", created_at=NOON, updated_at=NOON)
        Identity.objects.create(workspace=ws, customer=c, type="phone", value=f"1390000{n:04d}", created_at=NOON)
        CustomerTag.objects.create(workspace=ws, customer=c, tag=tag, created_at=NOON)
        if n % 3:
            set_consent(ws.pk, c.pk, channel="sms", purpose="marketing", granted=True, source="test")
    return personas.hq_admin, tag


def test_create_broadcast_and_see_the_preview_chart(live_server, reach_data, browser_page):  # noqa: F811
    user, tag = reach_data
    page = browser_page
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # The browser's own /favicon.ico request 404s on every page: not an error of these pages.
    page.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and not msg.location.get("url", "").endswith("/favicon.ico")
            else None
        ),
    )

    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("[data-testid=pool-size]")

    page.goto(f"{live_server.url}/broadcasts/")
    page.click("[data-testid=broadcast-new]")
    page.fill("#id_name", "浏览器里建的群发")
    page.click("label[for=aud-tags]")
    page.select_option("#id_tags_any", str(tag.pk))
    page.fill("#v0-body", "{{ customer.name }}，会员日到了")
    page.click("#add-variant")
    assert page.input_value("#v1-label") == "B"
    page.fill("#v1-body", "会员日好礼")
    page.click("[data-testid=save]")

    page.wait_for_selector("[data-testid=preview-audience]")
    assert page.inner_text("[data-testid=broadcast-name]").startswith("浏览器里建的群发")
    assert page.inner_text("[data-testid=preview-audience]") == "12"
    # Plotly drew the suppression chart (one SVG plot) with the Chinese reason on its axis.
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length === 1", timeout=15000)
    assert "未获营销授权" in page.inner_text("[data-testid=suppressed-chart]")
    assert page.is_visible("[data-testid=confirm-send]")
    assert errors == [], errors
