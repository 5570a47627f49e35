"""Keyword rules: customers are tagged by what they write, with the rule and message as source."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from siyu.conversations.models import Message
from siyu.conversations.services import ingest_messages
from siyu.customers.models import Customer
from siyu.customers.services import merge_customers
from siyu.tags.keyword_rules import apply_keyword_rules_to_history, create_rule, forget_compiled_rules, update_rule
from siyu.tags.keywords import Hit, Matcher, RuleWords, window_trigger
from siyu.tags.models import CustomerTag, KeywordMatch, KeywordRule, Tag, TagGroup, TagSource

T0 = dt.datetime(2026, 11, 1, 10, 0, tzinfo=dt.UTC)


# ---- the pure matcher --------------------------------------------------------------------


def test_contains_matches_chinese_words_anywhere_once_per_rule():
    matcher = Matcher([RuleWords(1, ("敏感肌", "泛红")), RuleWords(2, ("美白",)), RuleWords(3, ("孕期",))])
    assert matcher.match("我是敏感肌，用了会泛红吗？敏感肌能用吗") == {1}
    assert matcher.match("想要美白，孕期可以用吗") == {2, 3}
    assert matcher.match("好的谢谢") == set()


def test_exact_rules_need_the_whole_trimmed_message():
    matcher = Matcher([RuleWords(1, ("退订", "TD"), exact=True), RuleWords(2, ("退订",))])
    assert matcher.match("  退订 ") == {1, 2}
    assert matcher.match("td") == {1}
    assert matcher.match("我想退订短信") == {2}


def test_latin_and_full_width_letters_fold():
    matcher = Matcher([RuleWords(7, ("SK-II",))])
    assert matcher.match("ｓｋ－ｉｉ神仙水有货吗") == {7}
    assert matcher.match_words("sk-ii 和 SK-II") == {7: ["sk-ii"]}


def test_an_empty_rule_set_matches_nothing():
    matcher = Matcher([])
    assert matcher.match("敏感肌") == set()
    assert matcher.match_many(["a", ""]) == [set(), set()]


@given(
    words=st.lists(st.text(alphabet="敏感肌美白孕期价格ab", min_size=1, max_size=3), min_size=1, max_size=8),
    texts=st.lists(st.text(alphabet="敏感肌美白孕期价格ab，", max_size=12), max_size=10),
)
def test_matcher_agrees_with_naive_substring_search(words, texts):
    rules = [RuleWords(n, (w,)) for n, w in enumerate(words)]
    matcher = Matcher(rules)
    expected = [{n for n, w in enumerate(words) if w in text} for text in texts]
    assert matcher.match_many(texts) == expected
    assert [matcher.match(t) for t in texts] == expected


def test_window_trigger_needs_enough_hits_within_the_window():
    day = dt.timedelta(days=1)
    hits = [Hit(T0, 1, False), Hit(T0 + 5 * day, 2, True)]
    assert window_trigger(hits, 2, 7 * day) == 2
    assert window_trigger(hits, 2, 3 * day) is None
    assert window_trigger(hits, 2, None) == 2
    # Old hits alone were judged when they arrived.
    assert window_trigger([Hit(T0, 1, False), Hit(T0, 2, False)], 2, None) is None


# ---- ingestion ---------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def fresh_rules():
    # Workspace ids repeat across rolled-back tests; compiled rules must not leak between them.
    forget_compiled_rules()
    yield
    forget_compiled_rules()


@pytest.fixture
def tags(brand):
    group = TagGroup.objects.create(workspace=brand.workspace, name="肤质")
    return {
        name: Tag.objects.create(workspace=brand.workspace, group=group, name=name)
        for name in ("敏感肌", "美白", "孕期", "价格敏感")
    }


def msg(text, at, *, phone="13800000001", msgid=None, direction="in", staff="wangxm"):
    item = {
        "identity": {"type": "phone", "value": phone},
        "direction": direction,
        "text": text,
        "sent_at": at.isoformat(),
        "staff_wecom_userid": staff,
    }
    if msgid:
        item["external_msgid"] = msgid
    return item


def tags_of(phone="13800000001"):
    customer = Customer.objects.get(identities__value=phone)
    return {(ct.tag.name, ct.source, ct.source_ref) for ct in CustomerTag.objects.filter(customer=customer)}


def test_a_matching_customer_message_adds_the_rules_tags_with_rule_and_message_as_source(brand, tags):
    rule = create_rule(
        brand.workspace, {"name": "敏感肌", "keywords": ["敏感肌", "泛红"], "tag_ids": [tags["敏感肌"].pk]}
    )
    result = ingest_messages(
        brand.workspace,
        [msg("我是敏感肌，这款精华能用吗？", T0), msg("好的谢谢", T0, phone="13800000002")],
        source="api",
    )
    assert result.accepted == 2 and not result.errors
    message_id = result.ids[0]
    assert tags_of() == {("敏感肌", TagSource.KEYWORD, f"keyword_rule:{rule.pk} message:{message_id}")}
    assert tags_of("13800000002") == set()
    assert Message.objects.get(pk=message_id).staff == brand.clerk_a
    assert KeywordMatch.objects.filter(rule=rule).count() == 1


def test_staff_messages_do_not_tag_the_customer(brand, tags):
    create_rule(brand.workspace, {"name": "美白", "keywords": ["美白"], "tag_ids": [tags["美白"].pk]})
    ingest_messages(brand.workspace, [msg("美白的话推荐烟酰胺亮白精华", T0, direction="out")], source="api")
    assert tags_of() == set()


def test_min_matches_counts_only_messages_within_the_window(brand, tags):
    rule = create_rule(
        brand.workspace,
        {
            "name": "价格",
            "keywords": ["价格", "优惠"],
            "min_matches": 3,
            "window_days": 7,
            "tag_ids": [tags["价格敏感"].pk],
        },
    )
    day = dt.timedelta(days=1)
    ingest_messages(brand.workspace, [msg("现在什么价格？", T0), msg("有优惠吗", T0 + 2 * day)], source="api")
    assert tags_of() == set()
    # Third match, but the first one is now 10 days old: only two within 7 days.
    ingest_messages(brand.workspace, [msg("价格能便宜点吗", T0 + 10 * day)], source="api")
    assert tags_of() == set()
    result = ingest_messages(
        brand.workspace, [msg("会员日有优惠吗", T0 + 12 * day), msg("什么价格", T0 + 13 * day)], source="api"
    )
    # Days 10, 12 and 13 fall within one week: the day-13 message completes the count.
    assert tags_of() == {("价格敏感", TagSource.KEYWORD, f"keyword_rule:{rule.pk} message:{result.ids[1]}")}


def test_two_keywords_in_one_message_count_once(brand, tags):
    create_rule(
        brand.workspace,
        {"name": "价格", "keywords": ["价格", "优惠"], "min_matches": 2, "tag_ids": [tags["价格敏感"].pk]},
    )
    ingest_messages(brand.workspace, [msg("价格有优惠吗", T0)], source="api")
    assert tags_of() == set()


def test_exact_rules_match_the_whole_message_only(brand, tags):
    create_rule(
        brand.workspace,
        {"name": "孕期", "keywords": ["孕期"], "match_mode": "exact", "tag_ids": [tags["孕期"].pk]},
    )
    ingest_messages(brand.workspace, [msg("孕期可以用这个面霜吗？", T0)], source="api")
    assert tags_of() == set()
    ingest_messages(brand.workspace, [msg(" 孕期 ", T0)], source="api")
    assert {name for name, _, _ in tags_of()} == {"孕期"}


def test_a_replayed_external_msgid_is_stored_and_counted_once(brand, tags):
    rule = create_rule(
        brand.workspace,
        {"name": "美白", "keywords": ["美白"], "min_matches": 2, "tag_ids": [tags["美白"].pk]},
    )
    first = ingest_messages(brand.workspace, [msg("有美白的推荐吗", T0, msgid="m-1")], source="api")
    again = ingest_messages(
        brand.workspace, [msg("有美白的推荐吗", T0, msgid="m-1"), msg("有美白的推荐吗", T0, msgid="m-1")], source="api"
    )
    assert again.accepted == 2 and again.duplicates == 2
    assert again.ids == [first.ids[0], first.ids[0]]
    assert Message.objects.filter(external_msgid="m-1").count() == 1
    assert KeywordMatch.objects.filter(rule=rule).count() == 1
    assert tags_of() == set()


def test_rule_edits_take_effect_on_the_next_batch(brand, tags):
    rule = create_rule(brand.workspace, {"name": "美白", "keywords": ["美白"], "tag_ids": [tags["美白"].pk]})
    ingest_messages(brand.workspace, [msg("想要提亮肤色", T0)], source="api")
    update_rule(brand.workspace, rule.pk, {"name": "美白", "keywords": ["美白", "提亮"], "tag_ids": [tags["美白"].pk]})
    ingest_messages(brand.workspace, [msg("想要提亮肤色", T0)], source="api")
    assert {name for name, _, _ in tags_of()} == {"美白"}


def test_history_run_tags_customers_from_stored_messages_and_is_repeatable(brand, tags):
    ingest_messages(
        brand.workspace,
        [msg("敏感肌能用吗", T0), msg("敏感肌会泛红吗", T0, phone="13800000002"), msg("好的", T0, phone="13800000003")],
        source="api",
    )
    rule = create_rule(brand.workspace, {"name": "敏感肌", "keywords": ["敏感肌"], "tag_ids": [tags["敏感肌"].pk]})
    result = apply_keyword_rules_to_history(brand.workspace, rule_id=rule.pk)
    assert (result.matches, result.tagged, len(result.customers)) == (2, 2, 2)
    assert CustomerTag.objects.filter(tag=tags["敏感肌"], source=TagSource.KEYWORD).count() == 2
    again = apply_keyword_rules_to_history(brand.workspace)
    assert again.tagged == 0 and KeywordMatch.objects.count() == 2


def test_tagged_customers_are_marked_changed_for_segments(brand, tags):
    from siyu.customers.models import CustomerChange

    create_rule(brand.workspace, {"name": "美白", "keywords": ["美白"], "tag_ids": [tags["美白"].pk]})
    CustomerChange.objects.all().delete()
    ingest_messages(brand.workspace, [msg("美白", T0)], source="api")
    customer = Customer.objects.get(identities__value="13800000001")
    assert CustomerChange.objects.filter(customer_id=customer.pk).exists()


def test_matches_follow_a_merged_customer(brand, tags):
    create_rule(
        brand.workspace,
        {"name": "美白", "keywords": ["美白"], "min_matches": 2, "tag_ids": [tags["美白"].pk]},
    )
    ingest_messages(brand.workspace, [msg("美白", T0), msg("美白", T0, phone="13800000002")], source="api")
    a = Customer.objects.get(identities__value="13800000001")
    b = Customer.objects.get(identities__value="13800000002")
    merge_customers(brand.workspace.pk, survivor=a.pk, merged=b.pk, reason="test")
    assert KeywordMatch.objects.filter(customer_id=a.pk).count() == 2
    ingest_messages(brand.workspace, [msg("还是想要美白", T0 + dt.timedelta(hours=1))], source="api")
    assert CustomerTag.objects.filter(customer_id=a.pk, tag=tags["美白"]).exists()


def test_bad_items_are_rejected_by_field_and_good_ones_stored(brand):
    result = ingest_messages(
        brand.workspace,
        [
            msg("ok", T0),
            {**msg("x", T0), "direction": "sideways"},
            {**msg("x", T0), "sent_at": "yesterday"},
            {**msg("x", T0), "staff_wecom_userid": "nobody"},
            {**msg("x", T0, direction="out"), "staff_wecom_userid": None},
            {**msg("x", T0), "customer_id": 5},
        ],
        source="api",
    )
    assert result.accepted == 1
    assert [(e.index, e.field) for e in result.errors] == [
        (1, "direction"),
        (2, "sent_at"),
        (3, "staff_wecom_userid"),
        (4, "staff_id"),
        (5, ""),
    ]


# ---- API ---------------------------------------------------------------------------------


@pytest.fixture
def api(api_key):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {api_key}")

    def call(method, path, body=None):
        if body is None:
            return getattr(client, method)(f"/api/v1{path}")
        return getattr(client, method)(f"/api/v1{path}", json.dumps(body), content_type="application/json")

    return call


def test_keyword_rule_crud_through_the_api(api, brand, tags):
    body = {"name": "敏感肌", "keywords": ["敏感肌"], "tag_ids": [tags["敏感肌"].pk]}
    created = api("post", "/keyword-rules", body)
    assert created.status_code == 201, created.content
    rule_id = created.json()["id"]
    assert api("get", f"/keyword-rules/{rule_id}").json()["keywords"] == ["敏感肌"]
    updated = api("put", f"/keyword-rules/{rule_id}", {**body, "keywords": ["敏感肌", "泛红"], "min_matches": 2})
    assert updated.json()["min_matches"] == 2
    batch = api("post", "/messages/batch", {"items": [msg("会泛红吗", T0), msg("敏感肌", T0)]})
    assert batch.json()["accepted"] == 2
    assert [r["hits"] for r in api("get", "/keyword-rules").json()] == [2]
    assert {name for name, _, _ in tags_of()} == {"敏感肌"}
    assert api("delete", f"/keyword-rules/{rule_id}").status_code == 204
    assert api("get", f"/keyword-rules/{rule_id}").status_code == 404
    assert api("get", f"/keyword-rules/{2**70}").status_code == 404


def test_keyword_rule_validation_errors_name_the_field(api, brand, tags, other_workspace):
    good = {"name": "敏感肌", "keywords": ["敏感肌"], "tag_ids": [tags["敏感肌"].pk]}
    for change, field in [
        ({"keywords": []}, "keywords"),
        ({"keywords": ["  "]}, "keywords"),
        ({"match_mode": "regex"}, "match_mode"),
        ({"min_matches": 0}, "min_matches"),
        ({"tag_ids": []}, "tag_ids"),
        ({"colour": "red"}, "colour"),
    ]:
        response = api("post", "/keyword-rules", {**good, **change})
        assert response.status_code == 422, change
        assert field in [d["field"] for d in response.json()["detail"]], response.json()
    group = TagGroup.objects.create(workspace=other_workspace, name="g")
    foreign = Tag.objects.create(workspace=other_workspace, group=group, name="外部")
    for tag_id in (999_999, foreign.pk):
        response = api("post", "/keyword-rules", {**good, "tag_ids": [tag_id]})
        assert response.status_code == 422
        assert response.json()["field"] == "tag_ids"


# ---- console -----------------------------------------------------------------------------


def login(user):
    from tests.conftest import PASSWORD

    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def test_console_creates_a_rule_runs_it_on_history_and_shows_hits(brand, personas, tags):
    ingest_messages(brand.workspace, [msg("孕期可以用吗", T0), msg("我在孕期", T0, phone="13800000002")], source="api")
    client = login(personas.hq_admin)
    empty = client.get("/keyword-rules/").content.decode()
    assert "还没有关键词规则" in empty
    form = {"name": "孕期", "keywords": "孕期，怀孕", "match_mode": "contains", "min_matches": "1", "active": "on"}
    bad = client.post("/keyword-rules/new/", {**form, "tags": []})
    assert bad.status_code == 422 and "tag_ids" in bad.content.decode()
    client.post("/keyword-rules/new/", {**form, "tags": [tags["孕期"].pk]})
    rule = KeywordRule.objects.get()
    assert rule.keywords == ["孕期", "怀孕"]
    client.post("/keyword-rules/", {"action": "run", "rule": rule.pk})
    assert CustomerTag.objects.filter(tag=tags["孕期"], source=TagSource.KEYWORD).count() == 2
    html = client.get("/keyword-rules/").content.decode()
    assert f'data-testid="hits-{rule.pk}">2<' in html
    client.post("/keyword-rules/", {"action": "toggle", "rule": rule.pk})
    assert not KeywordRule.objects.get().active


def test_keyword_rules_are_hq_pages(personas):
    assert login(personas.manager_a).get("/keyword-rules/").status_code == 403
    assert login(personas.clerk_a).get("/keyword-rules/").status_code == 403
    analyst = login(personas.analyst)
    assert analyst.get("/keyword-rules/").status_code == 200
    assert analyst.get("/keyword-rules/new/").status_code == 403
