"""The mobile staff task page (/m/tasks/): a clerk sees and completes only their own tasks, a
store manager those of their store, the report counts completion per store and staff, and
WeCom's sidebar OAuth signs the clerk in (against the local fake WeCom)."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from siyu.content.models import Material
from siyu.customers.models import Customer
from siyu.org.models import Membership, Role
from siyu.wecom.client import reset_shared_state
from siyu.wecom.services import configure_wecom
from siyu.workbench.models import StaffTask
from tests.conftest import PASSWORD
from tests.fakes.wecom import FakeWecom
from tests.fakes.wecom_moments import issue_oauth_code

NOW = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai
TODAY = dt.date(2026, 11, 23)


@pytest.fixture(autouse=True)
def pinned(monkeypatch):
    monkeypatch.setattr("siyu.core.clock.now", lambda: NOW)
    reset_shared_state()
    yield
    reset_shared_state()


def task(brand, staff, kind="follow_up", title="跟进", due=TODAY, status="pending", **fields) -> StaffTask:
    return StaffTask.objects.create(
        workspace=brand.workspace, staff=staff, kind=kind, title=title, due_on=due, status=status,
        source_type=fields.pop("source_type", "test"), source_id=fields.pop("source_id", title),
        created_at=NOW, updated_at=NOW, **fields,
    )  # fmt: skip


@pytest.fixture
def tasks(brand):
    link = Material.objects.create(workspace=brand.workspace, kind="link", title="新品页", url="https://example.com/p",
                                   created_at=NOW, updated_at=NOW)  # fmt: skip
    customer = Customer.objects.create(workspace=brand.workspace, name="张三", created_at=NOW, updated_at=NOW)
    return {
        "group": task(
            brand,
            brand.clerk_a,
            "group_message",
            "确认群发：双十一",
            script="亲，双十一到店有礼",
            materials=[link.pk],
            audience=120,
        ),
        "moment": task(brand, brand.clerk_a, "moment", "发朋友圈：新品", due=TODAY - dt.timedelta(days=1)),
        "follow": task(brand, brand.clerk_a, "follow_up", "回访张三", customer=customer),
        "tomorrow": task(brand, brand.clerk_a, "follow_up", "明天的回访", due=TODAY + dt.timedelta(days=1)),
        "done": task(brand, brand.clerk_a, "follow_up", "已回访李四", status="done", done_at=NOW, done_via="staff"),
        "colleague": task(brand, brand.clerk_a2, "moment", "李娜的朋友圈"),
        "other_store": task(brand, brand.clerk_b, "moment", "赵敏的朋友圈"),
    }


def login(client, user) -> None:
    assert client.login(username=user.username, password=PASSWORD)


def test_clerk_sees_only_todays_pending_tasks_grouped_with_script_and_materials(client, brand, personas, tasks):
    login(client, personas.clerk_a)
    page = client.get("/m/tasks/").content.decode()
    assert page.index("确认群发：双十一") < page.index("发朋友圈：新品") < page.index("回访张三")
    assert "亲，双十一到店有礼" in page and "复制话术" in page and "https://example.com/p" in page
    assert "120 位客户" in page and "客户：张三" in page and "11-22 起未完成" in page
    assert "已回访李四" in page  # recently done
    for other in ("明天的回访", "李娜的朋友圈", "赵敏的朋友圈"):
        assert other not in page


def test_empty_state(client, personas):
    login(client, personas.clerk_b)
    page = client.get("/m/tasks/")
    assert page.status_code == 200 and "今天没有待办任务" in page.content.decode()


def test_done_button_closes_the_task_and_swaps_the_card(client, personas, tasks):
    login(client, personas.clerk_a)
    answer = client.post(f"/m/tasks/{tasks['group'].pk}/done/", HTTP_HX_REQUEST="true")
    assert answer.status_code == 200
    assert 'data-status="done"' in answer.content.decode() and "已完成" in answer.content.decode()
    tasks["group"].refresh_from_db()
    assert (tasks["group"].status, tasks["group"].done_by_id, tasks["group"].done_via) == (
        "done", personas.clerk_a.pk, "staff",
    )  # fmt: skip
    assert tasks["group"].done_at == NOW
    # Without htmx the form posts and comes back to the list.
    plain = client.post(f"/m/tasks/{tasks['follow'].pk}/done/")
    assert plain.status_code == 302 and plain["Location"] == "/m/tasks/"
    assert "回访张三" not in client.get("/m/tasks/").content.decode().split("最近完成")[0]


def test_another_staff_members_task_is_not_found(client, personas, tasks):
    login(client, personas.clerk_a)
    assert client.post(f"/m/tasks/{tasks['colleague'].pk}/done/").status_code == 404
    assert client.get(f"/m/tasks/?staff={tasks['colleague'].staff_id}").status_code == 404
    tasks["colleague"].refresh_from_db()
    assert tasks["colleague"].status == "pending"


def test_done_needs_post_and_csrf(personas, tasks):
    strict = Client(enforce_csrf_checks=True)
    login(strict, personas.clerk_a)
    assert strict.get(f"/m/tasks/{tasks['group'].pk}/done/").status_code == 405
    assert strict.post(f"/m/tasks/{tasks['group'].pk}/done/").status_code == 403
    tasks["group"].refresh_from_db()
    assert tasks["group"].status == "pending"


def test_store_manager_sees_and_completes_tasks_of_their_store_only(client, brand, personas, tasks):
    login(client, personas.manager_a)
    page = client.get("/m/tasks/")
    assert page.status_code == 403 and "没有绑定员工" in page.content.decode()
    colleague = client.get(f"/m/tasks/?staff={brand.clerk_a2.pk}").content.decode()
    assert "李娜的朋友圈" in colleague and "李娜的任务" in colleague
    assert client.get(f"/m/tasks/?staff={brand.clerk_b.pk}").status_code == 404
    answer = client.post(f"/m/tasks/{tasks['colleague'].pk}/done/")
    assert answer.status_code == 302 and answer["Location"] == f"/m/tasks/?staff={brand.clerk_a2.pk}"
    assert client.post(f"/m/tasks/{tasks['other_store'].pk}/done/").status_code == 404
    tasks["colleague"].refresh_from_db()
    tasks["other_store"].refresh_from_db()
    assert (tasks["colleague"].status, tasks["other_store"].status) == ("done", "pending")


def test_an_analyst_may_look_at_a_clerks_tasks_but_not_complete_them(client, brand, personas, tasks):
    login(client, personas.analyst)
    page = client.get(f"/m/tasks/?staff={brand.clerk_a.pk}").content.decode()
    assert "回访张三" in page and 'data-testid="task-done"' not in page
    assert client.post(f"/m/tasks/{tasks['follow'].pk}/done/").status_code == 404
    tasks["follow"].refresh_from_db()
    assert tasks["follow"].status == "pending"


def test_signed_out_visitors_go_to_the_login(client, tasks):
    answer = client.get("/m/tasks/")
    assert answer.status_code == 302 and answer["Location"].startswith("/login/?next=/m/tasks/")


def test_completion_report_per_store_and_staff_in_scope(client, brand, personas, tasks):
    login(client, personas.hq_admin)
    page = client.get("/tasks/report/?day=2026-11-23").content.decode()
    # Due today: clerk_a 3 (1 done), clerk_a2 1, clerk_b 1 → 5 tasks, 1 done.
    assert "共 5 个任务，已完成 1 个（20%）" in page
    assert "上海南京路店" in page and "杭州湖滨店" in page
    login(client, personas.manager_a)
    page = client.get("/tasks/report/?day=2026-11-23").content.decode()
    assert "共 4 个任务，已完成 1 个（25%）" in page and "赵敏" not in page
    assert "没有员工任务" in client.get("/tasks/report/?day=2026-01-01").content.decode()
    login(client, personas.clerk_a)
    assert client.get("/tasks/report/").status_code == 403


# ---- WeCom sidebar OAuth -------------------------------------------------------------------


@pytest.fixture
def fake(brand):
    with FakeWecom() as server:
        configure_wecom(brand.workspace, corp_id=server.corp_id, agent_id="1000002", secret=server.secret,
                        token="tasksToken", aes_key="jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
                        base_url=server.url)  # fmt: skip
        yield server


def start(client, slug: str = "acme") -> str:
    """Open the sidebar address: WeCom's authorize URL with this browser's one-time state."""
    answer = client.get(f"/m/wecom/start/{slug}/")
    assert answer.status_code == 302
    url = urlsplit(answer["Location"])
    assert (url.scheme, url.netloc, url.fragment) == ("https", "open.weixin.qq.com", "wechat_redirect")
    query = parse_qs(url.query)
    assert query["redirect_uri"][0].endswith("/m/wecom/auth/")
    assert query["scope"] == ["snsapi_base"] and query["agentid"] == ["1000002"]
    return query["state"][0]


def test_wecom_oauth_signs_the_linked_clerk_in_once_per_code(client, brand, personas, tasks, fake):
    code = issue_oauth_code(fake, "wangxm")
    answer = client.get(f"/m/wecom/auth/?code={code}&state={start(client)}")
    assert answer.status_code == 302 and answer["Location"] == "/m/tasks/"
    assert "回访张三" in client.get("/m/tasks/").content.decode()
    [call] = fake.api_calls("auth/getuserinfo")
    assert call.query["code"] == code
    # The code is good once; a replay signs nobody in.
    fresh = Client()
    assert fresh.get(f"/m/wecom/auth/?code={code}&state={start(fresh)}").status_code == 403
    assert fresh.get("/m/tasks/").status_code == 302


def test_a_code_without_this_browsers_state_is_refused(client, brand, personas, fake):
    state = start(Client())  # another browser started the sign-in
    answer = client.get(f"/m/wecom/auth/?code={issue_oauth_code(fake, 'wangxm')}&state={state}")
    assert answer.status_code == 400
    assert fake.api_calls("auth/getuserinfo") == []
    assert client.get("/m/tasks/").status_code == 302


def test_wecom_oauth_refuses_members_without_an_account_and_admins(client, brand, personas, fake):
    answer = client.get(f"/m/wecom/auth/?code={issue_oauth_code(fake, 'lina')}&state={start(client)}")
    assert answer.status_code == 403 and "还没有绑定运营台账号" in answer.content.decode()
    Membership.objects.filter(user=personas.hq_admin).update(staff=brand.clerk_a2, role=Role.OWNER)
    answer = client.get(f"/m/wecom/auth/?code={issue_oauth_code(fake, 'lina')}&state={start(client)}")
    assert answer.status_code == 403 and "请用密码登录" in answer.content.decode()
    assert client.get(f"/m/wecom/auth/?state={start(client)}").status_code == 400
    assert client.get("/m/wecom/start/nope/").status_code == 404
    assert client.get("/m/tasks/").status_code == 302  # still signed out


def sign_in_by_oauth(client, fake, userid: str = "wangxm"):
    return client.get(f"/m/wecom/auth/?code={issue_oauth_code(fake, userid)}&state={start(client)}")


def test_oauth_refuses_a_clerk_who_administers_another_workspace_or_is_django_staff(
    client, brand, personas, fake, other_workspace
):
    # A clerk here, the owner of another brand: a WeCom code must not open the other brand.
    Membership.objects.create(user=personas.clerk_a, workspace=other_workspace, role=Role.OWNER)
    answer = sign_in_by_oauth(client, fake)
    assert answer.status_code == 403 and "请用密码登录" in answer.content.decode()
    assert client.get("/m/tasks/").status_code == 302
    assert client.post("/workspace/", {"workspace": other_workspace.pk}).status_code == 302
    assert client.get("/settings/wecom/").status_code == 302  # to the login page
    Membership.objects.filter(user=personas.clerk_a, workspace=other_workspace).delete()
    personas.clerk_a.is_staff = True  # may use /admin/
    personas.clerk_a.save()
    answer = sign_in_by_oauth(client, fake)
    assert answer.status_code == 403 and "请用密码登录" in answer.content.decode()
    assert client.get("/admin/").status_code == 302
    assert client.get("/m/tasks/").status_code == 302


def test_an_oauth_session_stays_in_the_workspace_it_came_through(client, brand, personas, tasks, fake, other_workspace):
    from siyu.console.access import SESSION_KEY

    Membership.objects.create(user=personas.clerk_a, workspace=other_workspace, role=Role.OPERATOR)
    state = start(client)
    before = client.session.session_key
    answer = client.get(f"/m/wecom/auth/?code={issue_oauth_code(fake, 'wangxm')}&state={state}")
    assert answer.status_code == 302
    assert client.session.session_key != before  # login() rotated the session key
    assert client.session["siyu_oauth_workspace"] == brand.workspace.pk
    client.post("/workspace/", {"workspace": other_workspace.pk})
    assert client.session[SESSION_KEY] == brand.workspace.pk
    session = client.session
    session[SESSION_KEY] = other_workspace.pk  # even a forged choice does not open it
    session.save()
    assert "回访张三" in client.get("/m/tasks/").content.decode()
    assert client.get("/moments/").status_code == 403  # an operator page of the other brand
    # The same account signed in with its password may switch.
    password = Client()
    login(password, personas.clerk_a)
    password.post("/workspace/", {"workspace": other_workspace.pk})
    assert password.session[SESSION_KEY] == other_workspace.pk
    assert password.get("/moments/").status_code == 200


def test_tasks_wecom_closes_have_no_done_button_and_a_manual_done_is_refused(client, brand, personas):
    mass = task(
        brand, brand.clerk_a, "group_message", "确认群发：周末", source_type="wecom_group_msg", source_id="msgA"
    )
    post = task(brand, brand.clerk_a, "moment", "发朋友圈：周末", source_type="moment", source_id="7")
    follow = task(brand, brand.clerk_a, "follow_up", "回访王五")
    login(client, personas.clerk_a)
    page = client.get("/m/tasks/").content.decode()
    assert page.count('data-testid="task-done"') == 1  # the follow-up only
    assert page.count("在企业微信中发送后自动完成") == 2
    for tracked in (mass, post):
        answer = client.post(f"/m/tasks/{tracked.pk}/done/", HTTP_HX_REQUEST="true")
        assert answer.status_code == 409 and "在企业微信中发送后自动完成" in answer.content.decode()
        tracked.refresh_from_db()
        assert (tracked.status, tracked.done_at, tracked.done_via) == ("pending", None, "")
    assert client.post(f"/m/tasks/{follow.pk}/done/").status_code == 302
    follow.refresh_from_db()
    assert follow.status == "done"


def test_oauth_state_is_what_wecom_accepts_and_the_slug_stays_in_the_session(client, brand, personas, tasks, fake):
    import re

    state = start(client)
    # WeCom documents state as a-zA-Z0-9, at most 128 bytes.
    assert re.fullmatch(r"[a-zA-Z0-9]{1,128}", state) and "acme" not in state
    answer = client.get(f"/m/wecom/auth/?code={issue_oauth_code(fake, 'wangxm')}&state={state}")
    assert answer.status_code == 302 and answer["Location"] == "/m/tasks/"
    # A state with a slug glued on (the old format) is not this browser's state.
    other = Client()
    state = start(other)
    assert other.get(f"/m/wecom/auth/?code={issue_oauth_code(fake, 'wangxm')}&state=acme.{state}").status_code == 400
    start(other)
    assert other.get("/m/wecom/auth/?code=x&state=状态").status_code == 400  # not a 500


def test_oauth_sign_in_closes_its_wecom_client(client, brand, personas, fake, monkeypatch):
    from siyu.wecom.client import WecomClient

    closed = []
    real_close = WecomClient.close
    monkeypatch.setattr(WecomClient, "close", lambda self: closed.append(self) or real_close(self))
    assert sign_in_by_oauth(client, fake).status_code == 302
    assert sign_in_by_oauth(Client(), fake, "lina").status_code == 403  # a refused sign-in too
    assert len(closed) == 2 and all(c._http.is_closed for c in closed)
