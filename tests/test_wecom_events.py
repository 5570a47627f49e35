"""Callback events that need an API read (edit_external_contact, change_external_chat,
change_external_tag, transfer_fail): pushed through the real endpoint, applied by the inbox
against the fake WeCom server."""

from __future__ import annotations

import datetime as dt
import sys
import types
from urllib.parse import urlencode

import pytest

from siyu.customers.models import Customer, Identity, StaffRelation
from siyu.tags.models import CustomerTag, Tag, TagGroup, TagSource
from siyu.tracking.models import Event
from siyu.wecom import endpoints, inbox, services
from siyu.wecom.client import reset_shared_state
from siyu.wecom.crypto import MsgCrypt
from siyu.wecom.models import CallbackReceipt
from siyu.wecom.sync_models import ExternalGroup, ExternalGroupMember
from tests.fakes.wecom import FakeWecom, Follow, GroupChat, GroupMember, encrypted_callback, event_xml

TOKEN = "AcmeToken2026"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
T0 = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


def tag_groups() -> list[dict]:
    return [
        {"group_id": "etGROUP1", "group_name": "会员", "create_time": 1, "order": 5, "deleted": False,
         "tag": [{"id": "etTAG1", "name": "金卡", "create_time": 1, "order": 2, "deleted": False},
                 {"id": "etTAG2", "name": "银卡", "create_time": 1, "order": 1, "deleted": False}]},
    ]  # fmt: skip


@pytest.fixture
def fake(brand):
    reset_shared_state()
    endpoints.invalidate()
    with FakeWecom() as server:
        server.tag_groups = tag_groups()
        services.configure_wecom(
            brand.workspace,
            corp_id=server.corp_id,
            agent_id="1000002",
            secret=server.secret,
            token=TOKEN,
            aes_key=AES_KEY,
            base_url=server.url,
        )
        yield server
    reset_shared_state()
    endpoints.invalidate()


@pytest.fixture
def linked_tags(brand):
    group = TagGroup.objects.create(workspace=brand.workspace, name="会员", wecom_group_id="etGROUP1")
    gold = Tag.objects.create(workspace=brand.workspace, group=group, name="金卡", wecom_tag_id="etTAG1")
    silver = Tag.objects.create(workspace=brand.workspace, group=group, name="银卡", wecom_tag_id="etTAG2")
    return gold, silver


def push(client, brand, fake, event, change_type="", *, at=1_795_400_000, **fields):
    crypt = MsgCrypt(TOKEN, AES_KEY, fake.corp_id)
    xml = event_xml(fake.corp_id, event, change_type, create_time=at, **fields)
    query, body = encrypted_callback(crypt, xml)
    url = f"/callbacks/wecom/{brand.workspace.slug}/?{urlencode(query)}"
    response = client.post(url, body, content_type="text/xml")
    assert response.status_code == 200 and response.content == b""
    return response


CLOCK = {"now": T0}


@pytest.fixture(autouse=True)
def pinned_clock(monkeypatch):
    """siyu's clock starts at T0 in every test; ``apply(later=...)`` moves it forward."""
    CLOCK["now"] = T0
    monkeypatch.setattr("siyu.core.clock.now", lambda: CLOCK["now"])


def apply(later=None):
    """The worker's inbox until nothing is due (at T0 + ``later`` when given)."""
    if later is not None:
        CLOCK["now"] = T0 + later
    stats = inbox.process_all()
    assert stats.retrying == stats.failed == 0, CallbackReceipt.objects.values_list("error", flat=True)
    return stats


def add_friend(client, brand, fake, external, userid="wangxm", at=1_795_400_000):
    push(client, brand, fake, "change_external_contact", "add_external_contact", at=at, UserID=userid,
         ExternalUserID=external)  # fmt: skip
    apply()
    return Identity.objects.get(type="wecom_external_userid", value=external).customer


# ---- edit_external_contact -------------------------------------------------------------------


