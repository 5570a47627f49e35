"""English for the console's Chinese source strings. Run after `makemessages -l en`:

    .venv/bin/python scripts/translations_en.py && (cd src/siyu && django-admin compilemessages)

Needs polib (`pip install polib`); only translators need it, not the product.
"""

import sys
from pathlib import Path

import polib

EN = {
    "API 密钥": "API keys",
    "新密钥（只显示这一次，请立即保存）：": "New key (shown only once — store it now):",
    "用途，例如：小程序埋点": "Purpose, e.g. mini program tracking",
    "名称": "Name",
    "创建密钥": "Create key",
    "前缀": "Prefix",
    "创建": "Created",
    "最近使用": "Last used",
    "状态": "Status",
    "已吊销": "Revoked",
    "有效": "Active",
    "吊销后使用该密钥的调用会立即失败，确定吗？": "Calls with this key will fail immediately. Revoke it?",
    "吊销": "Revoke",
    "私域运营台": "Private-domain console",
    "概览": "Overview",
    "客户": "Customers",
    "身份冲突": "Identity conflicts",
    "组织": "Organisation",
    "员工": "Staff",
    "系统后台": "Admin",
    "切换品牌": "Switch brand",
    "退出": "Sign out",
    "客户 A": "Customer A",
    "客户 B": "Customer B",
    "冲突的身份": "Conflicting identity",
    "发现时间": "Found at",
    "是同一人，合并": "Same person — merge",
    "不是同一人": "Different people",
    "没有待处理的身份冲突。": "No identity conflicts to review.",
    "姓名": "Name",
    "城市": "City",
    "来源": "Source",
    "门店": "Store",
    "归属员工": "Owner",
    "最近活跃": "Last active",
    "未命名": "Unnamed",
    "回到第一页": "First page",
    "下一页": "Next page",
    "没有符合条件的客户": "No customers match",
    "试试放宽筛选条件，或检查手机号是否输入完整。": "Try fewer filters, or check the phone number is complete.",
    "清除筛选": "Clear filters",
    "您的数据范围内还没有客户": "No customers in your scope yet",
    "客户添加您为企微好友或被分配给您后，会出现在这里。": "Customers appear here once they add you on WeCom or are assigned to you.",
    "标签": "Tags",
    "移除标签": "Remove tag",
    "还没有标签": "No tags yet",
    "选择标签": "Choose a tag",
    "打标签": "Add tag",
    "订单": "Orders",
    "客户消息": "Customer message",
    "员工消息": "Staff message",
    "事件": "Event",
    "已退款": "Refunded",
    "加载更早": "Load earlier",
    "还没有任何互动记录": "No interactions yet",
    "未命名客户": "Unnamed customer",
    "已合并": "merged",
    "性别": "Gender",
    "生日": "Birthday",
    "首次出现": "First seen",
    "身份": "Identities",
    "企微好友关系": "WeCom relations",
    "正常": "Active",
    "客户已删除": "Deleted by customer",
    "员工已删除": "Deleted by staff",
    "还不是任何员工的企微好友": "Not a WeCom friend of any staff member yet",
    "净实付": "net paid",
    "订单号": "Order no.",
    "支付时间": "Paid at",
    "商品": "Items",
    "渠道": "Channel",
    "实付": "Paid",
    "已支付": "Paid",
    "还没有订单": "No orders yet",
    "时间线": "Timeline",
    "姓名、手机号、会员号或外部联系人 ID": "Name, phone, member no. or external user id",
    "搜索": "Search",
    "全部标签": "All tags",
    "全部门店": "All stores",
    "全部员工": "All staff",
    "来源渠道": "Channel",
    "全部渠道": "All channels",
    "客户池概览": "Customer pool overview",
    "数据更新于 %(time)s（每 5 分钟刷新）": "Updated at %(time)s (refreshed every 5 minutes)",
    "还没有客户": "No customers yet",
    "通过渠道活码、API 或 CSV 导入把客户带进来，这里就会显示客户池的增长和来源。": (
        "Bring customers in with channel QR codes, the API or a CSV import; their growth and sources show here."
    ),
    "客户总数": "Customers",
    "近 7 天新增": "New in 7 days",
    "企微好友": "WeCom friends",
    "好友占比": "Friend share",
    "每日新增客户（近 90 天）": "New customers per day (last 90 days)",
    "近 90 天没有新客户": "No new customers in the last 90 days",
    "获客渠道": "Acquisition channels",
    "门店客户数（前 15）": "Customers per store (top 15)",
    "客户还没有归属门店": "No customers belong to a store yet",
    "没有权限": "Not allowed",
    "此页面仅对品牌管理员开放。": "This page is for brand administrators.",
    "返回概览": "Back to overview",
    "登录": "Sign in",
    "登录私域运营台": "Sign in to siyu",
    "用户名或密码不正确，请重试。": "Wrong username or password. Please try again.",
    "用户名": "Username",
    "密码": "Password",
    "您还没有加入任何品牌": "You have not joined a brand yet",
    "请联系品牌管理员为您的账号分配角色。": "Ask a brand administrator to give your account a role.",
    "组织架构": "Organisation",
    "类型": "Kind",
    "编码": "Code",
    "在职员工": "Active staff",
    "客户数": "Customers",
    "还没有组织架构": "No organisation yet",
    "职位": "Title",
    "企微账号": "WeCom user id",
    "控制台账号": "Console user",
    "在职": "Active",
    "离职": "Left",
    "查看客户": "Customers",
    "还没有员工。员工会在企业微信同步后出现在这里。": "No staff yet. Staff appear here after the WeCom sync.",
    "门店活码": "Store QR code",
    "公众号": "Official Account",
    "小程序": "Mini program",
    "裂变海报": "Referral poster",
    "电商导入": "E-commerce import",
    "文件导入": "File import",
    "未知": "Unknown",
    "新客户": "New customers",
    "客户不存在或不在您的数据范围内": "No such customer in your scope",
    "请选择标签": "Choose a tag",
    "标签不存在": "No such tag",
    "密钥已吊销": "Key revoked",
    "密钥不存在或已吊销": "No such key, or already revoked",
    "请填写密钥名称": "Give the key a name",
    "已合并为同一客户": "Merged into one customer",
    "已标记为不同客户": "Kept as different customers",
    "该冲突已处理": "That conflict was already handled",
    '调用方式：<code>Authorization: Bearer &lt;密钥&gt;</code>，文档见 <a href="/api/v1/docs">/api/v1/docs</a>。': (
        'Send <code>Authorization: Bearer &lt;key&gt;</code>; docs at <a href="/api/v1/docs">/api/v1/docs</a>.'
    ),
    "还没有 API 密钥。创建一个，让小程序、App 或 CRM 把客户、事件和订单推送进来。": (
        "No API keys yet. Create one so your mini program, app or CRM can push customers, events and orders."
    ),
    "有记录表明这些客户是同一个人，但他们各自持有不同的唯一身份（如不同的会员号或外部联系人），系统没有自动合并。请逐一确认。": (
        "A record says these customers are one person, but each holds a different unique identity (such as a "
        "member number or WeCom external user), so they were not merged automatically. Please decide each one."
    ),
}
EN.update(
    {
        "浏览页面": "Viewed page",
        "浏览商品": "Viewed product",
        "加入购物车": "Added to cart",
        "领取优惠券": "Claimed coupon",
        "阅读文章": "Read article",
        "扫码": "Scanned code",
        "分享海报": "Shared poster",
    }
)
PLURALS = {"%(n)s 笔": ("%(n)s order", "%(n)s orders")}


def main() -> int:
    path = Path(__file__).resolve().parent.parent / "src/siyu/locale/en/LC_MESSAGES/django.po"
    po = polib.pofile(str(path))
    missing = []
    for entry in po:
        if entry.msgid_plural:
            entry.msgstr_plural = dict(enumerate(PLURALS.get(entry.msgid, (entry.msgid, entry.msgid_plural))))
        elif entry.msgid in EN:
            entry.msgstr = EN[entry.msgid]
        else:
            missing.append(entry.msgid)
        if "fuzzy" in entry.flags:
            entry.flags.remove("fuzzy")
    po.save()
    for msgid in missing:
        print(f"untranslated: {msgid}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
