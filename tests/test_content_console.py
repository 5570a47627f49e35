"""The content console (素材库 / 话术库 / 消息模板): pages per persona, uploads, field errors, live preview."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from siyu.content import services
from siyu.content.models import Material, MessageTemplate, Script
from siyu.content.services import MaterialInput, ScriptInput, TemplateInput
from siyu.customers.services import upsert_customers
from tests.conftest import PASSWORD

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def login(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.fixture
def shoppers(brand):
    items = [
        {
            "name": "王芳",
            "store_code": "SH01",
            "owner_wecom_userid": "wangxm",
            "identities": [{"type": "phone", "value": "13800000001"}],
        },
        {
            "name": "李静",
            "store_code": "HZ01",
            "owner_wecom_userid": "zhaomin",
            "identities": [{"type": "phone", "value": "13800000002"}],
        },
    ]
    ids = upsert_customers(brand.workspace, items, source="test").ids
    return {"wang": ids[0], "li": ids[1]}


@pytest.fixture
def library(brand):
    ws = brand.workspace
    services.create_material(
        ws, MaterialInput(kind="text", title="双十一预告", text="满 300 减 50", category="group_activity")
    )
    services.create_material(
        ws, MaterialInput(kind="link", title="新品页", url="https://shop.example.com/n", category="moments_product")
    )
    script = services.save_script(
        ws,
        ScriptInput(
            scenario="objection", title="客户嫌贵", content="一瓶能用三个月，每天不到 3 元", keywords="贵,价格"
        ),
    )
    services.save_script(ws, ScriptInput(scenario="greeting", title="加好友欢迎", content="您好，我是您的专属顾问"))
    template = services.save_template(
        ws, TemplateInput(name="新品短信", medium="sms", body="{{ customer.name }}，{{ store.name }}新品到店")
    )
    return {"script": script, "template": template}


# -- empty states ------------------------------------------------------------------------------


def test_empty_pages_explain_what_each_library_is_for(personas):
    client = login(personas.hq_admin)
    materials = client.get("/materials/").content.decode()
    assert 'data-testid="materials-empty"' in materials and "朋友圈" in materials and "添加第一个素材" in materials
    scripts = client.get("/scripts/").content.decode()
    assert 'data-testid="scripts-empty"' in scripts and "一键复制" in scripts and "/scripts/new/" in scripts
    templates = client.get("/message-templates/").content.decode()
    assert 'data-testid="templates-empty"' in templates and "/message-templates/new/" in templates


def test_nav_has_a_content_group(personas):
    html = login(personas.clerk_a).get("/scripts/").content.decode()
    assert "内容" in html and 'href="/materials/"' in html and 'href="/message-templates/"' in html


# -- materials ---------------------------------------------------------------------------------


def test_owner_uploads_an_image_and_it_shows_in_its_category(brand, personas, media):
    client = login(personas.hq_admin)
    response = client.post(
        "/materials/",
        {"kind": "image", "category": "moments_product", "title": "新品海报", "file": SimpleUploadedFile("a.png", PNG)},
    )
    assert response.status_code == 302 and response["Location"] == "/materials/?category=moments_product"
    material = Material.objects.get(workspace=brand.workspace)
    assert (media / material.file.name).read_bytes() == PNG
    html = client.get("/materials/?category=moments_product").content.decode()
    assert html.count('data-testid="material-card"') == 1 and material.file.url in html
    assert client.get("/materials/?category=group_activity").content.decode().count('data-testid="material-card"') == 0


def test_a_bad_upload_is_shown_at_the_file_field_and_the_input_is_kept(brand, personas):
    response = login(personas.hq_admin).post(
        "/materials/",
        {"kind": "image", "category": "other", "title": "假图片", "file": SimpleUploadedFile("a.png", b"<svg></svg>")},
    )
    html = response.content.decode()
    assert response.status_code == 422
    assert 'data-error-field="file"' in html and "不支持的文件类型" in html
    assert 'value="假图片"' in html
    assert not Material.objects.exists()


def test_miniprogram_errors_land_under_the_appid_input(personas):
    response = login(personas.hq_admin).post(
        "/materials/", {"kind": "miniprogram", "title": "会员中心", "appid": "123", "pagepath": "pages/a"}
    )
    assert response.status_code == 422 and 'data-error-field="payload.appid"' in response.content.decode()


def test_material_grid_list_search_and_chip_counts(personas, library):
    client = login(personas.clerk_a)
    grid = client.get("/materials/").content.decode()
    assert grid.count('data-testid="material-card"') == 2
    assert 'data-category="group_activity"' in grid and "🔗" in grid
    assert "添加素材" not in grid  # clerks read, they do not curate
    listed = client.get("/materials/?layout=list&q=双十一").content.decode()
    assert listed.count('data-testid="material-row"') == 1 and "双十一预告" in listed


def test_clerk_cannot_add_or_edit_materials(brand, personas, library):
    client = login(personas.clerk_a)
    assert client.post("/materials/", {"kind": "text", "title": "x", "text": "y"}).status_code == 403
    material = Material.objects.filter(workspace=brand.workspace).first()
    assert client.get(f"/materials/{material.pk}/").status_code == 403
    assert Material.objects.count() == 2


def test_manager_edits_and_archives_a_material(brand, personas, library):
    client = login(personas.manager_a)
    material = Material.objects.get(title="新品页")
    response = client.post(
        f"/materials/{material.pk}/",
        {"category": "moments_product", "title": "新品页", "url": "not a url", "kind": "link"},
    )
    assert response.status_code == 422 and 'data-error-field="url"' in response.content.decode()
    client.post(f"/materials/{material.pk}/", {"action": "archive"})
    assert Material.objects.get(pk=material.pk).archived


# -- scripts -----------------------------------------------------------------------------------


def test_scripts_are_grouped_by_scenario_searchable_and_copy_counts_a_use(personas, library):
    client = login(personas.clerk_a)
    html = client.get("/scripts/").content.decode()
    assert html.count('data-testid="scenario-group"') == 2
    assert html.index('data-scenario="greeting"') < html.index('data-scenario="objection"')
    assert "data-copy=" in html and "新建话术" not in html
    found = client.get("/scripts/?q=价格").content.decode()
    assert "客户嫌贵" in found and "加好友欢迎" not in found
    nothing = client.get("/scripts/?q=退货").content.decode()
    assert "没有找到与「退货」相关的话术" in nothing
    script = library["script"]
    answer = client.post(f"/scripts/{script.pk}/use/")
    assert answer.status_code == 200 and "已使用 1 次" in answer.content.decode()
    assert Script.objects.get(pk=script.pk).use_count == 1


def test_clerk_cannot_create_scripts_but_a_manager_can(personas, brand):
    assert login(personas.clerk_a).get("/scripts/new/").status_code == 403
    client = login(personas.manager_a)
    bad = client.post("/scripts/new/", {"scenario": "greeting", "title": "欢迎", "content": ""})
    assert bad.status_code == 422 and 'data-error-field="content"' in bad.content.decode()
    ok = client.post("/scripts/new/", {"scenario": "greeting", "title": "欢迎", "content": "您好！"})
    assert ok.status_code == 302 and Script.objects.filter(workspace=brand.workspace, title="欢迎").exists()


# -- templates ---------------------------------------------------------------------------------


def test_template_editor_lists_the_variables_and_saves(personas, brand):
    client = login(personas.hq_admin)
    page = client.get("/message-templates/new/").content.decode()
    assert 'data-testid="variables"' in page and "customer.attributes" in page and "unsubscribe_url" in page
    response = client.post(
        "/message-templates/new/",
        {"name": "生日祝福", "medium": "sms", "purpose": "service", "body": "{{ customer.name }}，生日快乐"},
    )
    template = MessageTemplate.objects.get(workspace=brand.workspace, name="生日祝福")
    assert response.status_code == 302 and response["Location"] == f"/message-templates/{template.pk}/"
    assert "生日祝福" in client.get("/message-templates/").content.decode()
    edit = client.get(f"/message-templates/{template.pk}/").content.decode()
    assert 'value="生日祝福"' in edit and 'data-testid="save"' in edit and "王芳" not in edit


def test_template_errors_are_shown_at_their_field(personas):
    client = login(personas.hq_admin)
    unknown = client.post("/message-templates/new/", {"name": "x", "medium": "sms", "body": "{{ customer.phone }}"})
    assert unknown.status_code == 422 and 'data-error-field="body"' in unknown.content.decode()
    param = client.post(
        "/message-templates/new/",
        {
            "name": "x",
            "medium": "sms",
            "body": "新品 拒收请回复R",
            "provider_template": "SMS_1",
            "params_text": "name = {{ customer.nick }}",
        },
    )
    assert 'data-error-field="provider_params.name"' in param.content.decode()
    suffix = client.post(
        "/message-templates/new/",
        {"name": "x", "medium": "sms", "body": "新品到店", "provider_template": "SMS_1", "params_text": ""},
    )
    assert 'data-error-field="body"' in suffix.content.decode() and "拒收请回复R" in suffix.content.decode()
    assert not MessageTemplate.objects.exists()


def test_live_preview_renders_for_the_chosen_customer(personas, shoppers):
    client = login(personas.hq_admin)
    form = {
        "medium": "sms",
        "purpose": "marketing",
        "body": "{{ customer.name }}，{{ store.name }}的{{ staff.name }}想你了",
    }
    html = client.post("/message-templates/preview/", {**form, "customer_id": shoppers["wang"]}).content.decode()
    assert "王芳，上海南京路店的王小美想你了拒收请回复R" in html
    sample = client.post("/message-templates/preview/", form).content.decode()
    assert 'data-testid="preview-sample"' in sample and "李静" in sample and "杭州湖滨店" in sample
    broken = client.post("/message-templates/preview/", {**form, "body": "{{ customer.name", "customer_id": ""})
    assert 'data-error-field="body"' in broken.content.decode()


def test_clerk_previews_only_their_own_customers_and_cannot_edit(personas, shoppers, library):
    client = login(personas.clerk_a)
    template = library["template"]
    page = client.get(f"/message-templates/{template.pk}/")
    html = page.content.decode()
    assert page.status_code == 200 and 'data-testid="read-only"' in html and 'data-testid="save"' not in html
    assert "王芳" in html and "李静" not in html  # the customer picker holds their customers only
    form = {"medium": "sms", "purpose": "marketing", "body": "{{ customer.name }}"}
    own = client.post("/message-templates/preview/", {**form, "customer_id": shoppers["wang"]}).content.decode()
    assert "王芳" in own
    other = client.post("/message-templates/preview/", {**form, "customer_id_typed": shoppers["li"]}).content.decode()
    assert "李静" not in other and "不在您的可见范围内" in other and 'data-error-field="customer_id"' in other
    saved = client.post(f"/message-templates/{template.pk}/", {"name": "改名", "medium": "sms", "body": "x"})
    assert saved.status_code == 403
    assert client.get("/message-templates/new/").status_code == 403
    assert MessageTemplate.objects.get(pk=template.pk).name == "新品短信"


def test_store_manager_reads_templates_but_only_hq_edits_them(personas, library):
    template = library["template"]
    manager = login(personas.manager_a)
    assert manager.get("/message-templates/").status_code == 200
    assert manager.post(f"/message-templates/{template.pk}/", {"action": "archive"}).status_code == 403
    analyst = login(personas.analyst)
    assert analyst.get("/message-templates/new/").status_code == 403
    hq = login(personas.hq_admin)
    hq.post(f"/message-templates/{template.pk}/", {"action": "archive"})
    assert MessageTemplate.objects.get(pk=template.pk).archived