def test_edit_rereads_the_contact_and_applies_remark_tags_name_and_unionid(client, brand, fake, linked_tags):
    gold, silver = linked_tags
    customer = add_friend(client, brand, fake, "wmEDIT1")
    assert customer.name == ""
    manual = TagGroup.objects.create(workspace=brand.workspace, name="手动")
    hand = Tag.objects.create(workspace=brand.workspace, group=manual, name="敏感肌")
    CustomerTag.objects.create(workspace=brand.workspace, customer=customer, tag=hand, created_at=T0)
    CustomerTag.objects.create(
        workspace=brand.workspace, customer=customer, tag=silver, source=TagSource.WECOM, created_at=T0
    )
    # In WeCom the member set a remark, a description and the gold tag (silver removed).
    fake.add_contact(
        "wmEDIT1",
        "张三",
        [Follow("wangxm", remark="老客户", description="喜欢口红", tag_ids=["etTAG1"]), Follow("lina")],
        unionid="uZHANGSAN",
    )
    push(client, brand, fake, "change_external_contact", "edit_external_contact", at=1_795_400_100,
         UserID="wangxm", ExternalUserID="wmEDIT1")  # fmt: skip
    assert not fake.api_calls("externalcontact/get")  # the endpoint made no API call
    apply()
    [call] = fake.api_calls("externalcontact/get")
    assert call.query["external_userid"] == "wmEDIT1"
    relation = StaffRelation.objects.get(customer=customer, staff=brand.clerk_a)
    assert (relation.remark, relation.description) == ("老客户", "喜欢口红")
    assert set(CustomerTag.objects.filter(customer=customer).values_list("tag_id", flat=True)) == {gold.pk, hand.pk}
    customer.refresh_from_db()
    assert customer.name == "张三"
    assert Identity.objects.get(type="wechat_unionid", value="uZHANGSAN").customer_id == customer.pk
    event = Event.objects.get(customer=customer, name="wecom_contact_edited")
    assert event.properties["remark"] == "老客户" and event.properties["name"] == "张三"
    assert (event.properties["tags_added"], event.properties["tags_removed"]) == ([gold.pk], [silver.pk])
    assert event.occurred_at.timestamp() == 1_795_400_100

    # A retry of the same push changes nothing and calls nothing.
    push(client, brand, fake, "change_external_contact", "edit_external_contact", at=1_795_400_100,
         UserID="wangxm", ExternalUserID="wmEDIT1")  # fmt: skip
    assert apply().claimed == 0
    assert len(fake.api_calls("externalcontact/get")) == 1


def test_edit_of_a_contact_wecom_no_longer_knows_changes_nothing(client, brand, fake):
    customer = add_friend(client, brand, fake, "wmGONE")
    push(client, brand, fake, "change_external_contact", "edit_external_contact", at=1_795_400_100,
         UserID="wangxm", ExternalUserID="wmGONE")  # fmt: skip
    assert apply().processed == 1  # 40096: nothing to apply, not an error to retry
    assert not Event.objects.filter(customer=customer, name="wecom_contact_edited").exists()


def test_a_throttled_read_is_retried_later(client, brand, fake):
    customer = add_friend(client, brand, fake, "wmEDIT2")
    fake.add_contact("wmEDIT2", "李四", [Follow("wangxm", remark="新备注")])
    push(client, brand, fake, "change_external_contact", "edit_external_contact", at=1_795_400_100,
         UserID="wangxm", ExternalUserID="wmEDIT2")  # fmt: skip
    fake.storm(10)  # 45009
    stats = inbox.process_all()
    assert stats.retrying == 1
    receipt = CallbackReceipt.objects.get(change_type="edit_external_contact")
    assert receipt.attempts == 1 and "45009" in receipt.error and receipt.next_attempt_at > T0
    fake.storm(0)
    reset_shared_state()  # the client's 45009 back-off is in-process state
    apply(later=inbox.backoff(1))
    assert StaffRelation.objects.get(customer=customer).remark == "新备注"


# ---- change_external_chat --------------------------------------------------------------------


def test_group_create_update_and_dismiss(client, brand, fake):
    zhang = add_friend(client, brand, fake, "wmG1")
    li = add_friend(client, brand, fake, "wmG2", at=1_795_400_001)
    fake.add_group_chat(GroupChat("wrCHAT1", "南京路VIP群", "wangxm", [GroupMember("wangxm", type=1),
                                                                   GroupMember("wmG1", join_scene=3)]))  # fmt: skip
    push(client, brand, fake, "change_external_chat", "create", at=1_795_400_010, ChatId="wrCHAT1")
    apply(later=services.CHAT_SETTLE)
    group = ExternalGroup.objects.get(chat_id="wrCHAT1")
    assert (group.name, group.owner_staff_id) == ("南京路VIP群", brand.clerk_a.pk)
    assert set(ExternalGroupMember.objects.filter(group=group).values_list("member_id", flat=True)) == {
        "wangxm",
        "wmG1",
    }

    # 李四 joins, 张三 leaves (two pushes; WeCom's details already show the result).
    chat = fake.group_chats["wrCHAT1"]
    chat.members = [GroupMember("wangxm", type=1), GroupMember("wmG2", join_scene=3)]
    chat.name = "南京路VIP群2"
    push(client, brand, fake, "change_external_chat", "update", at=1_795_400_020, ChatId="wrCHAT1",
         UpdateDetail="add_member", JoinScene="3", MemChangeCnt="1", items={"MemChangeList": ["wmG2"]})  # fmt: skip
    push(client, brand, fake, "change_external_chat", "update", at=1_795_400_030, ChatId="wrCHAT1",
         UpdateDetail="del_member", QuitScene="0", MemChangeCnt="1", items={"MemChangeList": ["wmG1"]})  # fmt: skip
    apply(later=dt.timedelta(minutes=1))
    group.refresh_from_db()
    assert group.name == "南京路VIP群2"
    members = dict(ExternalGroupMember.objects.filter(group=group).values_list("member_id", "left_at"))
    assert members["wmG1"] is not None and members["wmG2"] is None
    joined = Event.objects.get(customer=li, name="wecom_group_joined")
    assert joined.properties == {"chat_id": "wrCHAT1", "group_name": "南京路VIP群2", "join_scene": 3}
    left = Event.objects.get(customer=zhang, name="wecom_group_left")
    assert left.properties["quit_scene"] == 0 and left.occurred_at.timestamp() == 1_795_400_030
    assert len(fake.api_calls("externalcontact/groupchat/get")) == 3

    push(client, brand, fake, "change_external_chat", "dismiss", at=1_795_400_040, ChatId="wrCHAT1")
    apply(later=dt.timedelta(minutes=2))
    group.refresh_from_db()
    assert group.dismissed_at is not None and group.dismissed_at.timestamp() == 1_795_400_040
    assert len(fake.api_calls("externalcontact/groupchat/get")) == 3  # dismiss needs no read


