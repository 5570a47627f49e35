from django import template
from django.utils.translation import gettext_lazy

register = template.Library()


@register.filter
def yuan(fen: int | None) -> str:
    """Integer fen as ¥ with two decimals and thousands separators: 1234500 -> ¥12,345.00."""
    if fen is None:
        return "—"
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"


EVENT_LABELS = {
    "page_view": gettext_lazy("浏览页面"),
    "view_product": gettext_lazy("浏览商品"),
    "add_to_cart": gettext_lazy("加入购物车"),
    "claim_coupon": gettext_lazy("领取优惠券"),
    "read_article": gettext_lazy("阅读文章"),
    "scan_code": gettext_lazy("扫码"),
    "share_poster": gettext_lazy("分享海报"),
    "search": gettext_lazy("搜索"),
    "segment_entered": gettext_lazy("进入分群"),
    "segment_exited": gettext_lazy("离开分群"),
    "opted_out": gettext_lazy("退订"),
    "opted_in": gettext_lazy("恢复接收"),
    "consent_granted": gettext_lazy("授权"),
    "consent_revoked": gettext_lazy("撤回授权"),
    "link_clicked": gettext_lazy("点击链接"),
    "sms_replied": gettext_lazy("短信回复"),
    "channel_code_added": gettext_lazy("扫渠道活码添加"),
    "wecom_friend_added": gettext_lazy("添加企业微信好友"),
    "wecom_friend_deleted": gettext_lazy("企业微信好友关系解除"),
    "wecom_contact_edited": gettext_lazy("企业微信资料变更"),
    "wecom_group_joined": gettext_lazy("加入客户群"),
    "wecom_group_left": gettext_lazy("退出客户群"),
    "wecom_transferred": gettext_lazy("企微客户转接"),
    "wecom_transfer_failed": gettext_lazy("企微转接失败"),
    "oa_subscribed": gettext_lazy("关注公众号"),
    "oa_scanned": gettext_lazy("扫公众号二维码"),
    "oa_unsubscribed": gettext_lazy("取消关注公众号"),
}


@register.filter
def event_label(name: str) -> str:
    """A readable name for well-known events; custom event names are shown as sent."""
    label = EVENT_LABELS.get(name)
    return f"{label} · {name}" if label else name
