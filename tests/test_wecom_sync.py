"""Initial import and reconciliation of WeCom data, against the local fake WeCom server:
staff, external contacts with follow info and tags, corp tags both ways, customer groups."""

from __future__ import annotations

import datetime as dt
import json
import math

import httpx
import pytest

from siyu.core.errors import InvalidInput
from siyu.customers.models import Customer, Identity, StaffRelation
from siyu.org.models import OrgUnit, Staff
from siyu.tags.models import CustomerTag, Tag, TagGroup
from siyu.tracking.models import Event
from siyu.wecom.client import WecomClient, reset_shared_state
from siyu.wecom.models import ApiCallLog
from siyu.wecom.services import configure_wecom
from siyu.wecom.sync import contact_calls_min, reconcile, reconcile_workspace
from siyu.wecom.sync_models import ExternalGroup, ExternalGroupMember, SyncRun
from tests.fakes.wecom import BulkFakeWecom, FakeWecom, Follow, GroupChat, GroupMember

AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
NOW = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(hours=1)


@pytest.fixture(autouse=True)
def fresh_client_state():
    reset_shared_state()
    yield
    reset_shared_state()


def tag_groups() -> list[dict]:
    return [
        {"group_id": "etGROUP1", "group_name": "会员", "create_time": 1, "order": 5, "deleted": False,
         "tag": [{"id": "etTAG1", "name": "金卡", "create_time": 1, "order": 2, "deleted": False},
                 {"id": "etTAG2", "name": "银卡", "create_time": 1, "order": 1, "deleted": False}]},
    ]  # fmt: skip


@pytest.fixture
def fake():
    with FakeWecom() as server:
        server.tag_groups = tag_groups()
        server.add_contact(
            "wmEXT1",
            "张三",
            [Follow("wangxm", remark="老客", description="VIP", createtime=1_760_000_000, tag_ids=["etTAG1"],
                    state="store-SH01", add_way=1)],
            gender=1,
        )  # fmt: skip
        server.add_contact(
            "wmEXT2", "李四", [Follow("wangxm", createtime=1_760_000_100), Follow("lina", add_way=3)], unionid="uLISI"
        )
        server.add_contact("wmEXT3", "王五", [Follow("newbie", createtime=1_760_000_200)])
        yield server


@pytest.fixture
def app(brand, fake):
    return configure_wecom(
        brand.workspace,
        corp_id=fake.corp_id,
        agent_id="1000002",
        secret=fake.secret,
        token="syncToken",
        aes_key=AES_KEY,
        base_url=fake.url,
    )


class FakeTime:
    def __init__(self) -> None:
        self.now = NOW.timestamp()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def customer_of(workspace, external_userid: str) -> Customer:
    identity = Identity.objects.get(workspace=workspace, type="wecom_external_userid", value=external_userid)
    return Customer.objects.get(pk=identity.customer_id)


def business_calls(fake: FakeWecom, since: int = 0) -> list:
    return [c for c in fake.calls[since:] if c.api != "gettoken"]


def test_initial_import_creates_staff_customers_relations_and_tags(brand, fake, app):
    report = reconcile(brand.workspace, now=NOW)

    assert report.status == "ok" and report.error == ""
    # A follow member siyu did not know lands at headquarters; staff outside the list are reported.
    newbie = Staff.objects.get(workspace=brand.workspace, wecom_userid="newbie")
    assert newbie.org_unit.kind == OrgUnit.Kind.HQ
    assert report.staff_not_following == ["zhaomin"]
    assert Staff.objects.get(pk=brand.clerk_b.pk).status == Staff.Status.ACTIVE  # reported, not changed

    zhang = customer_of(brand.workspace, "wmEXT1")
    assert (zhang.name, zhang.gender, zhang.source_channel, zhang.owner_staff_id) == (
        "张三",
        "m",
        "wecom",
        brand.clerk_a.pk,
    )
    relation = StaffRelation.objects.get(customer=zhang, staff=brand.clerk_a)
    assert (relation.state, relation.add_way, relation.remark, relation.description) == ("store-SH01", 1, "老客", "VIP")
    assert relation.added_at == dt.datetime.fromtimestamp(1_760_000_000, tz=dt.UTC)
    assert relation.status == StaffRelation.Status.ACTIVE

    li = customer_of(brand.workspace, "wmEXT2")
    assert Identity.objects.filter(customer=li, type="wechat_unionid", value="uLISI").exists()
    assert set(StaffRelation.objects.filter(customer=li).values_list("staff__wecom_userid", "add_way")) == {
        ("wangxm", 1),
        ("lina", 3),
    }
    # Corp tags arrive with their WeCom ids; the follow info's tag lands on the customer.
    group = TagGroup.objects.get(workspace=brand.workspace, wecom_group_id="etGROUP1")
    assert (group.name, group.sort) == ("会员", 5)
    gold = Tag.objects.get(group=group, wecom_tag_id="etTAG1")
    assert gold.name == "金卡"
    assert list(CustomerTag.objects.filter(customer=zhang).values_list("tag_id", "source")) == [(gold.pk, "wecom")]

    counts = report.counts
    assert (counts["staff_created"], counts["customers_created"], counts["relations_created"]) == (1, 3, 4)
    assert (counts["tags_added"], counts["corp_tags_created"], counts["tag_groups_created"]) == (1, 2, 1)
    assert (counts["customers_updated"], counts["contacts"], counts["relations_seen"]) == (0, 3, 4)
    run = SyncRun.objects.get(pk=report.run_id)
    assert (run.status, run.fixes, run.api_calls) == ("ok", report.fixes, report.api_calls)
    assert run.counts["customers_created"] == 3
    # Through the workspace's client: every call is in the operator's API log.
    assert ApiCallLog.objects.filter(workspace=brand.workspace).exclude(api="gettoken").count() == report.api_calls
    # History is not news: the first import puts nothing on timelines.
    assert not Event.objects.filter(workspace=brand.workspace, name="wecom_friend_added").exists()


