"""Headless Chromium: an admin fills the WeCom app form with the 生成 buttons, saves it, and
opens the API call log.

Uses the system Chromium like ``test_browser.py``; skipped without it, except under CI=true.
"""

from __future__ import annotations

import pytest

from tests.test_browser import browser_page, sign_in, watch_errors  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser


@pytest.fixture
def admin(transactional_db, brand, personas):
    """An admin and one logged API call (ORM work before Playwright starts its event loop)."""
    from siyu.core import clock
    from siyu.wecom.models import ApiCallLog

    ApiCallLog.objects.create(
        workspace=brand.workspace,
        api="externalcontact/get_follow_user_list",
        errcode=60020,
        errmsg="not allow to access from your ip, from ip: 10.0.0.8",
        duration_ms=30,
        at=clock.now(),
    )
    return personas.hq_admin


def test_configure_wecom_with_generated_token_and_key(live_server, admin, browser_page):  # noqa: F811
    page = browser_page
    errors = watch_errors(page)
    sign_in(page, live_server.url, admin.username)
    page.wait_for_url(lambda url: "/login/" not in url)

    page.goto(f"{live_server.url}/settings/wecom/")
    page.wait_for_selector("[data-testid=not-configured]")
    page.fill("#id_wecom-corp_id", "ww0123456789abcdef")
    page.fill("#id_wecom-agent_id", "1000002")
    page.fill("#id_wecom-secret", "browser-secret-0123456789")
    page.click("[data-testid=generate-wecom-token]")
    page.click("[data-testid=generate-wecom-aes_key]")
    token, key = page.input_value("#id_wecom-token"), page.input_value("#id_wecom-aes_key")
    assert len(token) == 32 and token.isalnum()
    assert len(key) == 43 and key.isalnum()
    page.click("[data-testid=save-wecom]")
    page.wait_for_selector("[data-testid=check]")
    assert "browser-secret-0123456789" not in page.content()
    assert page.input_value("#id_wecom-token") == token
    assert page.input_value("[data-testid=wecom-url]").endswith("/callbacks/wecom/acme/")

    page.click("[data-testid=logs-link]")
    page.wait_for_selector("[data-testid=api-calls]")
    assert "服务器 IP 不在企业可信 IP 中" in page.inner_text("[data-testid=api-calls]")
    assert errors == [], errors