# ---- change_external_tag ---------------------------------------------------------------------


def test_tag_events_refresh_just_that_tag_or_group(client, brand, fake, linked_tags):
    gold, silver = linked_tags
    local = Tag.objects.create(workspace=brand.workspace, group=gold.group, name="本地", wecom_tag_id="etLOCAL")
    # Renamed in WeCom, and a new tag created.
    fake.tag_groups[0]["tag"][0]["name"] = "黑金卡"
    fake.tag_groups[0]["tag"].append({"id": "etTAG3", "name": "铜卡", "create_time": 2, "order": 0, "deleted": False})
    push(client, brand, fake, "change_external_tag", "update", at=1_795_400_001, Id="etTAG1", TagType="tag")
    push(client, brand, fake, "change_external_tag", "create", at=1_795_400_002, Id="etTAG3", TagType="tag")
    apply()
    gold.refresh_from_db()
    assert gold.name == "黑金卡"
    assert Tag.objects.get(wecom_tag_id="etTAG3").group_id == gold.group_id
    assert [c.body for c in fake.api_calls("externalcontact/get_corp_tag_list")] == [
        {"tag_id": ["etTAG1"]},
        {"tag_id": ["etTAG3"]},
    ]
    assert Tag.objects.filter(pk=local.pk).exists()  # not in the answer, but not asked about either

    # Deleted in WeCom: gone in siyu, with its assignments.
    customer = add_friend(client, brand, fake, "wmTAG")
    CustomerTag.objects.create(
        workspace=brand.workspace, customer=customer, tag=silver, source=TagSource.WECOM, created_at=T0
    )
    fake.tag_groups[0]["tag"] = [t for t in fake.tag_groups[0]["tag"] if t["id"] != "etTAG2"]
    push(client, brand, fake, "change_external_tag", "delete", at=1_795_400_003, Id="etTAG2", TagType="tag")
    apply()
    assert not Tag.objects.filter(pk=silver.pk).exists()
    assert not CustomerTag.objects.filter(customer=customer).exists()
    assert Tag.objects.filter(pk=local.pk).exists()

    # A whole group deleted: its linked tags go, the group is unlinked.
    fake.tag_groups.clear()
    push(client, brand, fake, "change_external_tag", "delete", at=1_795_400_004, Id="etGROUP1", TagType="tag_group")
    apply()
    group = TagGroup.objects.get(pk=gold.group_id)
    assert group.wecom_group_id == ""
    assert not Tag.objects.filter(wecom_tag_id__in=["etTAG1", "etTAG3", "etLOCAL"]).exists()


# ---- transfer_fail -----------------------------------------------------------------------------


@pytest.fixture
def handover_calls(monkeypatch):
    """Calls to ``siyu.handover.services.transfer_failed`` (the handover app's API; a stand-in
    module until that app exists)."""
    calls = []

    def transfer_failed(workspace, *, takeover_userid, external_userid, reason, at):
        calls.append(
            {
                "workspace": workspace.pk,
                "takeover_userid": takeover_userid,
                "external_userid": external_userid,
                "reason": reason,
                "at": at,
            }
        )

    try:
        import siyu.handover.services as handover
    except ImportError:
        package, handover = types.ModuleType("siyu.handover"), types.ModuleType("siyu.handover.services")
        package.services = handover
        monkeypatch.setitem(sys.modules, "siyu.handover", package)
        monkeypatch.setitem(sys.modules, "siyu.handover.services", handover)
    monkeypatch.setattr(handover, "transfer_failed", transfer_failed, raising=False)
    return calls


def test_transfer_fail_is_handed_to_the_handover_app(client, brand, fake, handover_calls):
    customer = add_friend(client, brand, fake, "wmMOVE")
    push(client, brand, fake, "change_external_contact", "transfer_fail", at=1_795_400_100,
         UserID="lina", ExternalUserID="wmMOVE", FailReason="customer_refused")  # fmt: skip
    apply()
    [call] = handover_calls
    assert call == {
        "workspace": brand.workspace.pk,
        "takeover_userid": "lina",
        "external_userid": "wmMOVE",
        "reason": "customer_refused",
        "at": dt.datetime.fromtimestamp(1_795_400_100, tz=dt.UTC),
    }
    event = Event.objects.get(customer=customer, name="wecom_transfer_failed")
    assert event.properties == {"takeover_userid": "lina", "reason": "customer_refused"}
    assert Customer.objects.count() == 1
