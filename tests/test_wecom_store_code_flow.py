"""The whole acquisition flow through the real callback endpoint: a customer scans a store
code → WeCom pushes add_external_contact with the code's state and a welcome code → the
profile, identity, relation, tags, owner and first-touch attribution are recorded, and the
code's welcome message goes out through send_welcome_msg within its window."""

from __future__ import annotations

from urllib.parse import urlencode

from siyu.acquisition.models import ChannelCodeAdd
from siyu.customers.models import Customer, Identity, StaffRelation
from siyu.tags.models import CustomerTag, Tag, TagGroup
from siyu.wecom import inbox
from siyu.wecom.crypto import MsgCrypt
from tests.fakes.wecom import encrypted_callback, event_xml
from tests.test_acquisition import AES_KEY, entry, make_code, wecom  # noqa: F401  (fixture)


def post_event(client, brand, fake, *, create_time=1795400000, **fields):
    crypt = MsgCrypt("AcmeToken2026", AES_KEY, fake.corp_id)
    xml = event_xml(fake.corp_id, "change_external_contact", "add_external_contact", create_time=create_time, **fields)
    query, body = encrypted_callback(crypt, xml)
    return client.post(f"/callbacks/wecom/{brand.workspace.slug}/?{urlencode(query)}", body, content_type="text/xml")


def test_scan_store_code_to_profile_tags_welcome_and_attribution(
    brand,
    wecom,  # noqa: F811
    client,
    django_capture_on_commit_callbacks,
):
    group = TagGroup.objects.create(workspace=brand.workspace, name="来源")
    tag = Tag.objects.create(workspace=brand.workspace, group=group, name="门店扫码")
    code = make_code(
        brand,
        "store",
        [entry(brand.clerk_a)],
        store_id=brand.store_a.pk,
        state="store-sh01",
        tag_ids=[tag.pk],
        welcome_text="欢迎来到{{ store.name }}，我是{{ staff.name }}，进店出示本消息领取小样～",
    )
    welcome_code = wecom.issue_welcome_code("wangxm", "wmScan0001")
    response = post_event(
        client, brand, wecom, UserID="wangxm", ExternalUserID="wmScan0001", State=code.state, WelcomeCode=welcome_code
    )
    assert response.status_code == 200 and response.content == b""  # answered before anything is applied
    assert not wecom.api_calls("externalcontact/send_welcome_msg")
    with django_capture_on_commit_callbacks(execute=True):
        assert inbox.process_all().processed == 1  # the worker's inbox
    identity = Identity.objects.get(workspace=brand.workspace, type="wecom_external_userid", value="wmScan0001")
    customer = Customer.objects.get(pk=identity.customer_id)
    assert customer.owner_staff_id == brand.clerk_a.pk and customer.store_id == brand.store_a.pk
    assert customer.source_channel == "store_code"
    relation = StaffRelation.objects.get(customer=customer, staff=brand.clerk_a)
    assert relation.state == "store-sh01" and relation.status == "active"
    assert CustomerTag.objects.filter(customer=customer, tag=tag).exists()
    assert ChannelCodeAdd.objects.filter(code=code, customer=customer).count() == 1
    [sent] = [c for c in wecom.calls if c.api == "externalcontact/send_welcome_msg"]
    assert sent.body["welcome_code"] == welcome_code
    assert sent.body["text"]["content"] == "欢迎来到上海南京路店，我是王小美，进店出示本消息领取小样～"

    # WeCom retries the same push: nothing is recorded twice and no second welcome goes out.
    again = post_event(
        client, brand, wecom, UserID="wangxm", ExternalUserID="wmScan0001", State=code.state, WelcomeCode=welcome_code
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert inbox.process_all().claimed == 0
    assert again.status_code == 200
    assert ChannelCodeAdd.objects.filter(code=code).count() == 1
    assert len([c for c in wecom.calls if c.api == "externalcontact/send_welcome_msg"]) == 1


def test_an_unknown_state_adds_the_friend_without_attribution(brand, wecom, client, django_capture_on_commit_callbacks):  # noqa: F811
    response = post_event(client, brand, wecom, UserID="wangxm", ExternalUserID="wmPlain01", State="nope")
    with django_capture_on_commit_callbacks(execute=True):
        inbox.process_all()
    assert response.status_code == 200
    assert StaffRelation.objects.filter(staff=brand.clerk_a, state="nope").exists()
    assert not ChannelCodeAdd.objects.exists()
    assert not [c for c in wecom.calls if c.api == "externalcontact/send_welcome_msg"]
