"""Content library writes: materials (素材), scripts (话术) and message templates.

Each function validates everything first, then writes in one transaction with its audit
entry. Errors are ``InvalidInput`` / ``NotFound`` naming the offending field, so the API
and the console can put the message next to the right input.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import F

from siyu.channels.services import compliance_settings
from siyu.content.models import Material, MessageTemplate, Script
from siyu.content.rendering import MAX_SUBJECT, check_template
from siyu.core import clock
from siyu.core.errors import InvalidInput, NotFound
from siyu.org.models import Workspace
from siyu.org.services import audit

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_TEXT = 5000
MAX_SCRIPT = 2000
MAX_KEYWORDS = 200
# Mini-program AppIDs are "wx" and 16 hex digits; page paths are relative, query string allowed.
APPID = re.compile(r"^wx[0-9a-f]{16}$")
MINIPROGRAM_KEYS = {"appid", "pagepath", "thumb_url"}
# Approved template codes: Aliyun "SMS_123456789", Tencent numeric ids.
PROVIDER_TEMPLATE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
# Aliyun names its template parameters; Tencent numbers them ("1", "2", ...).
PARAM_NAME = re.compile(r"^[A-Za-z0-9_]{1,32}$")
KEYWORD_SPLIT = re.compile(r"[\s,，、;；]+")

# Uploads are recognised by their first bytes, never by the name or the browser's content type:
# an HTML or SVG file renamed .png would otherwise be served from our origin.
IMAGE_SIGNATURES = [
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
]
FILE_EXTENSIONS = {"pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "zip", "mp4", "txt", "csv"}
FILE_SIGNATURES = {
    "pdf": (b"%PDF-",),
    "docx": (b"PK\x03\x04",),
    "xlsx": (b"PK\x03\x04",),
    "pptx": (b"PK\x03\x04",),
    "zip": (b"PK\x03\x04",),
    # The old Office formats are OLE compound files.
    "doc": (b"\xd0\xcf\x11\xe0",),
    "xls": (b"\xd0\xcf\x11\xe0",),
    "ppt": (b"\xd0\xcf\x11\xe0",),
}


# -- materials -------------------------------------------------------------------------------


@dataclass
class MaterialInput:
    kind: str
    title: str
    category: str = Material.Category.OTHER
    text: str = ""
    url: str = ""
    payload: dict[str, Any] | None = None
    keywords: str = ""


def create_material(
    workspace: Workspace, fields: MaterialInput, *, upload: UploadedFile | None = None, user=None
) -> Material:
    """Create a material. Images and files need ``upload``; it is checked and stored under a random name."""
    clean = _clean_material(fields)
    stored = _checked_upload(clean["kind"], upload, required=True)
    now = clock.now()
    material = Material(workspace=workspace, created_by=user, created_at=now, updated_at=now, **clean)
    if stored is not None:
        name, original = stored
        material.payload = {**material.payload, "filename": original, "size": upload.size}
        material.file.save(name, upload, save=False)
    try:
        with transaction.atomic():
            material.save()
            audit(workspace=workspace, action="material.create", target=f"material:{material.pk}", user=user)
    except Exception:
        # The file was written before the row; a row that never committed must not leave it behind.
        if material.file:
            material.file.delete(save=False)
        raise
    return material


def update_material(
    workspace: Workspace,
    material_id: int,
    fields: MaterialInput,
    *,
    upload: UploadedFile | None = None,
    user=None,
) -> Material:
    """Change a material's fields; a new ``upload`` replaces the stored file. The kind is fixed once created."""
    clean = _clean_material(fields)
    stored = _checked_upload(clean["kind"], upload, required=False)
    with transaction.atomic():
        material = Material.objects.select_for_update().filter(workspace=workspace, pk=material_id).first()
        if material is None:
            raise NotFound("素材不存在 / no material with this id", field="material_id")
        if material.kind != clean["kind"]:
            raise InvalidInput("素材类型创建后不能修改 / the kind of a material cannot change", field="kind")
        old_file = material.file.name if material.file else ""
        keep = {k: v for k, v in material.payload.items() if k in ("filename", "size")}
        for key, value in clean.items():
            setattr(material, key, value)
        material.payload = {**clean["payload"], **keep}
        if stored is not None:
            name, original = stored
            material.payload.update(filename=original, size=upload.size)
            material.file.save(name, upload, save=False)
        material.updated_at = clock.now()
        material.save()
        audit(workspace=workspace, action="material.update", target=f"material:{material.pk}", user=user)
    if stored is not None and old_file:
        material.file.storage.delete(old_file)
    return material


