"""Moments posts (朋友圈) against the local fake WeCom: validation, the async create job,
per-sender staff tasks closed when WeCom reports the post published, and the console pages."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.base import ContentFile

from siyu.content.models import Material
from siyu.core.errors import InvalidInput
from siyu.tags.models import Tag, TagGroup
from siyu.wecom.client import reset_shared_state
from siyu.wecom.models import ApiCallLog
from siyu.wecom.services import client_for, configure_wecom
from siyu.workbench import jobs
from siyu.workbench.models import Moment, StaffTask
from siyu.workbench.moments import MomentInput, create_moment, poll_workspace, submit_moment
from tests.conftest import PASSWORD
from tests.fakes.wecom import FakeWecom, Follow
from tests.fakes.wecom_moments import moments, publish_moment, set_job_polls

AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
NOW = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai


@pytest.fixture(autouse=True)
def fresh_client_state():
    reset_shared_state()
    yield
    reset_shared_state()


@pytest.fixture
def clock_at(monkeypatch):
    state = {"now": NOW}
    monkeypatch.setattr("siyu.core.clock.now", lambda: state["now"])
    return lambda value: state.update(now=value)


@pytest.fixture
def fake():
    with FakeWecom() as server:
        server.tag_groups = [{"group_id": "etG1", "group_name": "会员", "create_time": 1, "order": 0,
                              "deleted": False, "tag": [{"id": "etGOLD", "name": "金卡", "create_time": 1,
                                                         "order": 0, "deleted": False}]}]  # fmt: skip
        server.add_contact("wmC1", "张三", [Follow("wangxm", tag_ids=["etGOLD"]), Follow("lina")])
        server.add_contact("wmC2", "李四", [Follow("wangxm", tag_ids=["etGOLD"])])
        server.add_contact("wmC3", "王五", [Follow("lina", tag_ids=["etGOLD"])])
        yield server


@pytest.fixture
def wecom(brand, fake):
    configure_wecom(brand.workspace, corp_id=fake.corp_id, agent_id="1000002", secret=fake.secret,
                    token="momentsToken", aes_key=AES_KEY, base_url=fake.url)  # fmt: skip
    return fake


@pytest.fixture
def gold(brand):
    group = TagGroup.objects.create(workspace=brand.workspace, name="会员", wecom_group_id="etG1")
    return Tag.objects.create(workspace=brand.workspace, group=group, name="金卡", wecom_tag_id="etGOLD")


def material(brand, kind: str, title: str = "素材", **fields) -> Material:
    return Material.objects.create(workspace=brand.workspace, kind=kind, title=title, created_at=NOW,
                                   updated_at=NOW, **fields)  # fmt: skip


def image(brand, n: int) -> Material:
    m = material(brand, "image", f"图{n}")
    m.file.save(f"p{n}.png", ContentFile(b"\x89PNG fake image"), save=True)
    return m


@pytest.fixture
def link(brand):
    return material(brand, "link", "双十一新品", url="https://example.com/new")


def field_of(call) -> str:
    with pytest.raises(InvalidInput) as info:
        call()
    return info.value.field


def test_bad_attachments_text_senders_and_tags_get_field_errors(brand, settings, tmp_path, link, wecom):
    settings.MEDIA_ROOT = tmp_path
    ws = brand.workspace
    images = [image(brand, n) for n in range(10)]
    text = material(brand, "text", "纯文本", text="hi")
    staff = (brand.clerk_a.pk,)

    assert field_of(lambda: create_moment(ws, MomentInput("x", tuple(m.pk for m in images), staff))) == "attachments"
    assert field_of(lambda: create_moment(ws, MomentInput("x", (images[0].pk, link.pk), staff))) == "attachments"
    assert field_of(lambda: create_moment(ws, MomentInput("x", (text.pk,), staff))) == "attachments"
    assert field_of(lambda: create_moment(ws, MomentInput("字" * 2001, (), staff))) == "text"
    assert field_of(lambda: create_moment(ws, MomentInput("", (), staff))) == "text"
    assert field_of(lambda: create_moment(ws, MomentInput("hi", (), ()))) == "staff_ids"
    brand.clerk_b.wecom_userid = None
    brand.clerk_b.save()
    assert field_of(lambda: create_moment(ws, MomentInput("hi", (), (brand.clerk_b.pk,)))) == "staff_ids"
    unsynced = Tag.objects.create(workspace=ws, group=TagGroup.objects.create(workspace=ws, name="本地"), name="x")
    assert field_of(lambda: create_moment(ws, MomentInput("hi", (), staff, (), (unsynced.pk,)))) == "tag_ids"
    assert Moment.objects.count() == 0
    # Nine images are fine, and so is a single link.
    assert create_moment(ws, MomentInput("九图", tuple(m.pk for m in images[:9]), staff)).pk
    assert create_moment(ws, MomentInput("", (link.pk,), staff)).pk


def test_post_goes_through_the_job_to_staff_tasks_and_one_publish_closes_one_task(brand, wecom, link, gold, clock_at):
    ws = brand.workspace
    set_job_polls(wecom, 1)
    moment = create_moment(ws, MomentInput("新品上市，欢迎到店", (link.pk,), (), (brand.store_a.pk,), (gold.pk,)))
    assert moment.sender_userids == ["wangxm", "lina"]
    moment = submit_moment(ws, moment.pk)
    assert moment.status == Moment.Status.CREATING and moment.jobid
    [call] = wecom.api_calls("externalcontact/add_moment_task")
    assert call.body["visible_range"] == {
        "sender_list": {"user_list": ["wangxm", "lina"]},
        "external_contact_list": {"tag_list": ["etGOLD"]},
    }
    assert call.body["attachments"] == [
        {"msgtype": "link", "link": {"title": "双十一新品", "url": "https://example.com/new"}}
    ]
    # A second submit (double click) sends nothing more.
    submit_moment(ws, moment.pk)
    assert len(wecom.api_calls("externalcontact/add_moment_task")) == 1

    assert jobs.poll_moments()["polled"] == 1  # WeCom: still running
    moment.refresh_from_db()
    assert moment.status == Moment.Status.CREATING and not StaffTask.objects.exists()

    jobs.poll_moments()
    moment.refresh_from_db()
    assert moment.status == Moment.Status.CREATED and moment.moment_id in moments(wecom)
    tasks = StaffTask.objects.filter(source_type="moment", source_id=str(moment.pk))
    assert {t.staff_id for t in tasks} == {brand.clerk_a.pk, brand.clerk_a2.pk}
    assert all(t.status == "pending" and t.kind == "moment" and t.materials == [link.pk] for t in tasks)
    assert tasks[0].due_on == dt.date(2026, 11, 23) and tasks[0].script == "新品上市，欢迎到店"

    publish_moment(wecom, moment.moment_id, "wangxm")
    jobs.poll_moments()
    mine = tasks.get(staff=brand.clerk_a)
    assert (mine.status, mine.done_via) == ("done", "wecom")
    assert tasks.get(staff=brand.clerk_a2).status == "pending"
    moment.refresh_from_db()
    # wangxm's customers with the gold tag: wmC1 and wmC2.
    assert (moment.counts["published"], moment.counts["senders"], moment.counts["reached"]) == (1, 2, 2)

    publish_moment(wecom, moment.moment_id, "lina")
    jobs.poll_moments()
    assert not tasks.filter(status="pending").exists()
    moment.refresh_from_db()
    assert moment.counts["reached"] == 3
    # Everyone published: the post is not polled any more.
    before = len(wecom.calls)
    assert jobs.poll_moments()["polled"] == 0
    assert len(wecom.calls) == before


def test_invalid_senders_and_tags_are_reported(brand, wecom, link, gold):
    ws = brand.workspace
    set_job_polls(wecom, 0)
    wecom.invisible_users.add("zhaomin")  # outside the app's visibility
    moment = create_moment(ws, MomentInput("hi", (link.pk,), (brand.clerk_a.pk, brand.clerk_b.pk), (), (gold.pk,)))
    gold.wecom_tag_id = "etGONE"
    gold.save()
    Moment.objects.filter(pk=moment.pk).update(wecom_tag_ids=["etGOLD", "etGONE"])
    submit_moment(ws, moment.pk)
    poll_workspace(ws)
    moment.refresh_from_db()
    assert moment.status == Moment.Status.CREATED
    assert moment.invalid_sender_list == ["zhaomin"]
    assert moment.invalid_external_contact_list == ["etGONE"]
    assert set(StaffTask.objects.values_list("staff_id", flat=True)) == {brand.clerk_a.pk}


def test_every_sender_invalid_fails_the_post_with_wecoms_reason(brand, wecom, link):
    ws = brand.workspace
    set_job_polls(wecom, 0)
    wecom.invisible_users.update({"wangxm", "lina", "zhaomin"})
    moment = create_moment(ws, MomentInput("hi", (link.pk,), (brand.clerk_b.pk,)))
    submit_moment(ws, moment.pk)
    poll_workspace(ws)
    moment.refresh_from_db()
    assert moment.status == Moment.Status.FAILED and "41054" in moment.error
    assert not StaffTask.objects.exists()


def test_token_expiry_mid_poll_refetches_and_goes_on(brand, wecom, link):
    ws = brand.workspace
    set_job_polls(wecom, 1)
    moment = submit_moment(ws, create_moment(ws, MomentInput("hi", (link.pk,), (brand.clerk_a.pk,))).pk)
    poll_workspace(ws)
    wecom.expire_tokens()
    poll_workspace(ws)
    moment.refresh_from_db()
    assert moment.status == Moment.Status.CREATED
    results = [c.errcode for c in wecom.api_calls("externalcontact/get_moment_task_result")]
    assert results == [0, 42001, 0]
    assert len(wecom.api_calls("gettoken")) == 2
    assert StaffTask.objects.filter(staff=brand.clerk_a, status="pending").count() == 1


def test_images_are_uploaded_as_moment_attachments(brand, wecom, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    ws = brand.workspace
    pics = [image(brand, n) for n in range(2)]
    moment = submit_moment(
        ws, create_moment(ws, MomentInput("两张图", tuple(p.pk for p in pics), (brand.clerk_a.pk,))).pk
    )
    assert moment.status == Moment.Status.CREATING, moment.error
    uploads = wecom.api_calls("media/upload_attachment")
    assert len(uploads) == 2 and all(c.errcode == 0 and c.query["attachment_type"] == "1" for c in uploads)
    [call] = wecom.api_calls("externalcontact/add_moment_task")
    assert [a["msgtype"] for a in call.body["attachments"]] == ["image", "image"]


def test_uploads_go_through_the_clients_retries_and_a_rate_limit_keeps_the_draft(brand, wecom, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    ws = brand.workspace
    pic = image(brand, 1)

    def submit():
        return submit_moment(ws, create_moment(ws, MomentInput("图", (pic.pk,), (brand.clerk_a.pk,))).pk)

    wecom.busy(1)  # -1: retried like every other call
    with client_for(ws) as client:
        client.token()
    wecom.expire_tokens()  # the cached token is revoked: 42001, a new token, the upload again
    moment = submit()
    assert moment.status == Moment.Status.CREATING, moment.error
    assert [c.errcode for c in wecom.api_calls("media/upload_attachment")] == [42001, -1, 0]
    assert ApiCallLog.objects.filter(api="media/upload_attachment").count() == 3

    wecom.storm(1)  # 45009: WeCom created nothing, so the post waits as a draft
    limited = submit()
    assert limited.status == Moment.Status.DRAFT and "限频" in limited.error
    assert len(wecom.api_calls("externalcontact/add_moment_task")) == 1
    reset_shared_state()  # the minute's block is over
    jobs.poll_moments()  # the next poll submits it
    limited.refresh_from_db()
    assert limited.status == Moment.Status.CREATING and limited.jobid and not limited.error
    assert len(wecom.api_calls("externalcontact/add_moment_task")) == 2


def test_a_wecom_refusal_fails_the_post_and_an_interrupted_submit_is_not_resent(brand, wecom, link, clock_at):
    ws = brand.workspace
    wecom.forbidden = 48002
    moment = submit_moment(ws, create_moment(ws, MomentInput("hi", (link.pk,), (brand.clerk_a.pk,))).pk)
    assert moment.status == Moment.Status.FAILED and "客户联系" in moment.error
    wecom.forbidden = None
    # A worker died after claiming the draft, before WeCom's jobid was saved.
    stuck = create_moment(ws, MomentInput("hi", (link.pk,), (brand.clerk_a.pk,)))
    Moment.objects.filter(pk=stuck.pk).update(status=Moment.Status.CREATING)
    poll_workspace(ws)
    stuck.refresh_from_db()
    assert stuck.status == Moment.Status.CREATING
    clock_at(NOW + dt.timedelta(minutes=11))
    poll_workspace(ws, client=client_for(ws))
    stuck.refresh_from_db()
    assert stuck.status == Moment.Status.FAILED and "核对" in stuck.error
    assert len(wecom.api_calls("externalcontact/add_moment_task")) == 1  # only the refused one


def test_a_week_old_post_stops_being_followed_and_its_open_tasks_expire(brand, wecom, link, clock_at):
    ws = brand.workspace
    set_job_polls(wecom, 0)
    moment = submit_moment(
        ws, create_moment(ws, MomentInput("hi", (link.pk,), (brand.clerk_a.pk, brand.clerk_a2.pk))).pk
    )
    jobs.poll_moments()
    moment.refresh_from_db()
    publish_moment(wecom, moment.moment_id, "wangxm")
    jobs.poll_moments()
    clock_at(NOW + dt.timedelta(days=8))
    before = len(wecom.calls)
    summary = jobs.poll_moments()
    assert summary["tasks_expired"] == 1 and summary["polled"] == 0
    assert len(wecom.calls) == before
    statuses = dict(StaffTask.objects.values_list("staff_id", "status"))
    assert statuses == {brand.clerk_a.pk: "done", brand.clerk_a2.pk: "expired"}


def test_an_expired_post_is_closed_in_the_same_run_and_never_selected_again(brand, wecom, link, clock_at):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from siyu.workbench.moments import expire_stale

    ws = brand.workspace
    set_job_polls(wecom, 0)
    moment = submit_moment(ws, create_moment(ws, MomentInput("hi", (link.pk,), (brand.clerk_a.pk,))).pk)
    jobs.poll_moments()
    clock_at(NOW + dt.timedelta(days=8))
    assert jobs.poll_moments()["tasks_expired"] == 1
    moment.refresh_from_db()
    assert (moment.status, moment.get_status_display()) == ("closed", "已结束")
    with CaptureQueriesContext(connection) as queries:
        assert expire_stale() == 0
    assert len(queries) == 1 and "workbench_stafftask" not in queries[0]["sql"].lower()  # nothing left to expire


# ---- console -------------------------------------------------------------------------------


def login(client, user) -> None:
    assert client.login(username=user.username, password=PASSWORD)


def test_console_create_list_and_detail(client, brand, personas, wecom, link, gold):
    set_job_polls(wecom, 0)
    login(client, personas.hq_admin)
    page = client.get("/moments/")
    assert page.status_code == 200 and "还没有朋友圈任务" in page.content.decode()
    bad = client.post("/moments/new/", {"text": "字" * 2001, "staff_ids": [brand.clerk_a.pk]})
    assert bad.status_code == 422 and 'data-error-field="text"' in bad.content.decode()
    answer = client.post("/moments/new/", {"text": "新品", "material_ids": [link.pk],
                                           "staff_ids": [brand.clerk_a.pk], "tag_ids": [gold.pk]})  # fmt: skip
    moment = Moment.objects.get()
    assert answer.status_code == 302 and answer["Location"] == f"/moments/{moment.pk}/"
    assert moment.status == Moment.Status.CREATING
    refreshed = client.post(f"/moments/{moment.pk}/", {"action": "refresh"})
    assert refreshed.status_code == 302
    detail = client.get(f"/moments/{moment.pk}/").content.decode()
    assert "王小美" in detail and "待发表" in detail
    assert "新品" in client.get("/moments/").content.decode()


def test_console_moments_are_for_operators_only(client, brand, personas, other_workspace):
    login(client, personas.manager_a)
    assert client.get("/moments/").status_code == 403
    login(client, personas.hq_admin)
    theirs = Moment.objects.create(workspace=other_workspace, text="x", created_at=NOW, updated_at=NOW)
    assert client.get(f"/moments/{theirs.pk}/").status_code == 404
