"""Headless Chromium: a clerk on a phone-sized screen completes a task on /m/tasks/ (htmx swap),
and an operator creates a Moments post through the form against the local fake WeCom.

Uses the system Chromium like ``test_browser.py``; skipped without it, except under CI=true.
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests.test_browser import browser_page, sign_in, watch_errors  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def clerk_tasks(transactional_db, brand, personas):
    """Two of clerk A's tasks for today (ORM work before Playwright starts its event loop)."""
    from siyu.core import clock
    from siyu.workbench.models import StaffTask
    from siyu.workbench.queries import today

    now = clock.now()
    for kind, title in (("group_message", "确认群发：周末活动"), ("moment", "发朋友圈：新品")):
        StaffTask.objects.create(
            workspace=brand.workspace, staff=brand.clerk_a, kind=kind, title=title, script="欢迎周末到店",
            due_on=today(brand.workspace), source_type="test", source_id=title, created_at=now, updated_at=now,
        )  # fmt: skip
    return personas.clerk_a


def test_clerk_completes_a_task_on_the_phone_page(live_server, clerk_tasks, browser_page):  # noqa: F811
    page = browser_page
    errors = watch_errors(page)
    page.set_viewport_size(PHONE)
    sign_in(page, live_server.url, clerk_tasks.username)
    page.goto(f"{live_server.url}/m/tasks/")
    assert page.locator("[data-testid=task]").count() == 2
    page.locator("[data-testid=copy]").first.click()
    page.locator("[data-testid=task-done]").first.click()
    page.wait_for_selector("[data-testid=task][data-status=done]")
    assert page.locator("[data-testid=task][data-status=pending]").count() == 1
    # Nothing overflows the phone's width.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert errors == [], errors


@pytest.fixture
def moments_data(transactional_db, brand, personas):
    from siyu.content.models import Material
    from siyu.wecom.client import reset_shared_state
    from siyu.wecom.services import configure_wecom
    from tests.fakes.wecom import FakeWecom, Follow
    from tests.fakes.wecom_moments import set_job_polls

    reset_shared_state()
    now = dt.datetime.now(dt.UTC)
    link = Material.objects.create(workspace=brand.workspace, kind="link", title="新品页",
                                   url="https://example.com/p", created_at=now, updated_at=now)  # fmt: skip
    with FakeWecom() as fake:
        fake.add_contact("wmC1", "张三", [Follow("wangxm")])
        set_job_polls(fake, 0)
        configure_wecom(brand.workspace, corp_id=fake.corp_id, agent_id="1000002", secret=fake.secret,
                        token="browserToken", aes_key="jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
                        base_url=fake.url)  # fmt: skip
        yield personas.hq_admin, link, fake
    reset_shared_state()


def test_operator_creates_a_moment_and_sees_the_senders(live_server, moments_data, browser_page, brand):  # noqa: F811
    user, link, fake = moments_data
    page = browser_page
    errors = watch_errors(page)
    sign_in(page, live_server.url, user.username)
    page.goto(f"{live_server.url}/moments/")
    page.click("[data-testid=moment-new]")
    page.fill("#id_text", "新品上市，欢迎到店")
    page.select_option("#id_materials", str(link.pk))
    page.select_option("#id_staff", str(brand.clerk_a.pk))
    page.click("[data-testid=save]")
    page.wait_for_selector("[data-testid=moment-status]")
    page.click("button[value=refresh]")
    page.wait_for_selector("[data-testid=sender-row]")
    assert "王小美" in page.inner_text("[data-testid=sender-row]")
    assert len(fake.api_calls("externalcontact/add_moment_task")) == 1
    assert errors == [], errors
