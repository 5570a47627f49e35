"""English for the console's Chinese source strings. Run after `makemessages -l en`:

    .venv/bin/python scripts/translations_en.py && (cd src/siyu && django-admin compilemessages)

Needs polib (`pip install polib`); only translators need it, not the product.
"""

import sys
from pathlib import Path

import polib

EN = {
    "其他": "Other",
    "segment|离开": "Left",
    "私下收款": "Private payment",
    "竞品": "Competitor",
    "辱骂": "Abuse",
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
# Segments, layers, keyword tagging and risk alerts.
EN.update(
    {
        # Navigation and page titles
        "客户分层": "Layers",
        "客户分群": "Segments",
        "关键词打标": "Keyword tagging",
        "风控": "Risk alerts",
        # Customer profile cards
        "窗口内无消费": "No purchases in window",
        "生命周期": "Lifecycle",
        "价值等级": "Value tier",
        "社群": "Community",
        "参与分": "score",
        "所在分群": "Segments",
        "%(day)s 进入": "entered %(day)s",
        "当前不在任何分群中": "Not in any segment",
        # Keyword rules
        "关键词规则": "Keyword rule",
        "编辑关键词规则": "Edit keyword rule",
        "新建关键词规则": "New keyword rule",
        "规则名称": "Rule name",
        "关键词": "Keywords",
        "每行一个，或用逗号分隔，例如：敏感肌，泛红，过敏": (
            "One per line or comma-separated, e.g. sensitive skin, redness, allergy"
        ),
        "匹配方式": "Match mode",
        "至少命中次数": "Minimum mentions",
        "时间窗口（天，留空为不限）": "Window (days; leave empty for no limit)",
        "打上标签": "Tags to add",
        "启用": "Enabled",
        "保存": "Save",
        "取消": "Cancel",
        "新建规则": "New rule",
        "客户在会话中说到某些词时自动打标签：例如客户提到“敏感肌”“泛红”，就打上“敏感肌”标签。可要求在若干天内说到几次才打标，避免偶然提及。只检查客户发出的文字消息，标签来源记为“关键词”，并记录触发的规则和消息。": (
            "Tag customers automatically when they mention certain words in chat: a customer who mentions "
            "“sensitive skin” or “redness” gets the “Sensitive skin” tag. You can require several mentions "
            "within a number of days so a passing remark does not count. Only text messages from customers are "
            "checked; the tag source is recorded as “Keyword”, with the rule and message that triggered it."
        ),
        "规则": "Rule",
        "条件": "Condition",
        "命中消息": "Matched messages",
        "整句等于关键词": "Whole message equals keyword",
        "包含关键词": "Contains keyword",
        "%(days)s 天内至少 %(n)s 次": "%(n)s+ mentions within %(days)s days",
        "累计至少 %(n)s 次": "%(n)s+ mentions in total",
        "停用": "Disabled",
        "编辑": "Edit",
        "对历史消息执行": "Run on past messages",
        # Shown in a JavaScript confirm() inside an HTML attribute: no quotes or apostrophes.
        "删除规则及其命中记录（已打的标签保留），确定吗？": "Delete this rule and its match records? Tags already added are kept.",
        "删除": "Delete",
        "还没有关键词规则。新建一条：填写关键词（如“敏感肌”“泛红”）和要打的标签，客户在会话里说到这些词时就会自动打上标签。": (
            "No keyword rules yet. Create one: enter keywords (such as “sensitive skin” or “redness”) and the tag "
            "to add, and customers who mention them in chat are tagged automatically."
        ),
        "规则已删除，已打上的标签保留": "Rule deleted; tags already added are kept",
        "已对历史消息执行：命中 %(matches)s 条消息，新打标签 %(tagged)s 个": (
            "Ran on past messages: %(matches)s matching messages, %(tagged)s new tags"
        ),
        "规则已保存": "Rule saved",
        "无法保存：%(field)s %(message)s": "Could not save: %(field)s %(message)s",
        # Layers page
        "最近计算于 %(time)s": "Last computed %(time)s",
        "立即重算": "Recompute now",
        "还没有计算客户分层": "Layers have not been computed yet",
        "分层每天按计划重算，也可以点击“立即重算”。计算后这里会显示 RFM 八类客户、生命周期和社群 1-9-90 金字塔的分布。": (
            "Layers are recomputed daily, or click “Recompute now”. Once computed, this page shows the eight RFM "
            "groups, lifecycle stages and the community 1-9-90 pyramid."
        ),
        "已分层客户": "Customers in layers",
        "窗口内有消费": "Purchased in window",
        "RFM 客户价值分类": "RFM value groups",
        "窗口内无消费（不分类）": "No purchases in window (not grouped)",
        "R、F、M 各按工作区内五分位打 1–5 分，4 分及以上为“高”。": (
            "R, F and M are each scored 1–5 by quintile within the workspace; 4 or above counts as “high”."
        ),
        "社群 1-9-90 金字塔": "Community 1-9-90 pyramid",
        "参与分 = 邀请 × 5 + 分享内容 × 3 + 发消息 × 1 + 群主 20 / 群管理员 10；前 1%% 为种子用户，其后 9%% 为 KOC。": (
            "Participation score = invites × 5 + shares × 3 + messages × 1 + group owner 20 / group admin 10; "
            "the top 1%% are seed users, the next 9%% KOCs."
        ),
        "分层设置": "Layer settings",
        "保存设置": "Save settings",
        "保存后在下次重算时生效。": "Takes effect at the next recompute.",
        "RFM 统计窗口（天）": "RFM window (days)",
        "只统计这段时间内的已支付订单": "Only paid orders in this window count",
        "新客（首单后天数 ≤）": "New (days since first order ≤)",
        "活跃（距最近下单 ≤ 天）": "Active (days since last order ≤)",
        "风险（距最近下单 ≤ 天）": "At risk (days since last order ≤)",
        "沉睡（距最近下单 ≤ 天，超过即流失）": "Dormant (days since last order ≤; beyond that, churned)",
        "社群参与统计窗口（天）": "Community window (days)",
        "客户较多，已加入后台重算队列，完成后刷新本页即可看到新的分层": (
            "Many customers: the recompute is queued in the background. Reload this page when it is done."
        ),
        "已重算 %(customers)s 位客户的分层，%(changed)s 位有变化，用时 %(seconds).1f 秒": (
            "Recomputed layers for %(customers)s customers (%(changed)s changed) in %(seconds).1f s"
        ),
        "分层设置已保存，下次重算时生效": "Layer settings saved; they take effect at the next recompute",
        # RFM cells, value tiers, lifecycle stages, community tiers
        "重要价值客户": "High-value (important value)",
        "重要发展客户": "High-potential (important develop)",
        "重要保持客户": "Lapsing high-value (important keep)",
        "重要挽留客户": "Win-back high-value (important retain)",
        "一般价值客户": "Loyal (general value)",
        "一般发展客户": "Occasional (general develop)",
        "一般保持客户": "Lapsing (general keep)",
        "一般挽留客户": "Win-back (general retain)",
        "高价值": "High value",
        "中价值": "Medium value",
        "低价值": "Low value",
        "新客": "New",
        "活跃": "Active",
        "风险": "At risk",
        "沉睡": "Dormant",
        "流失": "Churned",
        "种子用户": "Seed users",
        "KOC": "KOC",
        "普通成员": "Regular members",
        # Risk alerts
        "会话风控": "Chat risk alerts",
        "员工发给客户的消息中出现敏感词（如私下收款、竞品名称、辱骂）时产生告警。店长看到本店员工的告警，总部看到全部。": (
            "An alert is raised when a staff message to a customer contains a sensitive word (such as private "
            "payment requests, competitor names or abuse). Store managers see alerts for their own store; HQ sees all."
        ),
        "待处理告警（%(n)s）": "Open alerts (%(n)s)",
        "时间": "Time",
        "消息": "Message",
        "标记已处理": "Mark handled",
        "仅显示最近 100 条，处理后会显示更早的告警。": (
            "Showing the latest 100 only; older alerts appear as these are handled."
        ),
        "没有待处理的告警。": "No open alerts.",
        "敏感词规则": "Sensitive-word rules",
        "类别": "Category",
        "敏感词，用逗号分隔，例如：私下转账，加我微信": (
            "Sensitive words, comma-separated, e.g. private transfer, add me on WeChat"
        ),
        "敏感词": "Sensitive words",
        "添加规则": "Add rule",
        "还没有敏感词规则。添加后，员工发出的消息里出现这些词就会产生告警。": (
            "No sensitive-word rules yet. Once added, staff messages containing these words raise an alert."
        ),
        "已标记为已处理": "Marked as handled",
        "风控规则已创建，之后的员工消息都会检查": "Risk rule created; new staff messages will be checked against it",
        # Segment builder: preview and time window
        "规则有误：": "Rule error: ",
        "第 %(n)s 个条件：": "Condition %(n)s: ",
        "位置": "At",
        "位客户符合条件（仅统计您可见范围内的客户）": "customers match (counting only customers you can see)",
        "部分客户": "Sample customers",
        "时间范围": "Time range",
        "不限时间": "Any time",
        "近 N 天": "Last N days",
        "日期范围": "Date range",
        "天数": "Days",
        "开始日期": "Start date",
        "结束日期": "End date",
        # Segment detail
        "已归档": "Archived",
        "导出 CSV": "Export CSV",
        "编辑并恢复": "Edit and restore",
        "编辑条件": "Edit conditions",
        "您负责门店中的成员": "Members in your stores",
        "当前人数": "Current size",
        "最近刷新": "Last refreshed",
        "尚未刷新": "Not refreshed yet",
        "圈选条件": "Conditions",
        "人数变化（近 30 天）": "Size over time (last 30 days)",
        "刷新后这里会显示每天的人数和进出人数": "After a refresh, the daily size and entries/exits show here",
        "成员": "Members",
        "进入分群": "Entered segment",
        "离开分群": "Left segment",
        "当前没有成员": "No members right now",
        "分群还没有刷新过。回到列表点击“立即刷新”，或等待定时刷新。": (
            "This segment has not been refreshed yet. Click “Refresh now” on the list, or wait for the scheduled refresh."
        ),
        "批量打标签": "Bulk tag",
        "给当前所有成员打上或移除一个标签（一次性操作）。": "Add or remove a tag for all current members (one-off).",
        "保持标签与分群成员一致": "Keep a tag in sync with members",
        "客户进入分群时自动打上标签，退出时自动移除。": (
            "Customers get the tag when they enter the segment and lose it when they leave."
        ),
        "停止同步": "Stop syncing",
        "开启同步": "Start syncing",
        "归档分群": "Archive segment",
        "归档后不再刷新，标签同步停止；历史成员记录保留，可随时编辑恢复。": (
            "An archived segment is no longer refreshed and its tag sync stops; membership history is kept, "
            "and you can edit it to restore it at any time."
        ),
        "确定归档这个分群吗？": "Archive this segment?",
        "归档": "Archive",
        # Segment form
        "编辑分群": "Edit segment",
        "新建分群": "New segment",
        "无法保存：": "Could not save: ",
        "分群名称": "Segment name",
        "例如：上海近 30 天活跃客户": "e.g. Shanghai customers active in the last 30 days",
        "说明（可选）": "Description (optional)",
        "这个分群用来做什么": "What is this segment for?",
        "高级 (JSON)": "Advanced (JSON)",
        "客户需要": "Customers must match",
        "组合方式": "Combine with",
        "全部满足": "all",
        "任一满足": "any",
        "以下条件": "of these conditions",
        "还没有条件。从下面选择一种条件添加。": "No conditions yet. Pick a condition type below to add one.",
        "条件类型": "Condition type",
        "添加条件": "Add condition",
        "这个规则包含嵌套的条件组或事件属性筛选，只能在 JSON 中编辑。": (
            "This rule has nested condition groups or event property filters and can only be edited as JSON."
        ),
        "规则 JSON": "Rule JSON",
        '格式：{"version": 1, "match": 条件}，条件类型的说明见 segments/rules.py。': (
            'Format: {"version": 1, "match": condition}; condition types are described in segments/rules.py.'
        ),
        "保存分群": "Save segment",
        "预计人数": "Estimated size",
        "条件变化时自动计算，不会保存": "updates as you edit; not saved",
        "添加条件后，这里会显示符合条件的客户数和部分客户。": (
            "Add a condition to see how many customers match, with a sample."
        ),
        "不满足": "Not",
        "删除条件": "Remove condition",
        "字段": "Field",
        "自定义属性…": "Custom attribute…",
        "属性名，如 level": "Attribute name, e.g. level",
        "属性名": "Attribute name",
        "比较方式": "Comparison",
        "值": "Value",
        "女": "Female",
        "男": "Male",
        "标签匹配": "Tag match",
        "有任一标签": "Has any of these tags",
        "同时有这些标签": "Has all of these tags",
        "没有这些标签": "Has none of these tags",
        # "可通过 [channel] 触达 [staff] [store]"; staff and store are shown for WeCom only.
        "可通过": "Reachable via",
        "触达": "channel",
        "任意员工": "Any staff",
        "任意门店": "Any store",
        "组织层级": "Org level",
        "所属门店": "Store",
        "所属区域": "Region",
        "属于": "is one of",
        "不属于": "is not one of",
        "区域": "Region",
        "事件，如 view_product": "Event, e.g. view_product",
        "次数比较": "Count comparison",
        "次数": "Count",
        "次": "times",
        "订单指标": "Order measure",
        "（元）": " (CNY)",
        "买过": "Bought",
        "按": "By",
        "品类": "Category",
        "商品 SKU": "SKU",
        "如 护肤 或 SKU 编码": "e.g. a category name or SKU code",
        "品类或 SKU": "Category or SKU",
        "分层": "Layers",
        "分数": "Score",
        "属于分群": "In segment",
        "分群": "Segment",
        "还没有其他分群": "No other segments yet",
        # Segment list
        "立即刷新": "Refresh now",
        "人数只统计您所负责门店的客户。": "Counts include only customers of the stores you manage.",
        "还没有客户分群": "No segments yet",
        "分群是按条件自动圈选出的一组客户，例如“近 30 天浏览商品 3 次以上的上海客户”或“90 天没有下单的高价值客户”。": (
            "A segment is a group of customers picked automatically by conditions, e.g. “Shanghai customers who "
            "viewed products 3+ times in the last 30 days” or “high-value customers with no order in 90 days”."
        ),
        "分群每天自动刷新：符合条件的客户进入，不再符合的退出。可以导出名单、批量打标签，或让标签自动跟随分群成员。": (
            "Segments refresh daily: customers who match join and those who no longer match leave. You can export "
            "the list, tag members in bulk, or keep a tag in sync with the members."
        ),
        "近 14 天趋势": "14-day trend",
        "7 天变化": "7-day change",
        "自动标签": "Auto tags",
        "待刷新": "Pending refresh",
        # Segment rules in words ("近 30 天 浏览商品 ≥ 3 次 且 城市 = 上海") and builder options
        "省份": "Province",
        "来源详情": "Source detail",
        "建档时间": "Created at",
        "包含": "contains",
        "已填写": "is set",
        "未填写": "is not set",
        "企微": "WeCom",
        "短信": "SMS",
        "邮件": "Email",
        "订单数": "Order count",
        "消费金额": "Total spend",
        "客单价": "Average order value",
        "距上次下单天数": "Days since last order",
        "首单日期": "First order date",
        "R 分": "R score",
        "F 分": "F score",
        "M 分": "M score",
        "社群参与分": "Community score",
        "RFM 分层": "RFM group",
        "社群等级": "Community tier",
        "（规则无法识别）": "(rule not recognised)",
        " 且 ": " and ",
        " 或 ": " or ",
        "不满足［%(text)s］": "Not [%(text)s]",
        "是": "Yes",
        "否": "No",
        "累计": "All time",
        "近 %(days)s 天": "Last %(days)s days",
        "属性 %(key)s": "Attribute %(key)s",
        "同时有标签 %(tags)s": "Has all tags %(tags)s",
        "没有标签 %(tags)s": "Has none of tags %(tags)s",
        "有标签 %(tags)s": "Has tag %(tags)s",
        "有任一标签 %(tags)s": "Has any of tags %(tags)s",
        "可通过%(channel)s触达": "Reachable via %(channel)s",
        "员工 %(name)s": "staff %(name)s",
        "门店 %(name)s": "store %(name)s",
        "门店属于 %(names)s": "Store is one of %(names)s",
        "区域属于 %(names)s": "Region is one of %(names)s",
        "归属员工属于 %(names)s": "Owner is one of %(names)s",
        "%(when)s 没有 %(event)s": "%(when)s: no %(event)s",
        "%(when)s %(event)s %(op)s %(n)s 次": "%(when)s: %(event)s %(op)s %(n)s times",
        "距上次下单 %(op)s %(n)s 天": "Days since last order %(op)s %(n)s",
        "商品 %(sku)s": "SKU %(sku)s",
        "品类 %(category)s": "category %(category)s",
        "%(when)s 买过 %(what)s": "%(when)s: bought %(what)s",
        "属于分群「%(name)s」": "In segment “%(name)s”",
        "属性": "Attribute",
        "可触达": "Reachable",
        "行为事件": "Event",
        "购买商品": "Purchased product",
        "其他分群": "Other segment",
        "等于": "equals",
        "不等于": "does not equal",
        "属于（逗号分隔）": "is one of (comma-separated)",
        "不属于（逗号分隔）": "is not one of (comma-separated)",
        "大于 / 晚于": "greater than / after",
        "大于等于": "at least",
        "小于 / 早于": "less than / before",
        "小于等于": "at most",
        # Segment messages and export
        "分群不存在": "No such segment",
        "刷新完成：%(segments)s 个分群，进入 %(entered)s 人，退出 %(exited)s 人，用时 %(seconds).1f 秒": (
            "Refresh complete: %(segments)s segment(s), %(entered)s entered, %(exited)s left, in %(seconds).1f s"
        ),
        "分群已保存，点击“立即刷新”或等待定时刷新后生成成员": (
            "Segment saved. Members appear after you click “Refresh now” or after the scheduled refresh"
        ),
        "请至少选择一项": "Choose at least one",
        "缺少必填项": "A required field is missing",
        "请填写值": "Enter a value",
        "请填写整数": "Enter a whole number",
        "数值太小": "Number too small",
        "数值太大": "Number too large",
        "请填写日期": "Enter a date",
        "请填写品类或 SKU": "Enter a category or SKU",
        "分群之间不能互相引用": "Segments cannot refer to each other in a loop",
        "规则不是有效的 JSON：%(error)s": "The rule is not valid JSON: %(error)s",
        "成员数": "Members",
        "进入": "Entered",
        "已为 %(n)s 位成员打上标签": "Added the tag to %(n)s member(s)",
        "已为 %(n)s 位成员移除标签": "Removed the tag from %(n)s member(s)",
        "已开启：标签将与分群成员保持一致": "On: the tag now follows segment membership",
        "已停止同步该标签": "Stopped syncing this tag",
        "分群已归档，不再刷新；历史成员记录保留": "Segment archived: it is no longer refreshed; membership history is kept",
        "操作失败：%(message)s": "Failed: %(message)s",
        "客户ID": "Customer ID",
        "进入分群时间": "Entered at",
        "手机号": "Phone",
    }
)
PLURALS = {
    "%(n)s 笔": ("%(n)s order", "%(n)s orders"),
    "距上次消费 %(n)s 天": ("%(n)s day since last purchase", "%(n)s days since last purchase"),
    "已归档 %(n)s 个分群": ("%(n)s archived segment", "%(n)s archived segments"),
}


def main() -> int:
    path = Path(__file__).resolve().parent.parent / "src/siyu/locale/en/LC_MESSAGES/django.po"
    po = polib.pofile(str(path))
    missing = []
    for entry in po:
        if entry.msgid_plural:
            entry.msgstr_plural = dict(enumerate(PLURALS.get(entry.msgid, (entry.msgid, entry.msgid_plural))))
        elif f"{entry.msgctxt}|{entry.msgid}" in EN:  # a msgid with a pgettext context
            entry.msgstr = EN[f"{entry.msgctxt}|{entry.msgid}"]
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
