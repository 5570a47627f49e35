"""Shared fixtures: a small brand with two stores and the personas who use it.

The suite runs on SQLite by default and on PostgreSQL when SIYU_DATABASE_URL
points at one (``bash .ci/run`` does both).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

os.environ.setdefault("SIYU_TESTING", "1")


@dataclass
class Brand:
    workspace: object
    hq: object
    region: object
    store_a: object
    store_b: object
    clerk_a: object  # Staff in store A
    clerk_a2: object  # another Staff in store A
    clerk_b: object  # Staff in store B


@pytest.fixture
def brand(db):
    from siyu.org.models import OrgUnit, Staff
    from siyu.org.services import create_org_unit, create_workspace

    workspace = create_workspace(slug="acme", name="Acme 美妆")
    hq = OrgUnit.objects.get(workspace=workspace, kind=OrgUnit.Kind.HQ)
    region = create_org_unit(workspace=workspace, parent=hq, kind=OrgUnit.Kind.REGION, name="华东大区")
    store_a = create_org_unit(
        workspace=workspace, parent=region, kind=OrgUnit.Kind.STORE, name="上海南京路店", code="SH01", city="上海"
    )
    store_b = create_org_unit(
        workspace=workspace, parent=region, kind=OrgUnit.Kind.STORE, name="杭州湖滨店", code="HZ01", city="杭州"
    )
    clerk_a = Staff.objects.create(workspace=workspace, org_unit=store_a, name="王小美", wecom_userid="wangxm")
    clerk_a2 = Staff.objects.create(workspace=workspace, org_unit=store_a, name="李娜", wecom_userid="lina")
    clerk_b = Staff.objects.create(workspace=workspace, org_unit=store_b, name="赵敏", wecom_userid="zhaomin")
    return Brand(workspace, hq, region, store_a, store_b, clerk_a, clerk_a2, clerk_b)


@pytest.fixture
def other_workspace(db):
    from siyu.org.services import create_workspace

    return create_workspace(slug="other", name="Other Brand")


PASSWORD = "correct-horse-battery-9"


@dataclass
class Personas:
    hq_admin: object  # owner: sees everything, unmasked
    analyst: object  # HQ-wide, masked phones
    manager_a: object  # store manager of store A
    clerk_a: object  # user linked to Staff clerk_a
    clerk_b: object  # user linked to Staff clerk_b


@pytest.fixture
def personas(brand):
    from django.contrib.auth import get_user_model

    from siyu.org.models import Membership, Role

    User = get_user_model()

    def make(username, role, **kw):
        user = User.objects.create_user(username=username, password=PASSWORD)
        Membership.objects.create(user=user, workspace=brand.workspace, role=role, **kw)
        return user

    return Personas(
        hq_admin=make("hq", Role.OWNER),
        analyst=make("analyst", Role.ANALYST),
        manager_a=make("manager_a", Role.STORE_MANAGER, org_unit=brand.store_a),
        clerk_a=make("clerk_a", Role.STAFF, org_unit=brand.store_a, staff=brand.clerk_a),
        clerk_b=make("clerk_b", Role.STAFF, org_unit=brand.store_b, staff=brand.clerk_b),
    )


@pytest.fixture
def api_key(brand):
    """A raw bearer key for the brand's workspace."""
    from siyu.org.services import create_api_key

    _, raw = create_api_key(workspace_slug=brand.workspace.slug, name="tests")
    return raw


@pytest.fixture(autouse=True)
def fresh_cache():
    """Dashboard figures are cached per workspace id; ids repeat across rolled-back tests."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
