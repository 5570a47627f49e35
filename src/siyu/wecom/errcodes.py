"""What WeCom's errcodes mean, for the operator reading the API log and the setup check.

The table covers the codes siyu meets (PROTOCOLS.md §1.2, plus the 「联系我」 and tag codes the
channel codes and tag sync run into), each with a short meaning in Chinese and English. WeCom's
``errmsg`` is only ever shown next to it, never parsed — except ``from ip:`` in a 60020, which
is the one fact the operator needs (which address to add to the trusted IPs) and WeCom gives
nowhere else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from siyu.wecom.services import CheckItem


@dataclass(frozen=True)
class Meaning:
    zh: str
    en: str
    kind: str  # ok / retry / config / input / limit / gone


MEANINGS: dict[int, Meaning] = {
    0: Meaning("成功", "ok", "ok"),
    -1: Meaning("企业微信系统繁忙（已自动重试）", "WeCom busy (retried)", "retry"),
    40001: Meaning("Secret 不正确", "wrong app secret", "config"),
    40013: Meaning("企业 ID 不正确", "wrong corp id", "config"),
    40014: Meaning("access_token 无效（已自动重新获取）", "invalid access token (refetched)", "retry"),
    42001: Meaning("access_token 已过期（已自动重新获取）", "access token expired (refetched)", "retry"),
    41001: Meaning("缺少 access_token", "access token missing", "input"),
    40058: Meaning("参数不合法", "invalid parameter", "input"),
    40068: Meaning("标签 ID 不合法", "invalid tag id", "input"),
    40096: Meaning("外部联系人 userid 不合法", "invalid external userid", "gone"),
    40097: Meaning(
        "该成员尚未离职（离职继承需先在企业微信删除成员）", "member has not left WeCom (resigned handover)", "input"
    ),
    40099: Meaning("接替成员的客户数量已达上限", "takeover member is at the customer limit", "limit"),
    40100: Meaning("该客户已在离职继承中", "customer already in a resigned transfer", "input"),
    40128: Meaning(
        "客户转接过于频繁（90 天内最多转接两次）", "customer transferred too often (twice in 90 days)", "limit"
    ),
    40129: Meaning("该客户正在转接中", "customer transfer already in progress", "input"),
    40131: Meaning("原跟进成员不是该客户的跟进人", "handover member does not follow this customer", "gone"),
    41041: Meaning("「联系我」使用人数超过限制", "too many members on a contact way", "input"),
    41043: Meaning("缺少「联系我」config_id", "contact way config_id missing", "input"),
    41044: Meaning("「联系我」config_id 无效（已被删除？）", "unknown contact way config_id", "gone"),
    41045: Meaning("API 添加「联系我」已达数量上限", "API contact-way quota reached", "limit"),
    41048: Meaning("没有可发送的客户", "no customer to send to", "ok"),
    41050: Meaning("欢迎语 code 无效（超过 20 秒）", "welcome code invalid (older than 20 s)", "gone"),
    41051: Meaning("客户已在聊天或已发过欢迎语", "already chatting or welcomed", "ok"),
    41053: Meaning("客户未同意聊天存档", "customer did not agree to archiving", "gone"),
    41054: Meaning("该成员尚未激活企业微信", "member not activated", "config"),
    41063: Meaning("群发消息仍在派发中，稍后再查", "group message still dispatching", "retry"),
    41096: Meaning("其他应用正在发送欢迎语", "another app is sending the welcome", "retry"),
    45009: Meaning("接口调用超过频率限制", "API frequency limit", "limit"),
    45033: Meaning("同一资源并发调用超过限制（已排队重试）", "concurrent calls on one resource (retried)", "retry"),
    47001: Meaning("数据格式错误", "malformed request body", "input"),
    48002: Meaning("应用无权调用该接口", "API not allowed for this app", "config"),
    60011: Meaning("成员不在应用可见范围内", "member outside the app's visibility", "config"),
    60020: Meaning("服务器 IP 不在企业可信 IP 中", "server IP not trusted", "config"),
    81017: Meaning("可见成员超过 1000，需按群主分批查询", "more than 1000 members: filter by owner", "input"),
    84061: Meaning("已不是该成员的客户", "not an external contact any more", "gone"),
    84074: Meaning("应用没有客户联系权限", "app lacks customer-contact permission", "config"),
}
NO_ANSWER = Meaning("没有收到答复（网络错误或超时）", "no answer (network error or timeout)", "retry")
UNKNOWN = Meaning("其他错误，见企业微信说明", "other error: see WeCom's errmsg", "input")

FROM_IP = re.compile(r"from ip:\s*([0-9A-Fa-f.:]+)")


def meaning(errcode: int | None) -> Meaning:
    if errcode is None:
        return NO_ANSWER
    return MEANINGS.get(errcode, UNKNOWN)


def ip_from_errmsg(errmsg: str) -> str:
    """The address WeCom saw the call come from, as its 60020 errmsg states it ('' if absent)."""
    match = FROM_IP.search(errmsg or "")
    return match.group(1).rstrip(".,") if match else ""


def explain(item: CheckItem) -> CheckItem:
    """The setup-check item with a fix the operator can act on without reading WeCom's docs.

    Only failures with a code worth sharpening change: a 60020 names the IP to add and where,
    a 40001 warns about the one-hour IP ban, a 48002 / 84074 says which app to add where.
    """
    if item.ok or item.errcode is None:
        return item
    if item.errcode == 60020:
        ip = ip_from_errmsg(item.detail)
        where_zh = "企业微信管理后台「应用管理 → 自建应用（本应用）→ 企业可信IP → 配置」"
        where_en = "the WeCom admin console: 应用管理 → your self-built app → 企业可信IP → 配置"
        if ip:
            return replace(
                item,
                message_zh=f"本服务器的出口 IP 不在企业可信 IP 中：企业微信看到的调用来自 {ip}。请在{where_zh}中加入 {ip}"
                "（多个 IP 用英文分号分隔），保存后再检查一次。",
                message_en=f"This server's outgoing IP is not trusted: WeCom saw the call come from {ip}. Add {ip} in "
                f"{where_en} (separate several IPs with semicolons), then run the check again.",
            )
        return replace(
            item,
            message_zh=f"本服务器的出口 IP 不在企业可信 IP 中：请在{where_zh}中加入本服务器的公网出口 IP。",
            message_en=f"This server's outgoing IP is not trusted: add its public IP in {where_en}.",
        )
    if item.errcode in (48002, 84074):
        return replace(
            item,
            message_zh="本应用没有客户联系权限：请在企业微信管理后台「客户与上下游 → 客户联系 → API（点开“API”）"
            "→ 可调用接口的应用」中加入本自建应用，并确认需要同步的成员已开通客户联系。",
            message_en="The app has no customer-contact permission: add it under 客户与上下游 → 客户联系 → API → "
            "可调用接口的应用, and make sure the members to sync have customer contact enabled.",
        )
    return item
