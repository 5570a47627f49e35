"""The content library: materials, scripts and message templates — validation, search, preview, API."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from siyu.channels.services import update_compliance_settings
from siyu.content import queries, services
from siyu.content.models import Material, MessageTemplate, Script
from siyu.content.queries import preview_sample, preview_template
from siyu.content.services import MaterialInput, ScriptInput, TemplateInput
from siyu.core.errors import InvalidInput, NotFound
from siyu.customers.services import upsert_customers
from siyu.org.models import AuditEntry, Role
from siyu.org.rules import api_key_scope, scope_for
from siyu.org.services import create_api_key

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n%%EOF\n"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def shoppers(brand):
    """王芳 at store A (owned by 王小美), 李静 at store B (owned by 赵敏), and 无名 with no store."""
    items = [
        {
            "name": "王芳",
            "city": "上海",
            "store_code": "SH01",
            "owner_wecom_userid": "wangxm",
            "attributes": {"vip_level": "金卡"},
            "identities": [{"type": "phone", "value": "13800000001"}],
        },
        {
            "name": "李静",
            "city": "杭州",
            "store_code": "HZ01",
            "owner_wecom_userid": "zhaomin",
            "identities": [{"type": "phone", "value": "13800000002"}],
        },
        {"name": "", "identities": [{"type": "phone", "value": "13800000003"}]},
    ]
    ids = upsert_customers(brand.workspace, items, source="test").ids
    return dict(zip(["wang", "li", "nobody"], ids, strict=True))


def hq(brand):
    return api_key_scope(brand.workspace.pk)


def clerk_a_scope(brand):
    return scope_for(
        workspace_id=brand.workspace.pk,
        role=Role.STAFF,
        can_view_pii=False,
        unit_path=brand.store_a.path,
        staff_id=brand.clerk_a.pk,
    )


def field_of(call) -> str:
    with pytest.raises((InvalidInput, NotFound)) as caught:
        call()
    return caught.value.field


def sms(body: str, **kw) -> TemplateInput:
    return TemplateInput(name=kw.pop("name", "t"), medium="sms", body=body, **kw)


# -- materials -------------------------------------------------------------------------------


def test_materials_of_each_kind_are_checked_field_by_field(brand):
    ws = brand.workspace
    assert field_of(lambda: services.create_material(ws, MaterialInput(kind="video", title="x"))) == "kind"
    assert field_of(lambda: services.create_material(ws, MaterialInput(kind="text", title=" "))) == "title"
    assert field_of(lambda: services.create_material(ws, MaterialInput(kind="text", title="空"))) == "text"
    assert (
        field_of(lambda: services.create_material(ws, MaterialInput(kind="text", title="x", text="y", category="ad")))
        == "category"
    )
    for bad in ("ftp://example.com/a", "javascript:alert(1)", "https://", "example.com"):
        assert field_of(lambda b=bad: services.create_material(ws, MaterialInput(kind="link", title="x", url=b))) == (
            "url"
        )
    card = MaterialInput(kind="miniprogram", title="会员中心", payload={"appid": "wx123", "pagepath": "pages/a"})
    assert field_of(lambda: services.create_material(ws, card)) == "payload.appid"
    card.payload = {"appid": "wx0123456789abcdef"}
    assert field_of(lambda: services.create_material(ws, card)) == "payload.pagepath"
    card.payload = {"appid": "wx0123456789abcdef", "pagepath": "/pages/member/index?from=sms", "colour": "red"}
    assert field_of(lambda: services.create_material(ws, card)) == "payload.colour"
    del card.payload["colour"]
    saved = services.create_material(ws, card)
    assert saved.payload == {"appid": "wx0123456789abcdef", "pagepath": "pages/member/index?from=sms"}
    link = services.create_material(
        ws, MaterialInput(kind="link", title="新品页", url="https://shop.example.com/new", keywords="新品， 精华 新品")
    )
    assert link.keywords == "新品,精华"
    assert not Material.objects.filter(kind="text").exists()
    assert AuditEntry.objects.filter(action="material.create", target=f"material:{link.pk}").exists()


def test_uploads_are_checked_by_content_and_size_and_stored_under_a_random_name(brand, media):
    ws = brand.workspace
    image = MaterialInput(kind="image", title="新品海报", category="moments_product")
    assert field_of(lambda: services.create_material(ws, image)) == "file"
    html = SimpleUploadedFile("poster.png", b"<html><script>alert(1)</script></html>", content_type="image/png")
    assert field_of(lambda: services.create_material(ws, image, upload=html)) == "file"
    exe = SimpleUploadedFile("tool.exe", b"MZ\x90\x00" + b"\x00" * 20)
    assert field_of(lambda: services.create_material(ws, MaterialInput(kind="file", title="x"), upload=exe)) == "file"
    fake_pdf = SimpleUploadedFile("price.pdf", b"not a pdf at all")
    assert (
        field_of(lambda: services.create_material(ws, MaterialInput(kind="file", title="x"), upload=fake_pdf)) == "file"
    )
    huge = SimpleUploadedFile("big.png", PNG + b"\x00" * services.MAX_UPLOAD_BYTES)
    assert field_of(lambda: services.create_material(ws, image, upload=huge)) == "file"
    assert not Material.objects.exists() and not list(media.rglob("*.*"))

    saved = services.create_material(ws, image, upload=SimpleUploadedFile("../../海报.png", PNG))
    assert saved.file.name.startswith("materials/") and saved.file.name.endswith(".png")
    assert "海报" not in saved.file.name and saved.payload["filename"] == "海报.png"
    assert (media / saved.file.name).read_bytes() == PNG
    doc = services.create_material(
        ws, MaterialInput(kind="file", title="价目表"), upload=SimpleUploadedFile("价目表.PDF", PDF)
    )
    assert doc.file.name.endswith(".pdf") and doc.payload["size"] == len(PDF)


def test_a_replaced_upload_removes_the_old_file_and_the_kind_cannot_change(brand, media):
    ws = brand.workspace
    fields = MaterialInput(kind="image", title="海报")
    saved = services.create_material(ws, fields, upload=SimpleUploadedFile("a.png", PNG))
    old = media / saved.file.name
    gif = b"GIF89a" + b"\x00" * 20
    updated = services.update_material(ws, saved.pk, fields, upload=SimpleUploadedFile("b.gif", gif))
    assert updated.file.name.endswith(".gif") and not old.exists()
    assert (media / updated.file.name).read_bytes() == gif
    text = MaterialInput(kind="text", title="海报", text="x")
    assert field_of(lambda: services.update_material(ws, saved.pk, text)) == "kind"


def test_material_search_and_category_filter(brand, other_workspace):
    ws = brand.workspace
    services.create_material(
        ws, MaterialInput(kind="text", title="双十一预告", text="全场满 300 减 50", category="group_activity")
    )
    services.create_material(
        ws, MaterialInput(kind="text", title="护肤小课堂", text="早C晚A", category="group_knowledge", keywords="精华")
    )
    services.create_material(other_workspace, MaterialInput(kind="text", title="双十一", text="别家的"))
    assert [m.title for m in queries.materials(ws, q="双十一")] == ["双十一预告"]
    assert [m.title for m in queries.materials(ws, q="精华")] == ["护肤小课堂"]
    assert [m.title for m in queries.materials(ws, q="满 300")] == ["双十一预告"]  # every word, anywhere
    assert [m.title for m in queries.materials(ws, category="group_knowledge")] == ["护肤小课堂"]
    assert queries.category_counts(ws) == {"group_activity": 1, "group_knowledge": 1}
    first = queries.list_materials(ws, limit=1)
    second = queries.list_materials(ws, limit=1, after=first.next_after)
    assert first.items[0].title == "护肤小课堂" and second.items[0].title == "双十一预告"
    assert second.next_after is None


# -- scripts ---------------------------------------------------------------------------------


def test_scripts_are_searchable_by_keyword_and_grouped_by_scenario(brand):
    ws = brand.workspace
    poster = services.create_material(ws, MaterialInput(kind="link", title="活动页", url="https://a.example.com/"))
    services.save_script(
        ws, ScriptInput(scenario="objection", title="嫌贵", content="这款精华一瓶用三个月…", keywords="贵 价格")
    )
    services.save_script(
        ws,
        ScriptInput(scenario="promotion", title="店庆邀约", content="周六店庆…", material_ids=(poster.pk,)),
    )
    services.save_script(ws, ScriptInput(scenario="greeting", title="加好友欢迎", content="您好，我是您的专属顾问"))
    assert [s.title for s in queries.scripts(ws, q="价格")] == ["嫌贵"]
    assert [s.title for s in queries.scripts(ws, q="店庆")] == ["店庆邀约"]
    groups = queries.scripts_by_scenario(ws)
    assert [g.scenario for g in groups] == ["greeting", "objection", "promotion"]  # the scenarios' own order
    assert [g.label for g in queries.scripts_by_scenario(ws, q="贵")] == ["异议处理"]
    assert field_of(lambda: services.save_script(ws, ScriptInput(title="x", content="y", scenario="chat"))) == (
        "scenario"
    )
    assert field_of(lambda: services.save_script(ws, ScriptInput(title="x", content=""))) == "content"
    services.archive_material(ws, poster.pk)
    assert field_of(lambda: services.save_script(ws, ScriptInput(title="x", content="y", material_ids=(poster.pk,))))
    assert field_of(lambda: services.save_script(ws, ScriptInput(title="x", content="y", material_ids=(99999,)))) == (
        "material_ids"
    )


def test_using_a_script_counts_and_archived_scripts_cannot_be_used(brand, other_workspace):
    script = services.save_script(brand.workspace, ScriptInput(title="欢迎", content="您好"))
    assert services.use_script(brand.workspace, script.pk) == 1
    assert services.use_script(brand.workspace, script.pk) == 2
    assert field_of(lambda: services.use_script(other_workspace, script.pk)) == "script_id"
    services.archive_script(brand.workspace, script.pk)
    assert field_of(lambda: services.use_script(brand.workspace, script.pk)) == "script_id"
    assert Script.objects.get(pk=script.pk).use_count == 2


# -- templates -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        (sms("{{ customer.nickname }}您好"), "body"),  # unknown field
        (sms("{{ password }}"), "body"),  # unknown variable
        (sms("{{ customer.name "), "body"),  # syntax
        (sms("x" * 2001), "body"),  # oversize
        (sms("{{ link('ftp://x.example.com') }}"), "body"),
        (sms("{{ customer.__class__ }}"), "body"),
        (TemplateInput(name="t", medium="email", body="hi"), "subject"),
        (TemplateInput(name="t", medium="email", body="hi", subject="{% if %}"), "subject"),
        (TemplateInput(name="t", medium="wecom", body="hi", subject="标题"), "subject"),
        (TemplateInput(name="t", medium="fax", body="hi"), "medium"),
        (sms("hi", purpose="spam"), "purpose"),
        (sms("hi 拒收请回复R", provider_template="SMS 1"), "provider_template"),
        (sms("hi 拒收请回复R", provider_params={"name": "{{ customer.name }}"}), "provider_template"),
        (
            sms("hi 拒收请回复R", provider_template="SMS_1", provider_params={"name": "{{ store.phone }}"}),
            "provider_params.name",
        ),
        (sms("hi 拒收请回复R", provider_template="SMS_1", provider_params={"bad-name": "x"}), "provider_params"),
        (
            TemplateInput(name="t", medium="email", subject="s", body="b", provider_template="SMS_1"),
            "provider_template",
        ),
        (TemplateInput(name=" ", medium="sms", body="hi"), "name"),
        (sms("  "), "body"),
    ],
)
def test_template_errors_name_the_field(brand, fields, field):
    assert field_of(lambda: services.save_template(brand.workspace, fields)) == field
    assert not MessageTemplate.objects.exists()


def test_marketing_sms_on_a_provider_template_must_carry_the_optout_suffix(brand):
    ws = brand.workspace
    params = {"name": "{{ customer.name }}"}
    missing = sms("【花漾】亲爱的${name}，新品上市", provider_template="SMS_1001", provider_params=params)
    with pytest.raises(InvalidInput) as caught:
        services.save_template(ws, missing)
    assert caught.value.field == "body" and "拒收请回复R" in caught.value.message
    # A service SMS has no suffix; a plain marketing SMS gets it appended at send time.
    services.save_template(ws, sms("您的订单已发货", name="发货", purpose="service", provider_template="SMS_2"))
    services.save_template(ws, sms("{{ customer.name }}，新品上市", name="普通营销"))
    missing.body += " 拒收请回复R"
    services.save_template(ws, missing)
    update_compliance_settings(ws, sms_optout_suffix="回T退订")
    missing.name = "另一个"
    assert field_of(lambda: services.save_template(ws, missing)) == "body"


def test_template_names_are_unique_per_workspace(brand, other_workspace):
    first = services.save_template(brand.workspace, sms("hi", name="欢迎"))
    assert field_of(lambda: services.save_template(brand.workspace, sms("hello", name="欢迎"))) == "name"
    services.save_template(other_workspace, sms("hi", name="欢迎"))
    again = services.save_template(brand.workspace, sms("hello again", name="欢迎"), template_id=first.pk)
    assert again.pk == first.pk and again.body == "hello again"


# -- previews --------------------------------------------------------------------------------


def test_preview_renders_the_customers_name_store_staff_and_brand(brand, shoppers):
    template = services.save_template(
        brand.workspace,
        TemplateInput(
            name="邮件",
            medium="email",
            subject="{{ customer.name }}，{{ brand.name }}会员专享",
            body=(
                "{{ customer.name }}（{{ customer.attributes.vip_level }}）您好，{{ store.name }}的{{ staff.name }}"
                "为您留了礼物：{{ link('https://shop.example.com/gift') }} 券码 {{ coupon_code }}\n"
                "退订：{{ unsubscribe_url }}"
            ),
        ),
    )
    result = preview_template(brand.workspace, template, shoppers["wang"], scope=hq(brand))
    assert result.subject == "王芳，Acme 美妆会员专享"
    assert "王芳（金卡）您好，上海南京路店的王小美为您留了礼物：https://shop.example.com/gift" in result.body
    assert result.links == ["https://shop.example.com/gift"]  # untracked in a preview
    assert queries.PREVIEW_COUPON in result.body and queries.PREVIEW_UNSUBSCRIBE in result.body
    assert result.warnings == []


def test_preview_reports_a_missing_value_at_the_field_instead_of_failing(brand, shoppers):
    fields = sms("{{ customer.name }}，您的等级：{{ customer.attributes.vip_level }}", purpose="service")
    with pytest.raises(InvalidInput) as caught:
        preview_template(brand.workspace, fields, shoppers["li"], scope=hq(brand))
    assert caught.value.field == "body" and "vip_level" in caught.value.message
    params = sms(
        "x 拒收请回复R", provider_template="SMS_1", provider_params={"level": "{{ customer.attributes.vip_level }}"}
    )
    assert field_of(lambda: preview_template(brand.workspace, params, shoppers["li"], scope=hq(brand))) == (
        "provider_params.level"
    )
    nameless = preview_template(
        brand.workspace, sms("{{ customer.name }}您好，{{ store.name }}"), shoppers["nobody"], scope=hq(brand)
    )
    assert nameless.warnings == ["customer.name", "store"]


def test_plain_marketing_sms_preview_shows_the_suffix_the_dispatcher_adds(brand, shoppers):
    marketing = preview_template(
        brand.workspace, sms("{{ customer.name }}，新品到店"), shoppers["wang"], scope=hq(brand)
    )
    assert marketing.body == "王芳，新品到店拒收请回复R" and marketing.suffix_added
    service = preview_template(
        brand.workspace, sms("{{ customer.name }}，已发货", purpose="service"), shoppers["wang"], scope=hq(brand)
    )
    assert service.body == "王芳，已发货" and not service.suffix_added


def test_a_clerk_cannot_preview_a_customer_outside_their_scope(brand, shoppers):
    fields = sms("{{ customer.name }}")
    assert preview_template(brand.workspace, fields, shoppers["wang"], scope=clerk_a_scope(brand)).body.startswith(
        "王芳"
    )
    with pytest.raises(NotFound) as caught:
        preview_template(brand.workspace, fields, shoppers["li"], scope=clerk_a_scope(brand))
    assert caught.value.field == "customer_id"
    rows = preview_sample(brand.workspace, fields, scope=clerk_a_scope(brand))
    assert [r.customer.pk for r in rows] == [shoppers["wang"]]


def test_sample_preview_keeps_going_past_a_customer_with_a_missing_value(brand, shoppers):
    fields = sms("{{ customer.attributes.vip_level }}", purpose="service")
    rows = preview_sample(brand.workspace, fields, scope=hq(brand), size=5)
    assert len(rows) == 3
    by_customer = {r.customer.pk: r for r in rows}
    assert by_customer[shoppers["wang"]].preview.body == "金卡"
    assert by_customer[shoppers["li"]].error.field == "body"


# -- API -------------------------------------------------------------------------------------


@pytest.fixture
def api(client, brand):
    key = create_api_key(workspace_slug=brand.workspace.slug, name="test")[1]
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return client


def test_api_material_crud_and_upload(api, brand, media):
    body = {"kind": "link", "title": "新品页", "url": "https://shop.example.com/n", "category": "moments_product"}
    created = api.post("/api/v1/materials", body, content_type="application/json")
    assert created.status_code == 201, created.content
    material_id = created.json()["id"]
    bad = api.post("/api/v1/materials", {**body, "url": "nope"}, content_type="application/json")
    assert bad.status_code == 422 and bad.json()["field"] == "url"
    changed = api.put(
        f"/api/v1/materials/{material_id}",
        {**body, "title": "新品页 2", "keywords": "新品,精华"},
        content_type="application/json",
    )
    assert changed.json()["title"] == "新品页 2" and changed.json()["keywords"] == ["新品", "精华"]
    listed = api.get("/api/v1/materials?category=moments_product&q=新品").json()
    assert [m["id"] for m in listed["items"]] == [material_id]
    upload = api.post(
        "/api/v1/materials/upload",
        {"kind": "image", "title": "海报", "file": SimpleUploadedFile("p.png", PNG, content_type="image/png")},
    )
    assert upload.status_code == 201 and upload.json()["file_url"].startswith("/media/materials/")
    refused = api.post(
        "/api/v1/materials/upload", {"kind": "image", "title": "海报", "file": SimpleUploadedFile("p.png", b"<svg/>")}
    )
    assert refused.status_code == 422 and refused.json()["field"] == "file"
    assert api.delete(f"/api/v1/materials/{material_id}").status_code == 204
    assert api.get("/api/v1/materials").json()["items"][0]["kind"] == "image"
    assert api.get("/api/v1/materials/999999").status_code == 404


def test_api_script_crud_and_use(api, brand):
    created = api.post(
        "/api/v1/scripts",
        {"scenario": "objection", "title": "嫌贵", "content": "一瓶用三个月", "keywords": "贵"},
        content_type="application/json",
    )
    assert created.status_code == 201
    script_id = created.json()["id"]
    assert api.post(f"/api/v1/scripts/{script_id}/use").json() == {"use_count": 1}
    assert api.get(f"/api/v1/scripts/{script_id}").json()["use_count"] == 1
    assert [s["id"] for s in api.get("/api/v1/scripts?q=贵").json()["items"]] == [script_id]
    bad = api.put(
        f"/api/v1/scripts/{script_id}",
        {"title": "嫌贵", "content": "x", "material_ids": [12345]},
        content_type="application/json",
    )
    assert bad.status_code == 422 and bad.json()["field"] == "material_ids"
    assert api.delete(f"/api/v1/scripts/{script_id}").status_code == 204
    assert api.get("/api/v1/scripts").json()["items"] == []


def test_api_template_round_trip_and_preview(api, brand, shoppers):
    body = {"name": "生日", "medium": "sms", "purpose": "service", "body": "{{ customer.name }}，生日快乐"}
    created = api.post("/api/v1/templates", body, content_type="application/json")
    assert created.status_code == 201
    template_id = created.json()["id"]
    dup = api.post("/api/v1/templates", body, content_type="application/json")
    assert dup.status_code == 422 and dup.json()["field"] == "name"
    unknown = api.put(
        f"/api/v1/templates/{template_id}", {**body, "body": "{{ customer.phone }}"}, content_type="application/json"
    )
    assert unknown.status_code == 422 and unknown.json()["field"] == "body"
    assert "customer.phone" in unknown.json()["detail"]
    params = {**body, "body": "x", "provider_template": "SMS_1", "provider_params": {"n": "{{ oops }}"}}
    bad_param = api.put(f"/api/v1/templates/{template_id}", params, content_type="application/json")
    assert bad_param.json()["field"] == "provider_params.n"
    preview = api.post(
        "/api/v1/templates/preview",
        {"template_id": template_id, "customer_id": shoppers["wang"]},
        content_type="application/json",
    )
    assert preview.status_code == 200 and preview.json()["body"] == "王芳，生日快乐"
    unsaved = api.post(
        "/api/v1/templates/preview",
        {"template": {"medium": "app", "subject": "{{ store.name }}", "body": "hi"}, "customer_id": shoppers["li"]},
        content_type="application/json",
    )
    assert unsaved.json()["subject"] == "杭州湖滨店"
    missing = api.post(
        "/api/v1/templates/preview",
        {"template_id": template_id, "customer_id": 999999},
        content_type="application/json",
    )
    assert missing.status_code == 404 and missing.json()["field"] == "customer_id"
    both = api.post("/api/v1/templates/preview", {"customer_id": 1}, content_type="application/json")
    assert both.status_code == 422
    assert "customer" in api.get("/api/v1/templates/variables").json()
    assert api.delete(f"/api/v1/templates/{template_id}").status_code == 204
    assert api.get("/api/v1/templates").json() == []
    assert api.get("/api/v1/templates?archived=true").json()[0]["name"] == "生日"


# -- demo ------------------------------------------------------------------------------------


def test_demo_content_covers_every_category_kind_and_scenario_and_its_templates_render(brand, shoppers, media):
    from siyu.demo.content import build_content

    build_content(brand.workspace, echo=lambda _: None)
    live = Material.objects.filter(workspace=brand.workspace)
    assert set(Material.Category.values) - {"other"} <= set(live.values_list("category", flat=True))
    assert set(live.values_list("kind", flat=True)) == set(Material.Kind.values)
    for material in live.exclude(file=""):
        head = (media / material.file.name).read_bytes()[:16]
        assert services.sniff_image(head) == "png" if material.kind == "image" else head.startswith(b"%PDF-")
    scenarios = set(Script.objects.filter(workspace=brand.workspace).values_list("scenario", flat=True))
    assert scenarios == set(Script.Scenario.values) - {"other"}
    templates = MessageTemplate.objects.filter(workspace=brand.workspace)
    assert {t.medium for t in templates} >= {"sms", "email", "app"}
    for template in templates:
        result = preview_template(brand.workspace, template, shoppers["wang"], scope=hq(brand))
        assert "王芳" in result.body
        if template.medium == "sms" and template.purpose == "marketing":
            assert result.body.endswith("拒收请回复R")
    email = templates.get(medium="email")
    assert "{{ unsubscribe_url }}" in email.body and "link('https://" in email.body
