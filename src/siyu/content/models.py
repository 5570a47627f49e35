"""Content operators reuse: materials (素材), scripts (话术) and message templates."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from siyu.org.models import Workspace


class Material(models.Model):
    """One reusable piece of content: a text, an image, a link, a mini-program card or a file."""

    class Kind(models.TextChoices):
        TEXT = "text", "文本"
        IMAGE = "image", "图片"
        LINK = "link", "链接"
        MINIPROGRAM = "miniprogram", "小程序卡片"
        FILE = "file", "文件"

    class Category(models.TextChoices):
        # The four kinds of Moments (朋友圈) content.
        MOMENTS_PRODUCT = "moments_product", "朋友圈·产品"
        MOMENTS_COMPANY = "moments_company", "朋友圈·企业"
        MOMENTS_INDUSTRY = "moments_industry", "朋友圈·行业"
        MOMENTS_CUSTOMER = "moments_customer", "朋友圈·客户故事"
        # The five kinds of group (社群) content.
        GROUP_BRAND_STORY = "group_brand_story", "社群·品牌故事"
        GROUP_ACTIVITY = "group_activity", "社群·活动"
        GROUP_PRODUCT = "group_product", "社群·产品"
        GROUP_RED_ENVELOPE = "group_red_envelope", "社群·红包互动"
        GROUP_KNOWLEDGE = "group_knowledge", "社群·知识课堂"
        OTHER = "other", "其他"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    category = models.CharField(max_length=32, choices=Category.choices, default=Category.OTHER)
    title = models.CharField(max_length=200)
    text = models.TextField(blank=True, default="")
    url = models.URLField(max_length=1000, blank=True, default="")
    # Image / file: stored under MEDIA_ROOT; mini-program: appid, pagepath, thumb in ``payload``.
    file = models.FileField(upload_to="materials/%Y/%m/", blank=True, default="")
    payload = models.JSONField(default=dict, blank=True)
    keywords = models.CharField(max_length=200, blank=True, default="")
    archived = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["workspace", "category", "-id"], name="material_category")]


class Script(models.Model):
    """A 话术: what staff say in a given scenario, searchable by keyword."""

    class Scenario(models.TextChoices):
        GREETING = "greeting", "欢迎/破冰"
        PRODUCT = "product", "产品介绍"
        OBJECTION = "objection", "异议处理"
        PROMOTION = "promotion", "活动邀约"
        AFTER_SALES = "after_sales", "售后服务"
        RECALL = "recall", "沉睡唤醒"
        OTHER = "other", "其他"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    scenario = models.CharField(max_length=32, choices=Scenario.choices, default=Scenario.OTHER)
    title = models.CharField(max_length=200)
    content = models.TextField()
    keywords = models.CharField(max_length=200, blank=True, default="")
    materials = models.ManyToManyField(Material, blank=True, related_name="+")
    use_count = models.IntegerField(default=0)
    archived = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["workspace", "scenario", "-id"], name="script_scenario")]


class MessageTemplate(models.Model):
    """A personalised message: a sandboxed Jinja ``body`` (and ``subject`` for email).

    SMS providers send only templates they approved: ``provider_template`` names the approved
    template (Aliyun TemplateCode / Tencent TemplateId) and ``provider_params`` maps each of
    its parameters to a Jinja expression, e.g. ``{"name": "{{ customer.name }}"}``. ``body``
    then holds the approved text as the customer will read it (for previews and the record).
    """

    class Medium(models.TextChoices):
        SMS = "sms", "短信"
        EMAIL = "email", "邮件"
        APP = "app", "App 推送"
        WECOM = "wecom", "企业微信"

    class Purpose(models.TextChoices):
        MARKETING = "marketing", "营销"
        SERVICE = "service", "服务通知"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100)
    medium = models.CharField(max_length=16, choices=Medium.choices)
    purpose = models.CharField(max_length=16, choices=Purpose.choices, default=Purpose.MARKETING)
    subject = models.CharField(max_length=200, blank=True, default="")
    body = models.TextField()
    provider_template = models.CharField(max_length=64, blank=True, default="")
    provider_params = models.JSONField(default=dict, blank=True)
    archived = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="template_name_unique")]