def archive_material(workspace: Workspace, material_id: int, *, user=None) -> None:
    """Hide a material from the library; scripts that link it keep the link (and its history)."""
    with transaction.atomic():
        changed = Material.objects.filter(workspace=workspace, pk=material_id).update(
            archived=True, updated_at=clock.now()
        )
        if not changed:
            raise NotFound("素材不存在 / no material with this id", field="material_id")
        audit(workspace=workspace, action="material.archive", target=f"material:{material_id}", user=user)


def _clean_material(fields: MaterialInput) -> dict[str, Any]:
    kind = fields.kind
    if kind not in Material.Kind.values:
        raise InvalidInput(f"未知素材类型 / unknown kind '{kind}' ({', '.join(Material.Kind.values)})", field="kind")
    if fields.category not in Material.Category.values:
        raise InvalidInput(f"未知分类 / unknown category '{fields.category}'", field="category")
    title = _required_text(fields.title, "title", 200, "标题")
    text = (fields.text or "").strip()
    if kind == Material.Kind.TEXT and not text:
        raise InvalidInput("文本素材需要填写内容 / a text material needs its text", field="text")
    if len(text) > MAX_TEXT or "\x00" in text:
        raise InvalidInput(f"内容最多 {MAX_TEXT} 字 / text is longer than {MAX_TEXT}", field="text")
    url = (fields.url or "").strip()
    if kind == Material.Kind.LINK:
        check_web_url(url, field="url")
    elif url:
        raise InvalidInput("只有链接素材填写网址 / only link materials have a URL", field="url")
    payload = _clean_payload(kind, fields.payload or {})
    return {
        "kind": kind,
        "category": fields.category,
        "title": title,
        "text": text,
        "url": url,
        "payload": payload,
        "keywords": clean_keywords(fields.keywords),
    }