def test_second_run_with_no_changes_fixes_nothing_and_says_so(brand, fake, app):
    reconcile(brand.workspace, now=NOW)
    again = reconcile(brand.workspace, now=LATER)

    assert again.status == "ok"
    assert again.fixes == 0
    assert "  无需修复 / nothing to fix" in again.lines()
    assert SyncRun.objects.get(pk=again.run_id).fixes == 0
    assert StaffRelation.objects.filter(workspace=brand.workspace).count() == 4


def test_a_contact_added_through_the_api_appears_after_reconcile(brand, fake, app):
    reconcile(brand.workspace, now=NOW)
    # An add made by another tool through the API: WeCom fires no callback for it.
    fake.add_contact("wmEXT4", "赵六", [Follow("lina", createtime=1_760_001_000, state="poster-7")])

    report = reconcile(brand.workspace, now=LATER)

    zhao = customer_of(brand.workspace, "wmEXT4")
    relation = StaffRelation.objects.get(customer=zhao)
    assert (relation.staff_id, relation.state) == (brand.clerk_a2.pk, "poster-7")
    assert (report.counts["customers_created"], report.counts["relations_created"]) == (1, 1)
    assert report.fixes == 2  # the customer (with its owner) and the relation
    assert zhao.owner_staff_id == brand.clerk_a2.pk
    event = Event.objects.get(customer=zhao, name="wecom_friend_added")
    assert event.properties["source"] == "sync"


def test_a_relation_removed_in_wecom_is_marked_deleted_and_comes_back_when_re_added(brand, fake, app):
    reconcile(brand.workspace, now=NOW)
    contact = fake.contacts["wmEXT2"]
    contact.follows = [f for f in contact.follows if f.userid != "lina"]

    report = reconcile(brand.workspace, now=LATER)

    li = customer_of(brand.workspace, "wmEXT2")
    relation = StaffRelation.objects.get(customer=li, staff=brand.clerk_a2)
    assert (relation.status, relation.status_changed_at) == (StaffRelation.Status.DELETED_BY_STAFF, LATER)
    assert StaffRelation.objects.get(customer=li, staff=brand.clerk_a).status == StaffRelation.Status.ACTIVE
    assert report.counts["relations_deleted"] == 1 and report.fixes == 1
    assert Event.objects.filter(customer=li, name="wecom_friend_deleted").count() == 1

    contact.follows.append(Follow("lina", createtime=1_760_009_000))
    back = reconcile(brand.workspace, now=LATER + dt.timedelta(hours=1))
    relation.refresh_from_db()
    assert relation.status == StaffRelation.Status.ACTIVE
    assert relation.added_at == dt.datetime.fromtimestamp(1_760_009_000, tz=dt.UTC)
    assert back.counts["relations_reactivated"] == 1


