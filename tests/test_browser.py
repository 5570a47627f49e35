"""Headless Chromium smoke test: sign in, see the dashboard's charts, open a customer profile.

Uses the system Chromium (Debian package); never downloads a browser. Skipped when no
Chromium is installed, except under CI=true where it must run.
"""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

from tests.conftest import PASSWORD  # noqa: E402

pytestmark = pytest.mark.browser


@pytest.fixture
def browser_page():
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium is required under CI=true (apt-get install chromium)")
        pytest.skip("Chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(locale="zh-CN")
        yield page
        browser.close()


def watch_errors(page) -> list[str]:
    """The page's script errors and console errors, as they happen (the browser's own
    /favicon.ico 404 is not an error of these pages)."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and not msg.location.get("url", "").endswith("/favicon.ico")
            else None
        ),
    )
    return errors


def sign_in(page, base: str, username: str, password: str = PASSWORD) -> None:
    """Log in through the console's login form."""
    page.goto(f"{base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()


@pytest.fixture
def demo_customer(transactional_db):
    """A small demo brand; the ORM work happens before Playwright starts its event loop."""
    from siyu.customers.models import Customer
    from siyu.demo.services import build_demo

    build_demo(n_customers=150, seed=1, echo=lambda _: None)
    return Customer.objects.filter(workspace__slug="demo").order_by("-id").first()


def test_login_dashboard_and_profile(live_server, demo_customer, browser_page):
    from siyu.demo.services import DEMO_PASSWORD

    customer = demo_customer
    page = browser_page
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto(f"{live_server.url}/")
    assert "/login/" in page.url
    page.fill("#id_username", "admin")
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("[data-testid=pool-size]")
    assert page.inner_text("[data-testid=pool-size]").replace(",", "") == "150"
    # Plotly drew the three charts (an SVG per chart).
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length === 3", timeout=15000)

    page.goto(f"{live_server.url}/customers/")
    page.click(f"a[href='/customers/{customer.pk}/']")
    page.wait_for_selector("[data-testid=customer-name]")
    assert page.inner_text("[data-testid=customer-name]") == customer.name
    assert page.locator("[data-testid=timeline-entry]").count() > 0
    assert errors == [], errors


@pytest.fixture
def shanghai_count(demo_customer):
    """How many live demo customers live in 上海 (counted before Playwright starts)."""
    from siyu.customers.models import Customer

    return Customer.objects.filter(workspace__slug="demo", city="上海", merged_into__isnull=True).count()


def test_segment_builder_live_count_and_save(live_server, shanghai_count, browser_page):
    from siyu.demo.services import DEMO_PASSWORD

    page = browser_page
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("[data-testid=pool-size]")

    page.goto(f"{live_server.url}/segments/new/")
    page.fill("#id_name", "浏览器里建的上海客户")
    page.select_option("#new-kind", "field")
    page.click("#add-condition")
    row = page.locator("[data-testid=condition]").first
    row.locator("[data-k=field]").select_option("city")
    row.locator("[data-k=op]").select_option("eq")
    row.locator("[data-k=value]").fill("上海")
    page.wait_for_selector(f"[data-testid=preview-count][data-count='{shanghai_count}']", timeout=10000)

    page.click("[data-testid=save]")
    page.wait_for_selector("[data-testid=segment-name]")
    assert page.inner_text("[data-testid=segment-name]") == "浏览器里建的上海客户"
    assert "城市 = 上海" in page.inner_text("[data-testid=rule-text]")
    assert errors == [], errors
