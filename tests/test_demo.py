"""The demo brand: structure, believable content, determinism, reruns, and the CLI."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections import Counter

import pytest
from django.test import Client

from siyu.conversations.models import Message
from siyu.customers.models import Customer, Identity, StaffRelation
from siyu.demo.services import DEMO_PASSWORD, build_demo
from siyu.org.models import Membership, OrgUnit, Staff, Workspace
from siyu.tags.models import CustomerTag
from siyu.tracking.models import Event, Order
from siyu.workbench.models import StaffTask


def fingerprint() -> str:
    """Content of the demo without ids: the same seed must give the same brand."""
    ws = Workspace.objects.get(slug="demo")
    parts = [
        sorted(Customer.objects.filter(workspace=ws).values_list("name", "city", "source_channel", "first_seen_at")),
        sorted(Identity.objects.filter(workspace=ws).values_list("type", "value")),
        sorted(Order.objects.filter(workspace=ws).values_list("order_no", "paid_fen", "paid_at")),
        sorted(Message.objects.filter(workspace=ws).values_list("text", "sent_at")),
        sorted(Staff.objects.filter(workspace=ws).values_list("name", "wecom_userid")),
    ]
    return hashlib.sha256(repr(parts).encode()).hexdigest()


@pytest.mark.django_db
def test_small_demo_is_a_believable_brand():
    login = build_demo(n_customers=300, seed=7, echo=lambda _: None)
    ws = Workspace.objects.get(slug="demo")
    assert OrgUnit.objects.filter(workspace=ws, kind="region").count() == 4
    assert 25 <= OrgUnit.objects.filter(workspace=ws, kind="store").count() <= 35
    assert 250 <= Staff.objects.filter(workspace=ws).count() <= 350
    customers = Customer.objects.filter(workspace=ws)
    assert customers.count() == 300
    assert not customers.exclude(pk__in=Identity.objects.values("customer_id")).exists()
    assert set(customers.values_list("source_channel", flat=True)) == {
        "store_code",
        "official_account",
        "mini_program",
        "fission",
        "order_import",
    }
    assert StaffRelation.objects.filter(workspace=ws).count() > 100
    orders = Order.objects.filter(workspace=ws)
    assert orders.exists() and all(isinstance(o.paid_fen, int) and o.paid_fen > 0 for o in orders)
    # A long tail: some customers buy many times, many never.
    counts = Counter(orders.values_list("customer_id", flat=True))
    assert max(counts.values()) >= 4
    assert 0.25 < (300 - len(counts)) / 300 < 0.6
    assert Event.objects.filter(workspace=ws).count() > 300
    texts = " ".join(Message.objects.filter(workspace=ws, direction="in").values_list("text", flat=True))
    for keyword in ("敏感肌", "美白", "价格", "孕期"):
        assert keyword in texts
    assert CustomerTag.objects.filter(workspace=ws, source="keyword").exists()
    assert all(c.last_seen_at >= c.first_seen_at for c in customers)
    assert Client().login(username=login.username, password=login.password)
    assert Client().login(username="daogou", password=DEMO_PASSWORD)
    # The clerk's phone task page has today's follow-ups and the Moments post to publish.
    clerk = Client()
    clerk.login(username="daogou", password=DEMO_PASSWORD)
    page = clerk.get("/m/tasks/").content.decode()
    clerk_staff = Membership.objects.get(user__username="daogou").staff
    pending = StaffTask.objects.filter(staff=clerk_staff, status="pending")
    assert pending.exists()
    assert all(task.title in page for task in pending)


@pytest.mark.django_db
def test_same_seed_same_brand_and_rerun_replaces():
    build_demo(n_customers=120, seed=3, echo=lambda _: None)
    first = fingerprint()
    build_demo(n_customers=120, seed=3, echo=lambda _: None)
    assert fingerprint() == first
    assert Customer.objects.filter(workspace__slug="demo").count() == 120
    assert Workspace.objects.filter(slug="demo").count() == 1
    build_demo(n_customers=120, seed=4, echo=lambda _: None)
    assert fingerprint() != first


def test_cli_builds_into_the_given_sqlite_file(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SIYU_DATABASE_URL"}
    db = tmp_path / "demo.sqlite3"
    result = subprocess.run(
        [sys.executable, "-m", "siyu.cli", "demo", "--customers", "200", "--no-serve", "--db", str(db)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert db.exists()
    assert "admin / demo1234" in result.stdout
    assert "200 customers" in result.stdout


@pytest.mark.django_db
def test_demo_never_deletes_a_real_user_with_a_demo_name():
    from django.contrib.auth import get_user_model

    from siyu.core.errors import InvalidInput

    real = get_user_model().objects.create_superuser(username="admin", email="ops@brand.cn", password="x" * 12)
    with pytest.raises(InvalidInput, match="real users named admin"):
        build_demo(n_customers=20, seed=1, echo=lambda _: None)
    assert get_user_model().objects.filter(pk=real.pk).exists()
