"""The console: login, pages for each persona, scopes, masking, tags, language, admin-only pages."""

from __future__ import annotations

import pytest
from django.test import Client

from siyu.customers.services import upsert_customers
from siyu.tags.models import CustomerTag, Tag, TagGroup
from tests.conftest import PASSWORD


@pytest.fixture
def customers(brand):
    items = [
        {
            "identities": [{"type": "phone", "value": "13800000001"}],
            "name": "王芳",
            "store_code": "SH01",
            "owner_wecom_userid": "wangxm",
            "source_channel": "store_code",
        },
        {
            "identities": [{"type": "phone", "value": "13800000002"}],
            "name": "李静",
            "store_code": "HZ01",
            "owner_wecom_userid": "zhaomin",
            "source_channel": "fission",
        },
    ]
    ids = upsert_customers(brand.workspace, items, source="test").ids
    return {"a": ids[0], "b": ids[1]}


def login(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def test_login_page_is_chinese_and_anonymous_users_are_sent_there(db):
    response = Client().get("/")
    assert response.status_code == 302 and "/login/" in response["Location"]
    page = Client().get("/login/")
    assert "登录私域运营台" in page.content.decode()


def test_wrong_password_shows_an_error(personas):
    response = Client().post("/login/", {"username": "hq", "password": "nope"})
    assert "用户名或密码不正确" in response.content.decode()


def test_dashboard_shows_pool_and_charts(personas, customers):
    page = login(personas.hq_admin).get("/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-testid="pool-size">2<' in html
    assert html.count("data-figure") == 3 and "plotly.min.js" in html
    assert "获客渠道" in html


def test_dashboard_empty_state(personas):
    html = login(personas.hq_admin).get("/").content.decode()
    assert "还没有客户" in html


def test_english_after_switching_language(personas, customers):
    client = login(personas.hq_admin)
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    html = client.get("/").content.decode()
    assert "Customer pool" in html and "客户池概览" not in html


def test_list_is_scoped_per_persona(personas, customers):
    def listed(user):
        html = login(user).get("/customers/").content.decode()
        return {name for name in ("王芳", "李静") if name in html}

    assert listed(personas.hq_admin) == {"王芳", "李静"}
    assert listed(personas.manager_a) == {"王芳"}
    assert listed(personas.clerk_a) == {"王芳"}
    assert listed(personas.clerk_b) == {"李静"}


def test_other_stores_customer_is_404(personas, customers):
    assert login(personas.manager_a).get(f"/customers/{customers['b']}/").status_code == 404
    assert login(personas.clerk_a).get(f"/customers/{customers['b']}/").status_code == 404
    assert login(personas.hq_admin).get(f"/customers/{customers['b']}/").status_code == 200


def test_phone_masked_without_permission(personas, customers):
    analyst = login(personas.analyst).get(f"/customers/{customers['a']}/").content.decode()
    owner = login(personas.hq_admin).get(f"/customers/{customers['a']}/").content.decode()
    assert "138****0001" in analyst and "13800000001" not in analyst
    assert "13800000001" in owner


def test_search_filters_and_htmx_rows(personas, customers):
    client = login(personas.hq_admin)
    html = client.get("/customers/?q=13800000002").content.decode()
    assert "李静" in html and "王芳" not in html
    partial = client.get("/customers/?channel=store_code", HTTP_HX_REQUEST="true").content.decode()
    assert "王芳" in partial and "<nav" not in partial
    assert "没有符合条件的客户" in client.get("/customers/?q=不存在的人").content.decode()


def test_tags_can_be_added_and_removed(personas, brand, customers):
    group = TagGroup.objects.create(workspace=brand.workspace, name="肤质")
    tag = Tag.objects.create(workspace=brand.workspace, group=group, name="敏感肌")
    client = login(personas.clerk_a)
    url = f"/customers/{customers['a']}/tags/"
    response = client.post(url, {"tag": tag.pk}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "敏感肌" in response.content.decode()
    assert CustomerTag.objects.filter(customer_id=customers["a"], tag=tag, added_by_staff=brand.clerk_a).exists()
    client.post(url, {"tag": tag.pk, "action": "remove"})
    assert not CustomerTag.objects.filter(customer_id=customers["a"], tag=tag).exists()
    # Not on someone else's customer.
    assert client.post(f"/customers/{customers['b']}/tags/", {"tag": tag.pk}).status_code == 404


def test_admin_pages_are_for_admins(personas, brand, customers):
    for path in ("/org/", "/staff/", "/api-keys/"):
        assert login(personas.manager_a).get(path).status_code == 403
        assert login(personas.analyst).get(path).status_code == 403
        assert login(personas.hq_admin).get(path).status_code == 200
    org = login(personas.hq_admin).get("/org/").content.decode()
    assert "上海南京路店" in org and "华东大区" in org


def test_api_key_shown_once_and_revocable(personas, brand):
    from siyu.org.models import ApiKey, AuditEntry

    client = login(personas.hq_admin)
    html = client.post("/api-keys/", {"name": "小程序埋点"}).content.decode()
    key = ApiKey.objects.get(workspace=brand.workspace, name="小程序埋点")
    assert f"siyu_{key.prefix}_" in html
    listing = client.get("/api-keys/").content.decode()
    assert "小程序埋点" in listing and f"siyu_{key.prefix}_…" in listing
    client.post("/api-keys/", {"action": "revoke", "key": key.pk})
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert AuditEntry.objects.filter(workspace=brand.workspace, action="api_key.revoke").exists()


def test_conflict_review(personas, brand):
    from siyu.customers.models import IdentityConflict
    from siyu.customers.services import link_identities

    ws = brand.workspace
    upsert_customers(
        ws,
        [{"identities": [{"type": "member_no", "value": "M1"}, {"type": "phone", "value": "13900000001"}]}],
        source="t",
    )
    upsert_customers(
        ws,
        [{"identities": [{"type": "member_no", "value": "M2"}, {"type": "phone", "value": "13900000002"}]}],
        source="t",
    )
    link_identities(
        ws,
        {"identities": [{"type": "phone", "value": "13900000001"}, {"type": "phone", "value": "13900000002"}]},
        source="t",
    )
    conflict = IdentityConflict.objects.get(workspace=ws)
    client = login(personas.hq_admin)
    assert "M1" in client.get("/conflicts/").content.decode()
    client.post("/conflicts/", {"conflict": conflict.pk, "action": "dismiss"})
    conflict.refresh_from_db()
    assert conflict.status == "dismissed"
    assert login(personas.clerk_a).get("/conflicts/").status_code == 403


def test_user_without_membership_sees_no_data(db):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user(username="nobody", password=PASSWORD)
    client = Client()
    client.login(username="nobody", password=PASSWORD)
    response = client.get("/customers/")
    assert response.status_code == 403 and "还没有加入任何品牌" in response.content.decode()


def test_django_admin_for_superusers(db):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser(username="root", password=PASSWORD, email="")
    client = Client()
    client.login(username="root", password=PASSWORD)
    assert client.get("/admin/customers/customer/").status_code == 200


def test_chinese_even_when_the_browser_asks_for_english(personas, customers):
    html = login(personas.hq_admin).get("/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").content.decode()
    assert "客户池概览" in html


def test_huge_ids_in_console_urls_are_404_or_ignored(personas, customers):
    client = login(personas.hq_admin)
    assert client.get(f"/customers/{10**20}/").status_code == 404
    assert client.get(f"/customers/?after={10**20}&tag={10**20}").status_code == 200