def _clean_payload(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    if kind != Material.Kind.MINIPROGRAM:
        # filename / size are ours, set from the upload; nothing else is stored for other kinds.
        return {}
    unknown = sorted(set(payload) - MINIPROGRAM_KEYS)
    if unknown:
        raise InvalidInput(f"未知字段 / unknown field '{unknown[0]}'", field=f"payload.{unknown[0]}")
    appid = str(payload.get("appid") or "").strip()
    if not APPID.match(appid):
        raise InvalidInput(
            "请填写小程序 AppID（wx 开头的 18 位）/ appid must look like wx0123456789abcdef", field="payload.appid"
        )
    pagepath = str(payload.get("pagepath") or "").strip()
    if not pagepath or len(pagepath) > 500 or pagepath.startswith(("http:", "https:", "//")) or "\x00" in pagepath:
        raise InvalidInput(
            "请填写小程序页面路径，如 pages/index/index?id=1 / pagepath is a page of the mini-program",
            field="payload.pagepath",
        )
    out = {"appid": appid, "pagepath": pagepath.lstrip("/")}
    thumb = str(payload.get("thumb_url") or "").strip()
    if thumb:
        check_web_url(thumb, field="payload.thumb_url")
        out["thumb_url"] = thumb
    return out


def check_web_url(url: str, *, field: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 1000 or " " in url:
        raise InvalidInput("请填写 http:// 或 https:// 开头的网址 / a valid http(s) URL is required", field=field)


def _checked_upload(kind: str, upload: UploadedFile | None, *, required: bool) -> tuple[str, str] | None:
    """(storage name, original name) for an acceptable upload; None when there is none to store."""
    if kind not in (Material.Kind.IMAGE, Material.Kind.FILE):
        if upload is not None:
            raise InvalidInput("只有图片和文件素材可以上传 / only images and files take an upload", field="file")
        return None
    if upload is None:
        if required:
            raise InvalidInput("请选择要上传的文件 / choose a file to upload", field="file")
        return None
    if not upload.size:
        raise InvalidInput("文件是空的 / the file is empty", field="file")
    if upload.size > MAX_UPLOAD_BYTES:
        raise InvalidInput(
            f"文件超过 {MAX_UPLOAD_BYTES // (1024 * 1024)} MB / the file is larger than "
            f"{MAX_UPLOAD_BYTES // (1024 * 1024)} MB",
            field="file",
        )
    original = (upload.name or "").replace("\\", "/").rsplit("/", 1)[-1][:200]
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    ext = sniff_image(head) if kind == Material.Kind.IMAGE else _file_type(original, head, upload)
    if ext is None:
        allowed = "PNG / JPG / GIF / WebP" if kind == Material.Kind.IMAGE else ", ".join(sorted(FILE_EXTENSIONS))
        raise InvalidInput(f"不支持的文件类型（支持 {allowed}）/ unsupported file type", field="file")
    return f"{uuid.uuid4().hex}.{ext}", original


def sniff_image(head: bytes) -> str | None:
    for magic, ext in IMAGE_SIGNATURES:
        if head.startswith(magic):
            return ext
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def _file_type(name: str, head: bytes, upload: UploadedFile) -> str | None:
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if ext not in FILE_EXTENSIONS:
        return None
    if ext in FILE_SIGNATURES:
        return ext if head.startswith(FILE_SIGNATURES[ext]) else None
    if ext == "mp4":
        return ext if head[4:8] == b"ftyp" else None
    # txt / csv: UTF-8 text without NULs (a binary renamed .txt is refused).
    sample = upload.read(8192)
    upload.seek(0)
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 4:  # a character cut at the sample's end is fine
            return None
    return None if b"\x00" in sample else ext


def clean_keywords(value: str | Iterable[str]) -> str:
    """Keywords as one comma-separated string: split on spaces and (Chinese) commas, deduplicated."""
    words = KEYWORD_SPLIT.split(value) if isinstance(value, str) else [w.strip() for w in value]
    seen: list[str] = []
    for word in words:
        if word and word not in seen:
            seen.append(word)
    text = ",".join(seen)
    if len(text) > MAX_KEYWORDS or "\x00" in text:
        raise InvalidInput(f"关键词合计最多 {MAX_KEYWORDS} 字 / keywords are too long", field="keywords")
    return text


def _required_text(value: str, field: str, limit: int, label: str) -> str:
    text = (value or "").strip()
    if not text or len(text) > limit or "\x00" in text:
        raise InvalidInput(f"{label}必填，最多 {limit} 字 / {field} needs 1 to {limit} characters", field=field)
    return text


# -- scripts ---------------------------------------------------------------------------------


@dataclass
class ScriptInput:
    title: str
    content: str
    scenario: str = Script.Scenario.OTHER
    keywords: str = ""
    material_ids: tuple[int, ...] = ()


def save_script(workspace: Workspace, fields: ScriptInput, *, script_id: int | None = None, user=None) -> Script:
    """Create a script, or change one (``script_id``); linked materials must be live ones of this workspace."""
    if fields.scenario not in Script.Scenario.values:
        raise InvalidInput(f"未知场景 / unknown scenario '{fields.scenario}'", field="scenario")
    title = _required_text(fields.title, "title", 200, "标题")
    content = _required_text(fields.content, "content", MAX_SCRIPT, "话术内容")
    keywords = clean_keywords(fields.keywords)
    wanted = list(dict.fromkeys(fields.material_ids))
    found = set(
        Material.objects.filter(workspace=workspace, pk__in=wanted, archived=False).values_list("pk", flat=True)
    )
    missing = [pk for pk in wanted if pk not in found]
    if missing:
        raise InvalidInput(f"素材 {missing[0]} 不存在或已归档 / no material {missing[0]}", field="material_ids")
    now = clock.now()
    values = {"scenario": fields.scenario, "title": title, "content": content, "keywords": keywords}
    with transaction.atomic():
        if script_id is None:
            script = Script.objects.create(workspace=workspace, created_at=now, updated_at=now, **values)
            action = "script.create"
        else:
            script = Script.objects.select_for_update().filter(workspace=workspace, pk=script_id).first()
            if script is None:
                raise NotFound("话术不存在 / no script with this id", field="script_id")
            for key, value in values.items():
                setattr(script, key, value)
            script.updated_at = now
            script.save()
            action = "script.update"
        script.materials.set(wanted)
        audit(workspace=workspace, action=action, target=f"script:{script.pk}", user=user)
    return script


def archive_script(workspace: Workspace, script_id: int, *, user=None) -> None:
    with transaction.atomic():
        if not Script.objects.filter(workspace=workspace, pk=script_id).update(archived=True, updated_at=clock.now()):
            raise NotFound("话术不存在 / no script with this id", field="script_id")
        audit(workspace=workspace, action="script.archive", target=f"script:{script_id}", user=user)


def use_script(workspace: Workspace, script_id: int) -> int:
    """Count one use (a member of staff copied or sent it); returns the new count.

    An UPDATE with F() so two clerks copying at once both count.
    """
    with transaction.atomic():
        live = Script.objects.filter(workspace=workspace, pk=script_id, archived=False)
        if not live.update(use_count=F("use_count") + 1):
            raise NotFound("话术不存在 / no script with this id", field="script_id")
        return live.values_list("use_count", flat=True).get()


# -- message templates -----------------------------------------------------------------------


@dataclass
class TemplateInput:
    name: str
    medium: str
    body: str
    purpose: str = MessageTemplate.Purpose.MARKETING
    subject: str = ""
    provider_template: str = ""
    provider_params: dict[str, str] | None = None


def validate_template(workspace: Workspace, fields: TemplateInput) -> dict[str, Any]:
    """Everything but the name's uniqueness; returns the cleaned values. Used by save and by preview."""
    medium = fields.medium
    if medium not in MessageTemplate.Medium.values:
        raise InvalidInput(f"未知渠道类型 / unknown medium '{medium}'", field="medium")
    if fields.purpose not in MessageTemplate.Purpose.values:
        raise InvalidInput(f"未知用途 / unknown purpose '{fields.purpose}'", field="purpose")
    body = fields.body or ""
    if not body.strip():
        raise InvalidInput("正文必填 / the body is required", field="body")
    check_template(body, field="body", medium=medium)
    subject = (fields.subject or "").strip()
    if medium == MessageTemplate.Medium.EMAIL:
        if not subject:
            raise InvalidInput("邮件需要标题 / an email needs a subject", field="subject")
        check_template(subject, field="subject", medium=medium, max_length=MAX_SUBJECT)
    elif medium == MessageTemplate.Medium.APP:
        # A push notification's title is optional.
        if subject:
            check_template(subject, field="subject", medium=medium, max_length=MAX_SUBJECT)
    elif subject:
        raise InvalidInput("只有邮件和 App 推送有标题 / only email and app push have a subject", field="subject")
    provider_template = (fields.provider_template or "").strip()
    params = fields.provider_params or {}
    if not isinstance(params, dict):
        raise InvalidInput('参数应为 {"名称": "模板表达式"} / provider_params is an object', field="provider_params")
    if provider_template or params:
        if medium != MessageTemplate.Medium.SMS:
            raise InvalidInput("只有短信使用服务商模板 / only SMS uses provider templates", field="provider_template")
        if not PROVIDER_TEMPLATE.match(provider_template):
            raise InvalidInput(
                "请填写服务商审核通过的模板编号，如 SMS_123456789 / the approved template code",
                field="provider_template",
            )
    for key, source in params.items():
        if not PARAM_NAME.match(str(key)):
            raise InvalidInput(f"参数名只能含字母、数字和下划线 / bad parameter name '{key}'", field="provider_params")
        if not isinstance(source, str):
            raise InvalidInput("参数值应为文本 / a parameter is a text", field=f"provider_params.{key}")
        check_template(source, field=f"provider_params.{key}", medium=medium, max_length=500)
    if (
        medium == MessageTemplate.Medium.SMS
        and fields.purpose == MessageTemplate.Purpose.MARKETING
        and provider_template
    ):
        # The provider sends the approved text as is: we cannot append the opt-out suffix at send
        # time, so the approved template itself must end with it.
        suffix = compliance_settings(workspace.pk).sms_optout_suffix
        if suffix and not body.rstrip().endswith(suffix):
            raise InvalidInput(
                f"营销短信模板须以退订提示「{suffix}」结尾（服务商模板发送时无法追加）"
                f" / a marketing SMS template must end with '{suffix}'",
                field="body",
            )
    return {
        "medium": medium,
        "purpose": fields.purpose,
        "subject": subject,
        "body": body,
        "provider_template": provider_template,
        "provider_params": {str(k): v for k, v in params.items()},
    }


def save_template(
    workspace: Workspace, fields: TemplateInput, *, template_id: int | None = None, user=None
) -> MessageTemplate:
    """Create a template, or change one. Every variable and link is checked now, not while sending."""
    name = _required_text(fields.name, "name", 100, "模板名称")
    values = validate_template(workspace, fields)
    now = clock.now()
    try:
        with transaction.atomic():
            if MessageTemplate.objects.filter(workspace=workspace, name=name).exclude(pk=template_id).exists():
                raise InvalidInput(f"已有同名模板 / a template named '{name}' exists", field="name")
            if template_id is None:
                template = MessageTemplate.objects.create(
                    workspace=workspace, name=name, created_at=now, updated_at=now, **values
                )
                action = "template.create"
            else:
                template = (
                    MessageTemplate.objects.select_for_update().filter(workspace=workspace, pk=template_id).first()
                )
                if template is None:
                    raise NotFound("模板不存在 / no template with this id", field="template_id")
                for key, value in values.items():
                    setattr(template, key, value)
                template.name, template.updated_at = name, now
                template.save()
                action = "template.update"
            audit(workspace=workspace, action=action, target=f"template:{template.pk}", user=user)
    except IntegrityError:
        # Two saves of the same name at once: the unique constraint decides.
        raise InvalidInput(f"已有同名模板 / a template named '{name}' exists", field="name") from None
    return template


def archive_template(workspace: Workspace, template_id: int, *, user=None) -> None:
    """Hide a template from new sends; messages already in the outbox keep their rendered text."""
    with transaction.atomic():
        changed = MessageTemplate.objects.filter(workspace=workspace, pk=template_id).update(
            archived=True, updated_at=clock.now()
        )
        if not changed:
            raise NotFound("模板不存在 / no template with this id", field="template_id")
        audit(workspace=workspace, action="template.archive", target=f"template:{template_id}", user=user)