def test_a_tag_changed_in_wecom_is_reflected_and_siyu_tags_are_kept(brand, fake, app):
    reconcile(brand.workspace, now=NOW)
    zhang = customer_of(brand.workspace, "wmEXT1")
    silver = Tag.objects.get(wecom_tag_id="etTAG2")
    manual_group = TagGroup.objects.create(workspace=brand.workspace, name="手动")
    manual = Tag.objects.create(workspace=brand.workspace, group=manual_group, name="爱买口红")
    CustomerTag.objects.create(workspace=brand.workspace, customer=zhang, tag=manual, source="manual", created_at=NOW)
    fake.contacts["wmEXT1"].follows[0].tag_ids = ["etTAG2"]

    report = reconcile(brand.workspace, now=LATER)

    assert set(CustomerTag.objects.filter(customer=zhang).values_list("tag_id", flat=True)) == {silver.pk, manual.pk}
    assert (report.counts["tags_added"], report.counts["tags_removed"]) == (1, 1)


def test_a_wecom_tag_set_by_hand_in_siyu_is_not_removed(brand, fake, app):
    reconcile(brand.workspace, now=NOW)
    li = customer_of(brand.workspace, "wmEXT2")
    silver = Tag.objects.get(wecom_tag_id="etTAG2")
    CustomerTag.objects.create(workspace=brand.workspace, customer=li, tag=silver, source="manual", created_at=NOW)

    report = reconcile(brand.workspace, now=LATER)

    assert CustomerTag.objects.filter(customer=li, tag=silver).exists()
    assert report.fixes == 0


def test_a_known_wechat_follower_is_linked_by_unionid_not_duplicated(brand, fake, app):
    from siyu.customers.services import link_identities

    follower = link_identities(
        brand.workspace, {"identities": [{"type": "wechat_unionid", "value": "uLISI"}]}, source="oa"
    )

    report = reconcile(brand.workspace, now=NOW)

    assert customer_of(brand.workspace, "wmEXT2").pk == follower["customer_id"]
    assert report.counts["customers_created"] == 2


def test_api_calls_equal_the_computed_minimum_on_a_clean_run(brand, fake, app):
    for n in range(250):  # 250 more contacts of one member: 3 pages of 100 follow rows
        fake.add_contact(f"wmMANY{n:04d}", f"客户{n}", [Follow("zhaomin", createtime=1_760_100_000 + n)])
    fake.add_group_chat(GroupChat("wrCHAT1", "一群", owner="wangxm"))
    fake.add_group_chat(GroupChat("wrCHAT2", "二群", owner="lina"))
    before = len(fake.calls)

    report = reconcile(brand.workspace, now=NOW)

    relations = sum(len(c.follows) for c in fake.contacts.values())  # 254
    members = len(fake.follow_users)  # 4
    groups = 2
    expected = 1 + 1 + max(math.ceil(members / 100), math.ceil(relations / 100)) + 1 + groups
    assert report.status == "ok"
    assert report.api_calls_min == expected == 8
    assert report.api_calls == expected == len(business_calls(fake, before))
    assert len(fake.api_calls("gettoken")) == 1


def test_the_minimum_is_the_lower_bound_over_member_chunks():
    assert contact_calls_min(0, 0) == 0
    assert contact_calls_min(3, 0) == 1  # one call says "nobody"
    assert contact_calls_min(200, 100_000) == 1000
    assert contact_calls_min(250, 10) == 3  # ≤100 members per call


class StormOnChunk(httpx.HTTPTransport):
    """Starts a 45009 storm when batch/get_by_user first asks for ``member``."""

    def __init__(self, fake: FakeWecom, member: str) -> None:
        super().__init__()
        self.fake, self.member, self.fired = fake, member, False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if (
            not self.fired
            and path.endswith("batch/get_by_user")
            and self.member in json.loads(request.content)["userid_list"]
        ):
            self.fired = True
            self.fake.storm(1)
        return super().handle_request(request)


