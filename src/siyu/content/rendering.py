"""Personalised message text: operator-written Jinja, rendered in Jinja's sandbox.

Templates see only what is listed in ``VARIABLES``; anything else is refused when the
template is saved (``check_template``), not discovered while a broadcast is sending. Every
``link(url)`` call becomes a per-recipient tracked link (``tracked_link_url``) that records
a ``link_clicked`` event and then redirects.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.crypto import salted_hmac
from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from siyu.core.errors import InvalidInput

# Name -> the attributes a template may read of it (None: a plain value or a function).
VARIABLES: dict[str, tuple[str, ...] | None] = {
    "customer": ("name", "city", "province", "gender", "attributes", "id"),
    "staff": ("name",),
    "store": ("name", "city"),
    "brand": ("name",),
    "coupon_code": None,
    "link": None,
    "unsubscribe_url": None,
}
# What a customer's phone or mail client will take; over this is refused before sending.
MAX_LENGTH = {"sms": 500, "email": 200_000, "app": 4000, "wecom": 4000, "official_account": 4000}
MAX_SUBJECT = 200
LINK_SCHEMES = ("http", "https", "weixin")


# What a message template may not contain: loops, macros and blocks could make one render run
# for minutes (nested ``range`` loops), and a message needs none of them.
FORBIDDEN_NODES = (nodes.For, nodes.Macro, nodes.CallBlock, nodes.FilterBlock, nodes.Block, nodes.Extends,
                   nodes.Include, nodes.Import, nodes.FromImport, nodes.With, nodes.Scope)  # fmt: skip
MAX_REPEAT = 10_000  # the longest string ``*`` may build


class _Env(SandboxedEnvironment):
    """No autoescape: SMS, push and WeCom text are plain text (email bodies are text too).

    ``*`` and ``**`` are intercepted so ``'x' * 10**9`` cannot exhaust memory.
    """

    intercepted_binops = frozenset(["*", "**"])

    def call_binop(self, context, operator, left, right):
        if operator == "**":
            if abs(left) > 1000 or abs(right) > 10:
                raise SecurityError("exponent too large")
        elif operator == "*" and (isinstance(left, str | list) or isinstance(right, str | list)):
            sequence, count = (left, right) if isinstance(left, str | list) else (right, left)
            if not isinstance(count, int) or count * len(sequence) > MAX_REPEAT:
                raise SecurityError("repetition too large")
        return super().call_binop(context, operator, left, right)


_env = _Env(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


@functools.lru_cache(maxsize=512)
def _compile(source: str):
    return _env.from_string(source)


def _describe(node: nodes.Node) -> str:
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        return f"{_describe(node.node)}.{node.attr}"
    return "…"


def check_template(source: str, *, field: str = "body", medium: str = "sms", max_length: int | None = None) -> None:
    """Raise InvalidInput (naming ``field``) for a template that cannot render for everyone."""
    limit = max_length if max_length is not None else MAX_LENGTH.get(medium, 4000)
    if "\x00" in source:
        raise InvalidInput("模板含有 NUL 字符 / the template contains a NUL character", field=field)
    if len(source) > max(limit * 4, 2000):
        raise InvalidInput(f"模板过长（超过 {limit} 字）/ the template is longer than {limit} characters", field=field)
    try:
        tree = _env.parse(source)
    except TemplateSyntaxError as exc:
        raise InvalidInput(f"模板语法错误（第 {exc.lineno} 行）：{exc.message}", field=field) from None
    for node in tree.find_all(FORBIDDEN_NODES):
        raise InvalidInput(
            f"模板不支持 {type(node).__name__.lower()}（消息模板只能用变量和 if 判断）/ not allowed in a message template",
            field=field,
        )
    static = sum(len(n.data) for n in tree.find_all(nodes.TemplateData))
    if static > limit:
        raise InvalidInput(f"内容超过 {limit} 字（{static} 字）/ longer than {limit} characters", field=field)
    unknown = sorted(meta.find_undeclared_variables(tree) - set(VARIABLES))
    if unknown:
        raise InvalidInput(
            f"未知变量 / unknown variable: {', '.join(unknown)}（可用：{', '.join(VARIABLES)}）", field=field
        )
    for node in tree.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name in VARIABLES:
            allowed = VARIABLES[node.node.name] or ()
            if node.attr not in allowed:
                raise InvalidInput(f"未知字段 / unknown field: {_describe(node)}", field=field)
    for node in tree.find_all(nodes.Getitem):  # customer["name"] is customer.name
        if isinstance(node.node, nodes.Name) and node.node.name in VARIABLES:
            key = node.arg.value if isinstance(node.arg, nodes.Const) else None
            if not isinstance(key, str) or key not in (VARIABLES[node.node.name] or ()):
                raise InvalidInput(f"未知字段 / unknown field: {node.node.name}[{key!r}]", field=field)
    for call in tree.find_all(nodes.Call):
        if isinstance(call.node, nodes.Name) and call.node.name == "link":
            if len(call.args) != 1 or call.kwargs:
                raise InvalidInput("link() 只接受一个网址参数 / link() takes one URL", field=field)
            arg = call.args[0]
            if isinstance(arg, nodes.Const):
                check_link_target(str(arg.value), field=field)


def check_link_target(url: str, *, field: str = "body") -> None:
    parts = urlsplit(url)
    if parts.scheme not in LINK_SCHEMES or not (parts.netloc or parts.scheme == "weixin"):
        raise InvalidInput(
            f"链接必须是 http(s):// 或 weixin:// 地址 / link target must be an http(s) or weixin URL: {url[:80]}",
            field=field,
        )


def link_token(message_id: int, index: int) -> str:
    """A short, unguessable token naming the ``index``-th link of a message."""
    sig = salted_hmac("siyu.link", f"{message_id}.{index}", algorithm="sha256").hexdigest()[:12]
    return f"{_b36(message_id)}-{index}-{sig}"


def parse_link_token(token: str) -> tuple[int, int] | None:
    try:
        b36, index_text, sig = token.split("-")
        message_id, index = int(b36, 36), int(index_text)
    except ValueError:
        return None
    if index < 0 or index > 50 or message_id <= 0:
        return None
    expected = salted_hmac("siyu.link", f"{message_id}.{index}", algorithm="sha256").hexdigest()[:12]
    return (message_id, index) if hmac.compare_digest(sig, expected) else None


def tracked_link_url(message_id: int, index: int) -> str:
    return f"{settings.PUBLIC_URL}/l/{link_token(message_id, index)}"


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


def customer_values(*, id: int, name: str, city: str, province: str, gender: str, attributes: Any) -> dict[str, Any]:
    """What a template sees as ``customer`` (the fields of ``VARIABLES["customer"]``)."""
    return {
        "id": id,
        "name": name or "",
        "city": city or "",
        "province": province or "",
        "gender": gender or "",
        "attributes": dict(attributes or {}),
    }


def customer_values_of(customer: Any) -> dict[str, Any]:
    """``customer_values`` for a Customer instance (None: an anonymous, empty customer)."""
    if customer is None:
        return customer_values(id=0, name="", city="", province="", gender="", attributes={})
    return customer_values(
        id=customer.pk,
        name=customer.name,
        city=customer.city,
        province=customer.province,
        gender=customer.gender,
        attributes=customer.attributes,
    )


@dataclass
class Rendered:
    subject: str
    body: str
    links: list[str] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)


@dataclass
class RenderContext:
    """Per-recipient values; ``message_id`` is None in previews (links are then shown as is)."""

    customer: dict[str, Any]
    staff: dict[str, Any] | None = None
    store: dict[str, Any] | None = None
    brand: dict[str, Any] | None = None
    coupon_code: str = ""
    message_id: int | None = None
    unsubscribe_url: str = ""


def render(
    *,
    body: str,
    subject: str = "",
    params: dict[str, str] | None = None,
    ctx: RenderContext,
    medium: str,
    suffix: str = "",
) -> Rendered:
    """Render one message. Raises InvalidInput when a value is missing or the result is too long."""
    links: list[str] = []

    def link(url: Any) -> str:
        url = str(url)
        check_link_target(url)
        links.append(url)
        if ctx.message_id is None:
            return url
        return tracked_link_url(ctx.message_id, len(links) - 1)

    values: dict[str, Any] = {
        "customer": ctx.customer,
        "staff": ctx.staff or {"name": ""},
        "store": ctx.store or {"name": "", "city": ""},
        "brand": ctx.brand or {"name": ""},
        "coupon_code": ctx.coupon_code,
        "link": link,
        "unsubscribe_url": ctx.unsubscribe_url,
    }
    text = _render_one(body, values, "body")
    if suffix and not text.rstrip().endswith(suffix):
        text = text.rstrip() + suffix
    limit = MAX_LENGTH.get(medium, 4000)
    if len(text) > limit:
        raise InvalidInput(f"内容超过 {limit} 字（{len(text)} 字）/ message is longer than {limit}", field="body")
    rendered_subject = _render_one(subject, values, "subject").strip() if subject else ""
    if len(rendered_subject) > MAX_SUBJECT:
        raise InvalidInput(f"标题超过 {MAX_SUBJECT} 字 / subject too long", field="subject")
    rendered_params = {key: _render_one(src, values, f"provider_params.{key}") for key, src in (params or {}).items()}
    return Rendered(rendered_subject, text, links, rendered_params)


def _render_one(source: str, values: dict[str, Any], field: str) -> str:
    try:
        return _compile(source).render(values)
    except UndefinedError as exc:
        raise InvalidInput(f"变量没有值 / missing value: {exc.message}", field=field) from None
    except SecurityError as exc:
        raise InvalidInput(f"模板访问了不允许的内容 / not allowed in a template: {exc}", field=field) from None
    except TemplateSyntaxError as exc:
        raise InvalidInput(f"模板语法错误：{exc.message}", field=field) from None
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise InvalidInput(f"模板无法渲染 / cannot render: {exc}", field=field) from None


Renderer = Callable[..., Rendered]
