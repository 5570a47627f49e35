"""The demo brand's content library: materials in every category, scripts for every scenario,
and the message templates a beauty brand sends (SMS, email, app push, WeCom).

Text, link and mini-program materials, scripts and templates go through the content services,
so the demo only holds what an operator could have saved. Images and files are written once
under fixed names in MEDIA_ROOT (a rerun overwrites them instead of piling up copies).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from siyu.channels.services import compliance_settings
from siyu.content import services
from siyu.content.models import Material
from siyu.content.services import MaterialInput, ScriptInput, TemplateInput
from siyu.core import clock
from siyu.org.models import Workspace

SHOP = "https://shop.huayang-demo.example.com"
MP_APPID = "wx5f2c8a9d3e1b7460"

# (category, kind, title, text, url or payload, keywords)
MATERIALS: list[tuple[str, str, str, str, str | dict, str]] = [
    (
        "moments_product",
        "text",
        "玻尿酸精华·朋友圈文案",
        "换季皮肤干到起皮？这瓶玻尿酸水润精华我已经回购第三瓶了💧 质地清爽不黏腻，早晚两滴，上妆不卡粉。"
        "到店试用送小样，私信我预约～",
        "",
        "精华,保湿,玻尿酸",
    ),
    (
        "moments_company",
        "link",
        "品牌十周年：我们的故事",
        "十年前，我们在上海的一间小工作室里调出了第一瓶面霜。",
        f"{SHOP}/about/10-years",
        "品牌,周年",
    ),
    (
        "moments_industry",
        "text",
        "早C晚A入门指南",
        "早上用维C抗氧化，晚上用A醇抗老——但敏感肌要先建立耐受：A醇从每周两次开始，搭配修护面霜。",
        "",
        "早C晚A,护肤知识,敏感肌",
    ),
    (
        "moments_customer",
        "text",
        "顾客故事：陈小姐的换季修护",
        "陈小姐是我们南京西路店的老顾客，换季脸颊泛红。用了修护精华 + 舒缓面膜四周后，她说：终于敢素颜出门了。"
        "（已获顾客授权分享）",
        "",
        "顾客故事,修护,敏感肌",
    ),
    (
        "group_brand_story",
        "text",
        "社群开场：认识花漾",
        "欢迎来到花漾会员群🌸 我们专注东方植物护肤十年，群里每周二有护肤课堂、每周五有会员专属福利，有问题随时@你的专属顾问～",
        "",
        "欢迎,入群,品牌",
    ),
    (
        "group_activity",
        "link",
        "会员日活动页",
        "本周六会员日：全场 8 折，满 399 再送旅行装三件套。",
        f"{SHOP}/campaign/member-day",
        "会员日,活动,折扣",
    ),
    (
        "group_product",
        "miniprogram",
        "小程序：新品烟酰胺精华",
        "点卡片直接下单，会员价 269 元。",
        {"appid": MP_APPID, "pagepath": "pages/product/detail?sku=SK-002&from=group"},
        "新品,烟酰胺,美白",
    ),
    (
        "group_red_envelope",
        "text",
        "红包雨互动口令",
        "今晚 20:00 群红包雨🧧 手气最佳的 3 位姐妹送正装面霜一瓶！提前在群里回复「花漾十周年」参与预热抽奖～",
        "",
        "红包,互动,抽奖",
    ),
    (
        "group_knowledge",
        "text",
        "护肤课堂：防晒怎么选",
        "SPF 看防 UVB（晒红），PA 看防 UVA（晒黑）。通勤选 SPF30 PA+++ 就够，户外选 SPF50+ PA++++，记得每 2-3 小时补涂。",
        "",
        "防晒,护肤课堂",
    ),
    (
        "group_knowledge",
        "miniprogram",
        "小程序：肤质测试",
        "3 分钟测出你的肤质，领取专属护肤方案。",
        {"appid": MP_APPID, "pagepath": "pages/quiz/skin-type"},
        "肤质测试,小程序",
    ),
]
# (category, kind, title, text, file name, keywords): written under materials/demo/.
FILES: list[tuple[str, str, str, str, str, str]] = [
    (
        "moments_product",
        "image",
        "春季新品海报",
        "春日限定·樱花精华水，3 月 15 日上市。",
        "spring-poster.png",
        "新品,海报",
    ),
    ("group_activity", "image", "会员日长图", "会员日福利一图看懂。", "member-day.png", "会员日,海报"),
    ("other", "file", "2025 春季产品价目表", "门店内部使用，请勿外发。", "price-list.pdf", "价目表,培训"),
]
SCRIPTS: list[tuple[str, str, str, str]] = [
    (
        "greeting",
        "加好友后的第一句",
        "您好呀～我是花漾美妆的专属顾问小美🌸 以后您护肤上有任何问题都可以找我，新品试用和会员福利我也会第一时间告诉您！",
        "欢迎,加好友,开场",
    ),
    (
        "greeting",
        "门店扫码后的欢迎",
        "感谢您今天来店里！刚才试用的精华我给您备注好了，回家用完觉得合适随时找我，线上下单也能享受门店会员价～",
        "欢迎,门店,扫码",
    ),
    (
        "product",
        "介绍玻尿酸精华",
        "这款精华含三重分子玻尿酸，大分子锁水、小分子深入补水，质地像水一样清爽，油皮干皮都适合，早晚各两滴就够。",
        "精华,保湿,玻尿酸",
    ),
    (
        "product",
        "敏感肌推荐",
        "敏感肌建议先用我们的修护系列：不含酒精和香精，先在耳后试用两天没有泛红再上脸，我给您寄两片小样先试试？",
        "敏感肌,修护,小样",
    ),
    (
        "objection",
        "客户说太贵了",
        "理解您～这瓶 30ml 可以用三个月左右，算下来每天不到 3 块钱。而且现在是会员价，再送您一套旅行装，其实很划算的。",
        "贵,价格,划算",
    ),
    (
        "objection",
        "客户担心过敏",
        "您的顾虑很正常。我们所有产品都做过人体斑贴测试，另外支持 7 天无理由，拆封试用不合适也可以退，您放心试。",
        "过敏,退货,安全",
    ),
    (
        "promotion",
        "会员日邀约",
        "亲爱的，这周六是我们的会员日，全场 8 折还送旅行装三件套！您上次看的那款面霜也在活动里，要不要我先帮您留一瓶？",
        "会员日,邀约,活动",
    ),
    (
        "after_sales",
        "物流慢的安抚",
        "非常抱歉让您久等了！我刚帮您查了物流，包裹已经到您所在城市，预计明天送达。给您申请了一张 20 元无门槛券作为补偿～",
        "物流,售后,补偿",
    ),
    (
        "after_sales",
        "使用后回访",
        "精华用了一周啦，感觉怎么样？如果觉得有点干，可以搭配我们的保湿面霜一起用，效果会更好哦。",
        "回访,使用感受",
    ),
    (
        "recall",
        "沉睡客户唤醒",
        "好久不见～最近换季皮肤还好吗？我们上了几款新品，特别适合您的肤质，给您准备了一份专属小样，有空来店里领呀！",
        "唤醒,沉睡,小样",
    ),
]


def build_content(workspace: Workspace, echo: Callable[[str], None]) -> None:
    materials = [
        services.create_material(
            workspace,
            MaterialInput(
                kind=kind,
                category=category,
                title=title,
                text=text,
                url=target if isinstance(target, str) else "",
                payload=target if isinstance(target, dict) else None,
                keywords=keywords,
            ),
        )
        for category, kind, title, text, target, keywords in MATERIALS
    ]
    materials += [store_file(workspace, *entry) for entry in FILES]
    by_title = {m.title: m.pk for m in materials}
    links = {
        "会员日邀约": ("会员日活动页", "会员日长图"),
        "介绍玻尿酸精华": ("玻尿酸精华·朋友圈文案",),
        "敏感肌推荐": ("顾客故事：陈小姐的换季修护",),
    }
    for scenario, title, content, keywords in SCRIPTS:
        linked = tuple(by_title[name] for name in links.get(title, ()))
        services.save_script(
            workspace,
            ScriptInput(scenario=scenario, title=title, content=content, keywords=keywords, material_ids=linked),
        )
    for fields in templates(compliance_settings(workspace.pk).sms_optout_suffix):
        services.save_template(workspace, fields)
    echo(f"内容 / content: {len(materials)} materials, {len(SCRIPTS)} scripts, {len(templates(''))} templates")


def templates(suffix: str) -> list[TemplateInput]:
    return [
        TemplateInput(
            name="会员日短信（阿里云审核模板）",
            medium="sms",
            purpose="marketing",
            # An approved provider template is sent as approved: it carries the opt-out suffix itself.
            body="【花漾美妆】亲爱的{{ customer.name }}，本周六会员日全场8折，{{ store.name }}等你来！" + suffix,
            provider_template="SMS_468923001",
            provider_params={"name": "{{ customer.name }}", "store": "{{ store.name }}"},
        ),
        TemplateInput(
            name="发货通知短信",
            medium="sms",
            purpose="service",
            body="【花漾美妆】{{ customer.name }}您好，您的订单已发货，物流详情：{{ link('" + SHOP + "/orders') }}",
        ),
        TemplateInput(
            name="沉睡唤醒短信",
            medium="sms",
            purpose="marketing",
            body="【花漾美妆】{{ customer.name }}，好久不见！送您一张50元券，券码{{ coupon_code }}，{{ store.name }}可用。",
        ),
        TemplateInput(
            name="3 月护肤月刊（邮件）",
            medium="email",
            purpose="marketing",
            subject="{{ customer.name }}，{{ brand.name }} 3 月护肤指南",
            body=(
                "{{ customer.name }}，你好：\n\n"
                "换季时节，皮肤屏障最脆弱。本期月刊为你准备了：\n"
                "1. 敏感肌换季修护三步法：{{ link('" + SHOP + "/journal/spring-repair') }}\n"
                "2. 春季新品樱花精华水抢先看：{{ link('" + SHOP + "/new/sakura') }}\n\n"
                "{% if store.name %}你的专属门店：{{ store.name }}，欢迎到店体验。\n{% endif %}"
                "\n—— {{ brand.name }}\n"
                "不想再收到月刊？退订：{{ unsubscribe_url }}\n"
            ),
        ),
        TemplateInput(
            name="新品到店推送（App）",
            medium="app",
            purpose="marketing",
            subject="新品到店",
            body="{{ customer.name }}，烟酰胺亮白精华新品到店，会员价 269 元，点击查看 {{ link('" + SHOP + "/new') }}",
        ),
        TemplateInput(
            name="导购一对一欢迎（企业微信）",
            medium="wecom",
            purpose="service",
            body="{{ customer.name }}您好，我是{{ store.name }}的{{ staff.name }}，以后护肤问题随时找我～",
        ),
    ]


def store_file(workspace: Workspace, category: str, kind: str, title: str, text: str, name: str, keywords: str):
    """Write a demo image or file under a fixed name (overwriting a previous demo's) and record it."""
    path = f"materials/demo/{name}"
    data = demo_png(name) if name.endswith(".png") else demo_pdf()
    if default_storage.exists(path):
        default_storage.delete(path)
    stored = default_storage.save(path, ContentFile(data))
    now = clock.now()
    return Material.objects.create(
        workspace=workspace,
        kind=kind,
        category=category,
        title=title,
        text=text,
        file=stored,
        payload={"filename": name, "size": len(data)},
        keywords=services.clean_keywords(keywords),
        created_at=now,
        updated_at=now,
    )


def demo_png(seed: str, size: int = 240) -> bytes:
    """A soft two-colour gradient, different per name: enough to tell posters apart in the grid."""
    hue = sum(seed.encode()) % 3
    rows = []
    for y in range(size):
        shade = 255 - y * 80 // size
        pixel = [shade, 200, 220] if hue == 0 else [250, shade, 210] if hue == 1 else [220, 235, shade]
        rows.append(b"\x00" + bytes(pixel) * size)
    raw = zlib.compress(b"".join(rows), 9)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def demo_pdf() -> bytes:
    """A one-page PDF (ASCII text: the base fonts have no Chinese glyphs)."""
    text = "Huayang Beauty (Demo) - Spring price list"
    stream = f"BT /F1 18 Tf 72 760 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