def test_45009_mid_sync_stops_cleanly_with_a_partial_report_and_the_next_run_completes(brand):
    with BulkFakeWecom() as fake:
        fake.tag_groups = tag_groups()
        fake.seed_bulk(contacts=300, staff=120, tag_ids=["etTAG1"])
        fake.add_group_chat(GroupChat("wrCHAT1", "一群", owner="staff0000"))
        time_ = FakeTime()
        client = WecomClient(
            fake.corp_id,
            fake.secret,
            base_url=fake.url,
            clock=time_.clock,
            sleep=time_.sleep,
            transport=StormOnChunk(fake, "staff0100"),
        )
        with client:
            partial = reconcile(brand.workspace, client=client, now=NOW)

            assert partial.status == "partial"
            assert "限流" in partial.error and "60 秒" in partial.error
            # The first 100 members were written whole; the cut-short chunk and the groups not at all.
            first_chunk = {f"staff{n:04d}" for n in range(100)}
            expected = {
                c for c, contact in fake.contacts.items() if any(f.userid in first_chunk for f in contact.follows)
            }
            stored = set(
                Identity.objects.filter(workspace=brand.workspace, type="wecom_external_userid").values_list(
                    "value", flat=True
                )
            )
            assert stored == expected
            assert not StaffRelation.objects.filter(staff__wecom_userid="staff0100").exists()
            assert not ExternalGroup.objects.exists()
            assert CustomerTag.objects.filter(source="wecom").exists()  # fetched contacts got their tags
            run = SyncRun.objects.get(pk=partial.run_id)
            assert (run.status, run.error) == ("partial", partial.error)

            time_.now += 61  # the blocked minute is over
            done = reconcile(brand.workspace, client=client, now=LATER)

        assert done.status == "ok"
        assert Identity.objects.filter(workspace=brand.workspace, type="wecom_external_userid").count() == 300
        relations = sum(len(c.follows) for c in fake.contacts.values())
        assert StaffRelation.objects.filter(workspace=brand.workspace, status="active").count() == relations
        assert done.counts["relations_deleted"] == 0
        assert ExternalGroup.objects.filter(chat_id="wrCHAT1").exists()
        # 300 contacts, every 3rd tagged.
        assert CustomerTag.objects.filter(source="wecom").count() == 100


def test_groups_and_members_are_synced_and_leavers_and_dismissed_groups_marked(brand, fake, app):
    fake.add_group_chat(
        GroupChat(
            "wrCHAT1",
            "VIP 群",
            owner="wangxm",
            notice="欢迎",
            members=[
                GroupMember("wangxm", type=1, join_time=1_760_000_000, join_scene=1),
                GroupMember("wmEXT1", join_time=1_760_000_500, join_scene=3, invitor="wangxm", unionid="uZHANG",
                            state="store-SH01"),
                GroupMember("wmSTRANGER", join_time=1_760_000_600, join_scene=2),
            ],
        )
    )  # fmt: skip
    fake.add_group_chat(GroupChat("wrCHAT2", "快闪群", owner="lina", members=[GroupMember("lina", type=1)]))

    first = reconcile(brand.workspace, now=NOW)

    group = ExternalGroup.objects.get(workspace=brand.workspace, chat_id="wrCHAT1")
    assert (group.name, group.owner_staff_id, group.notice, group.dismissed_at) == (
        "VIP 群",
        brand.clerk_a.pk,
        "欢迎",
        None,
    )
    zhang = ExternalGroupMember.objects.get(group=group, member_id="wmEXT1")
    assert zhang.customer_id == customer_of(brand.workspace, "wmEXT1").pk
    assert (zhang.join_scene, zhang.invitor, zhang.unionid, zhang.state) == (3, "wangxm", "uZHANG", "store-SH01")
    assert zhang.join_time == dt.datetime.fromtimestamp(1_760_000_500, tz=dt.UTC)
    assert ExternalGroupMember.objects.get(group=group, member_id="wangxm").staff_id == brand.clerk_a.pk
    assert ExternalGroupMember.objects.get(group=group, member_id="wmSTRANGER").customer_id is None
    assert (first.counts["groups_created"], first.counts["members_joined"]) == (2, 4)

    chat = fake.group_chats["wrCHAT1"]
    chat.members = [m for m in chat.members if m.userid != "wmEXT1"]
    del fake.group_chats["wrCHAT2"]  # dismissed

    second = reconcile(brand.workspace, now=LATER)

    zhang.refresh_from_db()
    assert zhang.left_at == LATER
    assert ExternalGroup.objects.get(chat_id="wrCHAT2").dismissed_at == LATER
    assert (second.counts["members_left"], second.counts["groups_dismissed"], second.fixes) == (1, 1, 2)

    chat.members.append(GroupMember("wmEXT1", join_time=1_760_050_000, join_scene=2))
    third = reconcile(brand.workspace, now=LATER + dt.timedelta(hours=1))
    zhang.refresh_from_db()
    assert (zhang.left_at, zhang.join_scene) == (None, 2)
    assert third.counts["members_joined"] == 1
    assert reconcile(brand.workspace, now=LATER + dt.timedelta(hours=2)).fixes == 0


def test_groups_are_listed_per_owner_once_wecom_answers_81017(brand, fake, app):
    fake.visible_member_count = 1500  # more than 1,000 visible members: owner_filter required
    fake.add_group_chat(GroupChat("wrCHAT1", "一群", owner="wangxm"))
    fake.add_group_chat(GroupChat("wrCHAT2", "二群", owner="newbie"))

    first = reconcile(brand.workspace, now=NOW)

    lists = fake.api_calls("externalcontact/groupchat/list")
    assert [c.errcode for c in lists] == [81017, 0]
    assert set(lists[1].body["owner_filter"]["userid_list"]) == {"wangxm", "lina", "newbie"}
    assert set(ExternalGroup.objects.values_list("chat_id", flat=True)) == {"wrCHAT1", "wrCHAT2"}
    assert first.api_calls == first.api_calls_min + 1  # the refused probe

    calls = len(fake.calls)
    second = reconcile(brand.workspace, now=LATER)
    assert [c.errcode for c in fake.calls[calls:] if c.api.endswith("groupchat/list")] == [0]  # it remembered
    assert second.api_calls == second.api_calls_min


def test_siyu_tags_in_a_linked_group_are_pushed_to_wecom(brand, fake, app):
    reconcile(brand.workspace, now=NOW)
    group = TagGroup.objects.get(wecom_group_id="etGROUP1")
    new = Tag.objects.create(workspace=brand.workspace, group=group, name="黑卡", sort=9)
    local_group = TagGroup.objects.create(workspace=brand.workspace, name="仅本地")
    local = Tag.objects.create(workspace=brand.workspace, group=local_group, name="不推送")

    report = reconcile(brand.workspace, now=LATER)

    new.refresh_from_db()
    pushed = fake.api_calls("externalcontact/add_corp_tag")
    assert len(pushed) == 1 and pushed[0].body == {"group_id": "etGROUP1", "tag": [{"name": "黑卡", "order": 9}]}
    assert new.wecom_tag_id == fake.added_corp_tags[0]["id"]
    assert Tag.objects.get(pk=local.pk).wecom_tag_id == ""
    assert report.counts["corp_tags_pushed"] == 1
    assert reconcile(brand.workspace, now=LATER + dt.timedelta(hours=1)).fixes == 0


def test_corp_tags_renamed_or_deleted_in_wecom_follow_wecom(brand, fake, app):
    reconcile(brand.workspace, now=NOW)
    zhang = customer_of(brand.workspace, "wmEXT1")
    fake.tag_groups[0]["tag"][0]["name"] = "金卡会员"  # etTAG1 renamed
    fake.tag_groups[0]["tag"].pop(1)  # etTAG2 deleted
    fake.tag_groups.append({"group_id": "etGROUP2", "group_name": "兴趣", "order": 1, "tag": [
        {"id": "etTAG3", "name": "彩妆", "order": 1}]})  # fmt: skip

    report = reconcile(brand.workspace, now=LATER)

    assert Tag.objects.get(wecom_tag_id="etTAG1").name == "金卡会员"
    assert not Tag.objects.filter(wecom_tag_id="etTAG2").exists()
    assert Tag.objects.get(wecom_tag_id="etTAG3").group.name == "兴趣"
    assert CustomerTag.objects.filter(customer=zhang, tag__wecom_tag_id="etTAG1").exists()
    counts = report.counts
    assert (counts["corp_tags_updated"], counts["corp_tags_deleted"], counts["corp_tags_created"]) == (1, 1, 1)


def test_a_configuration_error_fails_the_run_with_the_operators_fix(brand, fake, app):
    fake.untrusted_ip = True

    report = reconcile(brand.workspace, now=NOW)

    assert report.status == "failed"
    assert "可信IP" in report.error
    assert SyncRun.objects.get(pk=report.run_id).status == "failed"
    assert not Customer.objects.filter(workspace=brand.workspace).exists()


def test_a_second_run_is_refused_while_one_is_running(brand, fake, app):
    SyncRun.objects.create(workspace=brand.workspace, started_at=NOW - dt.timedelta(minutes=5))
    with pytest.raises(InvalidInput):
        reconcile(brand.workspace, now=NOW)
    # A run "running" for over an hour crashed: it does not block.
    SyncRun.objects.update(started_at=NOW - dt.timedelta(hours=2))
    assert reconcile(brand.workspace, now=NOW).status == "ok"


def test_reconcile_workspace_by_slug_for_the_cli(brand, fake, app):
    report = reconcile_workspace("acme")
    assert report.status == "ok" and report.counts["customers_created"] == 3
    assert any("新建客户" in line for line in report.lines())
