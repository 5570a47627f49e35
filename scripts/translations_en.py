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
# Content (materials, scripts, message templates), reach (broadcasts, channel accounts, compliance,
# opt-outs, the customer's reach card) and the email unsubscribe page.
EN.update(
    {
        "list separator|，": ", ",
        # Channel account settings (channels/forms.py)
        "SMTP 服务器": "SMTP server",
        "例如 smtp.exmail.qq.com": "e.g. smtp.exmail.qq.com",
        "端口": "Port",
        "STARTTLS 一般为 587，SSL 为 465": "Usually 587 for STARTTLS, 465 for SSL",
        "加密方式": "Encryption",
        "发件人地址": "From address",
        "例如 news@brand.com": "e.g. news@brand.com",
        "发件人名称": "From name",
        "回复地址（可选）": "Reply-to address (optional)",
        "退订邮箱（可选）": "Unsubscribe mailbox (optional)",
        "收件人也可以发邮件到这个地址退订": "Recipients can also unsubscribe by emailing this address",
        "超时（秒）": "Timeout (seconds)",
        "密码 / 授权码": "Password / app password",
        "接口地址（可选）": "API endpoint (optional)",
        "留空使用服务商默认地址": "Leave blank to use the provider's default",
        "短信签名": "SMS signature",
        "已在服务商控制台审核通过的签名，例如【某某品牌】中的“某某品牌”": (
            "A signature already approved in the provider's console: for 【BrandName】, enter “BrandName”"
        ),
        "地域（可选）": "Region (optional)",
        "例如 cn-hangzhou / ap-guangzhou": "e.g. cn-hangzhou / ap-guangzhou",
        "SdkAppId": "SdkAppId",
        "腾讯云短信应用 ID": "Tencent Cloud SMS application ID",
        "接收地址": "Endpoint URL",
        "http(s):// 开头，消息以签名的 POST 请求送达": (
            "Starts with http(s)://; messages arrive as signed POST requests"
        ),
        "推送的事件（可选）": "Events to push (optional)",
        "多个用逗号分隔": "Separate several with commas",
        "签名密钥": "Signing secret",
        "账号名称": "Account name",
        "例如：品牌营销短信": "e.g. Brand marketing SMS",
        "用于": "Used for",
        "每秒最多发送": "Max sends per second",
        "按服务商给的并发上限填写": "Use the rate limit your provider gives you",
        "已保存（%(hint)s），留空则不修改": "Saved (%(hint)s); leave blank to keep it",
        # Compliance settings form
        "每人每天最多": "Max per customer per day",
        "所有渠道合计的营销消息条数；0 表示不限": "Marketing messages across all channels; 0 means no limit",
        "每人每 7 天最多": "Max per customer per 7 days",
        "所有渠道合计；0 表示不限": "Across all channels; 0 means no limit",
        "可发送时段开始": "Sending window starts",
        "可发送时段结束": "Sending window ends",
        "营销短信退订提示": "Marketing SMS opt-out notice",
        "自动加在每条营销短信末尾，例如“拒收请回复R”": (
            "Added automatically to the end of every marketing SMS, e.g. “拒收请回复R” (reply R to opt out)"
        ),
        "退订关键词": "Opt-out keywords",
        "客户回复这些词之一即退订，多个用逗号或空格分隔，不区分大小写": (
            "A customer who replies with any of these words is opted out. Separate with commas or spaces; "
            "not case-sensitive"
        ),
        "每天": "per day",
        "每 7 天": "per 7 days",
        # Email unsubscribe page
        "已退订": "Unsubscribed",
        "退订邮件": "Unsubscribe",
        "您已退订，我们将不再向您发送营销信息。": "You're unsubscribed. We won't send you marketing messages any more.",
        "退订对邮件、短信等所有渠道生效；交易类通知（如订单、物流）不受影响。": (
            "This applies to every channel, including email and SMS. Transactional notices (such as orders "
            "and shipping) are not affected."
        ),
        "确定不再接收 %(brand)s 的营销信息吗？": "Stop receiving marketing messages from %(brand)s?",
        "确认退订": "Unsubscribe",
        "退订对邮件、短信等所有渠道生效。": "This applies to every channel, including email and SMS.",
        # Channel account views
        "渠道账号已添加。建议点“检测连接”确认账号可用。": (
            "Channel account added. Click “Test connection” to make sure it works."
        ),
        "渠道账号不存在": "No such channel account",
        "这个渠道已不再支持": "This channel is no longer supported",
        "连接正常：%(detail)s": "Connection OK: %(detail)s",
        "连接失败：%(detail)s": "Connection failed: %(detail)s",
        "账号已重新启用，排队中的消息会继续发送。": "Account re-enabled; queued messages will now be sent.",
        "已保存": "Saved",
        "回执（状态报告）地址": "Delivery report URL",
        "上行短信（客户回复）地址": "Inbound SMS (customer reply) URL",
        "合规设置已保存，之后发送的消息按新设置检查。": (
            "Compliance settings saved. Messages sent from now on are checked against them."
        ),
        # Navigation
        "内容": "Content",
        "素材库": "Materials",
        "话术库": "Scripts",
        "消息模板": "Message templates",
        "群发": "Broadcasts",
        "渠道账号": "Channel accounts",
        "合规设置": "Compliance settings",
        "退订名单": "Opt-out list",
        # Message template preview
        "已包含发送时追加的退订提示": "Includes the opt-out notice added at send time",
        "链接在发送时会替换为每位客户专属的追踪链接": (
            "Links are replaced with a tracking link unique to each customer at send time"
        ),
        "模板参数：": "Template parameters: ",
        "这位客户缺少以下信息，渲染结果为空：": "This customer is missing the following, so they render empty: ",
        "您的可见范围内还没有客户，无法预览。": "There are no customers in your scope yet, so there is nothing to preview.",
        # Materials
        "编辑素材": "Edit material",
        "分类": "Category",
        "标题": "Title",
        "文案": "Copy",
        "链接地址": "Link URL",
        "小程序 AppID": "Mini program AppID",
        "页面路径": "Page path",
        "封面图地址（可选）": "Cover image URL (optional)",
        "当前文件：": "Current file: ",
        "替换文件（可选，最大 %(max_mb)s MB）": "Replace file (optional, up to %(max_mb)s MB)",
        "归档后素材不再出现在素材库中，已关联它的话术不受影响。": (
            "Archived materials no longer appear in the library; scripts that link to them are not affected."
        ),
        "归档素材": "Archive material",
        "素材类型": "Material type",
        "全部类型": "All types",
        "搜索标题、内容、关键词": "Search titles, content and keywords",
        "搜索素材": "Search materials",
        "显示方式": "Layout",
        "卡片": "Cards",
        "列表": "List",
        "添加素材": "Add material",
        "全部": "All",
        "文案（文本素材必填；其他类型可作为配文）": "Copy (required for text materials; a caption for other types)",
        "上传文件（最大 %(max_mb)s MB；图片支持 PNG/JPG/GIF/WebP，文件支持 PDF、Office、ZIP、MP4、TXT、CSV）": (
            "Upload file (up to %(max_mb)s MB; images: PNG/JPG/GIF/WebP; files: PDF, Office, ZIP, MP4, TXT, CSV)"
        ),
        "关键词（逗号或空格分隔，便于搜索）": "Keywords (separated by commas or spaces, to help search)",
        "保存素材": "Save material",
        "没有符合条件的素材": "No materials match",
        "查看全部素材": "Show all materials",
        "素材库还是空的": "The material library is empty",
        "素材是导购和运营反复使用的内容：朋友圈的产品图和客户故事、社群里的活动海报、红包互动和知识课堂，以及链接、小程序卡片和文件。": (
            "Materials are the content store staff and operators use again and again: product photos and customer "
            "stories for Moments, campaign posters, red-packet games and mini classes for groups, plus links, "
            "mini program cards and files."
        ),
        "统一放在这里，导购发朋友圈、回复客户时直接取用，品牌口径一致。": (
            "Keep them here so store staff can use them directly when posting to Moments or replying to "
            "customers, and the brand speaks with one voice."
        ),
        "添加第一个素材": "Add the first material",
        "更新时间": "Updated",
        "下载": "Download",
        # Scripts
        "编辑话术": "Edit script",
        "新建话术": "New script",
        "场景": "Scenario",
        "例如：客户说太贵了": "e.g. Customer says it's too expensive",
        "话术内容": "Script text",
        "关键词（导购搜索时用，逗号或空格分隔）": "Keywords (for store staff to search by; separated by commas or spaces)",
        "配套素材（可多选）": "Linked materials (choose any)",
        "素材库中还没有素材": "No materials in the library yet",
        "保存话术": "Save script",
        "归档话术": "Archive script",
        "搜索关键词，如：贵、敏感肌、退货": "Search keywords, e.g. price, sensitive skin, returns",
        "搜索话术": "Search scripts",
        "没有找到与「%(q)s」相关的话术": "No scripts found for “%(q)s”",
        "查看全部话术": "Show all scripts",
        "话术库还是空的": "The script library is empty",
        "话术是导购在不同场景下对客户说的话：加好友后的欢迎语、产品介绍、客户嫌贵时的回应、活动邀约、售后安抚、唤醒沉睡客户……": (
            "Scripts are what store staff say to customers in different situations: a welcome after adding them "
            "as a friend, product introductions, answers when a customer finds it too expensive, event "
            "invitations, after-sales reassurance, winning back dormant customers…"
        ),
        "把门店里最会说的导购的说法沉淀下来，每位导购都能搜索关键词、一键复制使用。": (
            "Capture how your best store staff put things, so every clerk can search by keyword and copy it "
            "in one click."
        ),
        "新建第一条话术": "Create the first script",
        "配套素材：": "Linked materials: ",
        "关键词：": "Keywords: ",
        "复制": "Copy",
        "已复制": "Copied",
        # Message templates
        "新建模板": "New template",
        "模板名称": "Template name",
        "例如：会员日短信": "e.g. Member day SMS",
        "用途": "Purpose",
        "标题（邮件必填，App 推送可选）": "Subject (required for email, optional for app push)",
        "正文": "Body",
        "营销短信发送时会自动追加退订提示；使用服务商模板的营销短信，正文须以退订提示结尾。": (
            "Marketing SMS get the opt-out notice appended automatically; when a marketing SMS uses a provider "
            "template, the body must end with the opt-out notice."
        ),
        "服务商模板编号（短信）": "Provider template ID (SMS)",
        "模板参数（每行：参数名 = 表达式）": "Template parameters (one per line: name = expression)",
        "只读：模板由总部运营维护。您可以用自己的客户预览效果。": (
            "Read-only: templates are maintained by head office. You can preview them with your own customers."
        ),
        "服务商模板": "Provider template",
        "保存模板": "Save template",
        "归档模板": "Archive template",
        "预览": "Preview",
        "用真实客户渲染，不会发送": "Rendered with a real customer; nothing is sent",
        "预览客户": "Preview customer",
        "前 5 位客户（样例）": "First 5 customers (sample)",
        "或输入客户 ID": "or enter a customer ID",
        "客户 ID": "Customer ID",
        "正在生成预览…": "Generating preview…",
        "可用变量": "Available variables",
        "示例：": "Examples: ",
        "还没有消息模板": "No message templates yet",
        "消息模板是群发和自动化旅程发出的短信、邮件、App 推送和企业微信消息。模板里可以使用客户姓名、门店、导购、券码和可追踪链接等变量，为每位客户生成个性化内容。": (
            "Message templates are the SMS, emails, app pushes and WeCom messages that broadcasts and automated "
            "journeys send. Templates can use variables such as the customer's name, store, store staff, coupon "
            "code and tracked links to personalise each message."
        ),
        "保存时会检查变量和语法，发送前可以用真实客户预览效果。": (
            "Variables and syntax are checked when you save, and you can preview with real customers before sending."
        ),
        "新建第一个模板": "Create the first template",
        "模板": "Template",
        "这个渠道还没有模板": "No templates for this channel yet",
        # Broadcast report
        "发送进度": "Sending progress",
        "已处理 %(done)s / %(total)s": "Processed %(done)s / %(total)s",
        "%(n)s 条等待可发送时段": "%(n)s waiting for the sending window",
        "页面每隔几秒自动刷新。": "This page refreshes every few seconds.",
        "目标人群": "Audience",
        "含对照组 %(n)s": "incl. %(n)s in holdout",
        "已发送": "Sent",
        "失败 %(n)s": "%(n)s failed",
        "已送达": "Delivered",
        "点击": "Clicks",
        "转化": "Conversions",
        "转化金额": "Conversion revenue",
        "转化漏斗": "Conversion funnel",
        "没有发送任何消息": "No messages were sent",
        "拦截原因": "Suppression reasons",
        "没有消息被拦截": "No messages were suppressed",
        "各版本效果": "Results by version",
        "转化率按版本的全部目标客户计算（含被拦截的），与对照组公平比较": (
            "Conversion rate is over each version's whole audience (including suppressed customers), for a fair "
            "comparison with the holdout"
        ),
        "版本": "Version",
        "转化率": "Conversion rate",
        "相对对照组（95%% 置信区间）": "vs. holdout (95%% CI)",
        "对照组": "Holdout",
        # The reach card on the customer profile
        "触达与授权": "Reach and consent",
        "已退订营销消息": "Opted out of marketing",
        "所有渠道都不再发送营销消息，服务通知照常。": (
            "No marketing messages on any channel; service notifications continue."
        ),
        "撤销退订": "Undo opt-out",
        "接收营销消息": "Receives marketing messages",
        "客户要求不再接收时，点右侧按钮退订（所有渠道生效）。": (
            "If the customer asks to stop, click the button on the right to opt them out (all channels)."
        ),
        "退订": "Opt out",
        "营销授权（按渠道）": "Marketing consent (by channel)",
        "已同意": "Granted",
        "已撤回": "Revoked",
        "未授权": "No consent",
        "服务通知也已拒收": "Service notifications also refused",
        "撤回": "Revoke",
        "仅在客户明确同意后记录": "Record only after the customer has explicitly agreed",
        "记录同意": "Record consent",
        "最近的消息": "Recent messages",
        "还没有给这位客户发过消息": "No messages sent to this customer yet",
        # Channel accounts
        "添加渠道账号": "Add channel account",
        "添加": "Add",
        "账号已停用，消息暂停发送（排队中的消息会保留）：": (
            "Account disabled; sending is paused (queued messages are kept): "
        ),
        "请先在服务商处解决问题（如充值、更新密钥、模板审核），然后重新启用。": (
            "Fix the problem with the provider first (e.g. top up, update keys, get templates approved), then "
            "re-enable the account."
        ),
        "重新启用": "Re-enable",
        "返回": "Back",
        "检测连接": "Test connection",
        "用最省的一次真实调用检查密钥和网络是否可用，不会发送消息。": (
            "Makes one minimal real call to check the keys and the network. No message is sent."
        ),
        "失败": "Failed",
        "回调地址": "Callback URLs",
        "复制到服务商控制台的回执/上行配置中，才能收到送达结果和客户回复（回复“退订”等关键词会自动退订）。地址里含密钥，请勿公开。": (
            "Paste these into the delivery report / inbound message settings in the provider's console to "
            "receive delivery results and customer replies (replies with keywords such as “退订” opt the "
            "customer out automatically). The URLs contain a secret; keep them private."
        ),
        "邮件退订": "Email unsubscribe",
        "每封营销邮件自动带一键退订（List-Unsubscribe）：收件人在邮箱里点“退订”或点击邮件中的退订链接，即在所有渠道退订营销消息。": (
            "Every marketing email carries one-click unsubscribe (List-Unsubscribe): when a recipient clicks "
            "“Unsubscribe” in their mail app or the unsubscribe link in the email, they are opted out of "
            "marketing on all channels."
        ),
        "退订链接形如：": "Unsubscribe links look like: ",
        "退订邮箱：": "Unsubscribe mailbox: ",
        "可在左侧填写退订邮箱，部分邮箱客户端会改为发邮件退订。": (
            "You can set an unsubscribe mailbox on the left; some mail apps unsubscribe by sending it an email."
        ),
        "创建于": "Created",
        "还没有渠道账号": "No channel accounts yet",
        "渠道账号是品牌自己在短信、邮件等服务商开通的发送账号，例如阿里云短信的签名和 AccessKey。群发和自动消息都通过它发出。": (
            "A channel account is the brand's own sending account with an SMS, email or other provider, such as "
            "an Alibaba Cloud SMS signature and AccessKey. Broadcasts and automated messages are sent through it."
        ),
        "还没开通服务商也没关系：先添加一个“沙箱”账号，消息只记录不真正发送，可以完整试用群发流程。": (
            "No provider yet? Add a “Sandbox” account first: messages are recorded but never really sent, so you "
            "can try the whole broadcast flow."
        ),
        "服务商": "Provider",
        "最近检测": "Last tested",
        "未检测": "Not tested",
        "选择服务商": "Choose a provider",
        "可用于：": "Supports: ",
        "选择": "Choose",
        # Broadcast detail
        "确认定时发送": "Confirm schedule",
        "确认发送": "Confirm and send",
        "停止发送": "Stop sending",
        "渠道账号已停用，消息会一直排队等待：": "The channel account is disabled; messages stay queued: ",
        "去处理": "Fix it",
        "已定时：将在 %(when)s 自动开始发送。": "Scheduled: sending starts automatically at %(when)s.",
        "发送预估": "Send estimate",
        "按当前的客户、授权和合规设置计算，实际发送时会重新检查": (
            "Based on current customers, consent and compliance settings; checked again at send time"
        ),
        "对照组（%(p)s%%，不发送）": "Holdout (%(p)s%%, not sent)",
        "现在发送可送出": "Sendable now",
        "等待可发送时段": "Waiting for sending window",
        "%(when)s 开始发送": "Sending starts %(when)s",
        "被拦截": "Suppressed",
        "退订和未授权的客户不会收到营销消息；超过频率上限的客户可以改天再发。": (
            "Opted-out customers and customers without consent never get marketing messages; customers over "
            "a frequency cap can be reached another day."
        ),
        "没有客户会被拦截": "No customers will be suppressed",
        "内容版本": "Content versions",
        "权重": "Weight",
        "免打扰时段": "Quiet hours",
        "转化窗口": "Conversion window",
        "优惠券码": "Coupon code",
        "开始发送": "Sending started",
        "结束": "Finished",
        # Broadcast form
        "新建群发": "New broadcast",
        "还没有可用的渠道账号。请先请管理员在「渠道账号」中添加短信、邮件等发送账号。": (
            "No channel accounts available yet. Ask an admin to add an SMS, email or other sending account under "
            "“Channel accounts” first."
        ),
        "有几处需要修改，请看下面标红的地方。": "A few things need fixing; see the fields marked in red below.",
        "群发名称": "Broadcast name",
        "例如：双十一新品预告": "e.g. Double 11 new arrivals preview",
        "只在后台显示，客户看不到。": "Shown only in the console; customers never see it.",
        "发给谁": "Who to send to",
        "按分群": "By segment",
        "按标签": "By tag",
        "请选择分群": "Choose a segment",
        "还没有分群，可以改为按标签选择，或先去「客户分群」创建。": (
            "No segments yet. Choose by tag instead, or create one under “Segments” first."
        ),
        "带有任一标签": "Has any of these tags",
        "并且带有全部标签": "And has all of these tags",
        "按住 Ctrl（Mac 上是 ⌘）可多选。": "Hold Ctrl (⌘ on a Mac) to select several.",
        "用什么发": "How to send",
        "已停用": "Disabled",
        "消息类型": "Message type",
        "服务通知（订单、预约、会员权益变动等）不受频率上限和免打扰时段限制，也会发给已退订营销的客户，因此绝不能包含广告或促销内容。": (
            "Service notifications (orders, appointments, changes to member benefits, etc.) ignore frequency caps "
            "and quiet hours and also reach customers who opted out of marketing, so they must never contain "
            "ads or promotions."
        ),
        "添加版本（A/B 测试）": "Add version (A/B test)",
        "可以写 1–5 个版本，按权重随机分给客户，发送后比较各版本的点击和转化。可以选一个消息模板，也可以直接填写内容。": (
            "Write 1–5 versions; customers are assigned at random by weight, and after sending you can compare "
            "clicks and conversions per version. Pick a message template or write the content directly."
        ),
        "内容里可用变量，例如": "Content can use variables, e.g.",
        "版本 %(n)s": "Version %(n)s",
        "版本名": "Version name",
        "消息模板（可选）": "Message template (optional)",
        "不使用模板，直接填写下面的内容": "No template; write the content below",
        "标题（邮件必填）": "Subject (required for email)",
        "营销短信会自动在末尾加上退订提示（见「合规设置」）。": (
            "Marketing SMS get the opt-out notice appended automatically (see “Compliance settings”)."
        ),
        "服务商模板编号（阿里云/腾讯云短信）": "Provider template ID (Alibaba Cloud / Tencent Cloud SMS)",
        "模板参数（每行一个：参数名=内容）": "Template parameters (one per line: name=value)",
        "效果衡量": "Measurement",
        "对照组比例（%%）": "Holdout share (%%)",
        "随机留出这部分客户不发送，用来对比转化率。营销群发建议 10%%；服务通知请设为 0。": (
            "This share of customers is held back at random and not sent to, to compare conversion rates. "
            "10%% is recommended for marketing broadcasts; use 0 for service notifications."
        ),
        "转化窗口（天）": "Conversion window (days)",
        "发送后多少天内下单算作转化。": "Orders placed within this many days after sending count as conversions.",
        "优惠券码（可选）": "Coupon code (optional)",
        "什么时候发": "When to send",
        "确认后立即发送": "Send as soon as confirmed",
        "定时发送": "Schedule",
        "发送时间": "Send time",
        "按品牌时区 %(tz)s 计算。": "In the brand's time zone, %(tz)s.",
        "遇到免打扰时段": "During quiet hours",
        "营销消息只在「合规设置」的可发送时段内发出；服务通知不受限制。": (
            "Marketing messages go out only within the sending window set in “Compliance settings”; service "
            "notifications are not restricted."
        ),
        "保存并预览": "Save and preview",
        "保存后不会立即发送：先看预估，再确认发送。": (
            "Saving does not send anything: review the estimate first, then confirm."
        ),
        # Broadcast list
        "还没有群发": "No broadcasts yet",
        "群发是一次性给一批客户发送同一条消息，例如“给近 30 天没有下单的会员发一条新品短信”。": (
            "A broadcast sends one message to a group of customers at once, e.g. “send a new-arrivals SMS to "
            "members who haven't ordered in the last 30 days”."
        ),
        "发送前会预估有多少人能收到、多少人因为退订、未授权、免打扰时段或发送频率上限被拦下；还可以留出对照组，发送后对比转化率，看群发到底带来了多少订单。": (
            "Before sending, you see an estimate of how many customers will receive it and how many are held "
            "back by opt-outs, missing consent, quiet hours or frequency caps. You can also keep a holdout and "
            "compare conversion rates afterwards to see how many orders the broadcast really brought in."
        ),
        "创建时间": "Created",
        "%(n)s 人": "%(n)s customer(s)",
        # Compliance settings and opt-out list
        "这些规则在每条营销消息发出前检查，所有渠道（短信、邮件、企业微信等）一起计算。服务通知（订单、预约等）不受频率上限和时段限制。": (
            "These rules are checked before every marketing message is sent, counting all channels (SMS, email, "
            "WeCom, etc.) together. Service notifications (orders, appointments, etc.) ignore frequency caps "
            "and the sending window."
        ),
        "发送频率上限（每位客户）": "Frequency caps (per customer)",
        "分渠道上限（可选，留空表示只按上面的总上限）": (
            "Per-channel caps (optional; leave blank to apply only the overall caps above)"
        ),
        "营销消息可发送时段": "Sending window for marketing messages",
        "按品牌时区 %(tz)s。时段外的营销消息会顺延到下一个时段开始，或按群发设置跳过。": (
            "In the brand's time zone, %(tz)s. Marketing messages outside the window wait until it next opens, "
            "or are skipped, depending on the broadcast's setting."
        ),
        "上次修改": "Last changed",
        "共 %(n)s 人": "%(n)s in total",
        "名单中的客户在所有渠道都不会收到营销消息，服务通知照常。客户可通过短信回复退订关键词、邮件退订链接退订，也可以在客户详情页由员工代为退订或撤销。": (
            "Customers on this list get no marketing messages on any channel; service notifications continue. "
            "Customers opt out by replying to an SMS with an opt-out keyword or via the unsubscribe link in an "
            "email, and staff can opt them out or undo it on the customer's profile page."
        ),
        "按来源": "By source",
        "按手机号查找": "Find by phone number",
        "查找": "Find",
        "清除": "Clear",
        "说明": "Note",
        "退订时间": "Opted out at",
        "这个手机号不在退订名单中": "This phone number is not on the opt-out list",
        "还没有客户退订": "No customers have opted out yet",
        # Timeline event labels
        "恢复接收": "Opted back in",
        "授权": "Consent granted",
        "撤回授权": "Consent revoked",
        "点击链接": "Clicked link",
        "短信回复": "Replied to SMS",
        # Content views
        "素材「%(title)s」已添加": "Material “%(title)s” added",
        "素材不存在": "No such material",
        "素材已归档，不再出现在素材库中": "Material archived; it no longer appears in the library",
        "素材已保存": "Material saved",
        "话术不存在": "No such script",
        "话术已归档": "Script archived",
        "话术已保存": "Script saved",
        "第 %(n)s 行应写成 参数名 = 表达式": "Line %(n)s should read: name = expression",
        "模板不存在": "No such template",
        "模板已归档，不能再用于新的发送": "Template archived; it can no longer be used for new sends",
        "模板已保存": "Template saved",
        "客户不存在或不在您的可见范围内": "No such customer in your scope",
        # Broadcast views
        "分群「%(name)s」": "Segment “%(name)s”",
        "任一标签：%(names)s": "Any of tags: %(names)s",
        "全部标签：%(names)s": "All of tags: %(names)s",
        "群发已保存为草稿。请查看下面的预估，确认后再发送。": (
            "Broadcast saved as a draft. Review the estimate below, then confirm to send."
        ),
        "请填写数字": "Enter a number",
        "须在 %(low)s 到 %(high)s 之间": "Must be between %(low)s and %(high)s",
        "请至少选择一个标签": "Choose at least one tag",
        "请选择发送时间": "Choose a send time",
        "发送时间已过，请选择将来的时间": "That time has passed; choose a time in the future",
        "每行一个参数，格式：参数名=内容": "One parameter per line, as name=value",
        "群发不存在": "No such broadcast",
        "群发已取消，%(n)s 条未发出的消息不再发送。": "Broadcast cancelled; %(n)s unsent message(s) will not be sent.",
        "已定时，到时间后自动发送。": "Scheduled; it will be sent automatically at the set time.",
        "已开始发送：消息已排队，由后台逐批发出。": (
            "Sending started: messages are queued and sent in batches in the background."
        ),
        "发送对象": "Recipients",
        "无对照组": "No holdout",
        "没有对照组，无法计算提升（创建群发时设置对照组比例）。": (
            "No holdout, so lift can't be measured (set a holdout share when creating the broadcast)."
        ),
        "显著": "significant",
        "不显著": "not significant",
        "比对照组转化率高 %(points)s 个百分点（95%% 置信区间 %(low)s–%(high)s）": (
            "Conversion rate %(points)s percentage points above the holdout (95%% CI %(low)s–%(high)s)"
        ),
        "比对照组转化率低 %(points)s 个百分点（95%% 置信区间 %(low)s–%(high)s）": (
            "Conversion rate %(points)s percentage points below the holdout (95%% CI %(low)s–%(high)s)"
        ),
        "差异不显著": "difference not significant",
        "已退订：该客户不再收到任何渠道的营销消息（服务通知照常）。": (
            "Opted out: this customer no longer gets marketing messages on any channel (service notifications "
            "continue)."
        ),
        "已恢复接收营销消息。": "Marketing messages resumed.",
        "已记录授权变更。": "Consent change recorded.",
        "未知操作": "Unknown action",
    }
)
EN.update(
    {  # WeCom / Official Account settings console (siyu.wecom.views_console)
        "1–32 位字母或数字，与企业微信「接收消息 → 设置API接收」中的 Token 相同": (
            "1-32 letters or digits, the same as the Token under 接收消息 → 设置API接收 in WeCom"
        ),
        "3–32 位，本系统要求字母或数字": "3-32 characters; siyu requires letters or digits",
        "43 位字母或数字，与企业微信中的 EncodingAESKey 相同": "43 letters or digits, the same EncodingAESKey as in WeCom",
        "API 调用（最少）": "API calls (minimum)",
        "Secret 与企业 ID": "Secret and corp ID",
        "上次检查": "Last check",
        "今日处理失败": "Failed today",
        "今日收到": "Received today",
        "从未": "never",
        "令牌（Token）": "Token",
        "企业 ID 在「我的企业 → 企业信息」；AgentId 和 Secret 在「应用管理 → 自建应用 → 本应用」。": (
            "The corp ID is under 我的企业 → 企业信息; AgentId and Secret under 应用管理 → 自建应用 → this app."
        ),
        "企业 ID（CorpID）": "Corp ID (CorpID)",
        "企业微信 / 公众号": "WeCom / Official Account",
        "企业微信 / 公众号 设置": "WeCom / Official Account settings",
        "企业微信原文": "WeCom said",
        "企业微信应用已保存。请把回调 URL 填到企业微信后台，然后点“检查配置”。": (
            'WeCom app saved. Paste the callback URL into the WeCom admin console, then click "Check setup".'
        ),
        "企业微信自建应用": "WeCom self-built app",
        "企业微信调用日志": "WeCom API log",
        "企业微信：自建应用 → 接收消息 → 设置API接收 → URL": "WeCom: self-built app → 接收消息 → 设置API接收 → URL",
        "保存企业微信配置": "Save WeCom settings",
        "保存企业微信配置后再填写": "Save the WeCom settings first",
        "保存企业微信配置后即可检查。": "Save the WeCom settings to check them.",
        "保存公众号配置": "Save Official Account settings",
        "保存公众号配置后再填写": "Save the Official Account settings first",
        "保存配置后点“检查配置”：逐项检查 Secret、客户联系权限、可信 IP 和回调 URL，并告诉你哪里要改。": (
            'After saving, click "Check setup": it checks the secret, customer-contact permission, trusted IP and '
            "callback URL one by one and tells you what to change."
        ),
        "修复": "Fixed",
        "修改 AppID 时须重新填写": "Required again when the AppID changes",
        "修改企业 ID 时须重新填写": "Required again when the corp ID changes",
        "公众号已保存。请把服务器地址填到公众号后台「基本配置 → 服务器配置」。": (
            "Official Account saved. Paste the server URL into 基本配置 → 服务器配置 in the Official Account platform."
        ),
        "公众号：基本配置 → 服务器配置 → 服务器地址(URL)": "Official Account: 基本配置 → 服务器配置 → 服务器地址(URL)",
        "只看错误": "Errors only",
        "同步与对账": "Sync and reconciliation",
        "含义": "Meaning",
        "回调 URL 验证": "Callback URL verification",
        "回调接收": "Callbacks received",
        "在公众号后台「设置与开发 → 基本配置」查看 AppID、重置 AppSecret，并启用服务器配置。": (
            "In the Official Account platform, 设置与开发 → 基本配置 shows the AppID, resets the AppSecret and enables the "
            "server settings."
        ),
        "处理失败的回调会在企业微信重试时再次处理；一直失败的请把错误信息反馈给技术支持。": (
            "A failed callback is handled again when WeCom retries it; if it keeps failing, send the error to support."
        ),
        "安全模式": "Safe mode",
        "安全模式需要，43 位字母或数字": "Needed in safe mode: 43 letters or digits",
        "安全模式（推荐）": "Safe mode (recommended)",
        "客户联系权限、可信 IP 与可见范围": "Customer contact, trusted IP and visibility",
        "尚未连接企业微信。请先在企业微信管理后台创建一个自建应用，把它加入「客户联系 → API → 可调用接口的应用」，然后在下方填写企业 ID、AgentId 和 Secret。步骤详见 docs/wecom/setup.md。": (
            "WeCom is not connected yet. Create a self-built app in the WeCom admin console, add it under 客户联系 → API → "
            "可调用接口的应用, then fill in the corp ID, AgentId and Secret below. Steps: docs/wecom/setup.md."
        ),
        "尚未配置企业微信，还没有调用记录。": "WeCom is not configured: no calls yet.",
        "尚未验证：在企业微信保存 API 接收设置时会自动验证": "Not verified yet: WeCom verifies it when you save 设置API接收",
        "尚未验证：在公众号后台提交服务器配置时会自动验证": "Not verified yet: WeChat verifies it when you submit 服务器配置",
        "已加入后台同步队列，本页会显示进度和结果。": "Sync queued for a background worker; this page shows progress and the result.",
        "已排队，等待后台任务开始……": "Queued, waiting for a background worker…",
        "已通过企业微信验证": "Verified by WeCom",
        "已通过微信验证": "Verified by WeChat",
        "应用 AgentId": "App AgentId",
        "应用 Secret": "App Secret",
        "应用配置": "App settings",
        "开发者 ID（AppID）": "Developer ID (AppID)",
        "开发者密码（AppSecret）": "Developer password (AppSecret)",
        "开始": "Started",
        "微信公众号（服务号）": "WeChat Official Account (service account)",
        "接口": "API",
        "收到时间": "Received",
        "无答复": "No answer",
        "无需修复": "Nothing to fix",
        "明文模式": "Plaintext mode",
        "最近 24 小时按 errcode 统计": "Calls per errcode, last 24 hours",
        "最近 24 小时没有调用。": "No calls in the last 24 hours.",
        "最近 30 天没有处理失败的回调。": "No failed callbacks in the last 30 days.",
        "最近一次": "Latest",
        "最近没有处理失败的回调。": "No failed callbacks recently.",
        "查看全部": "See all",
        "检查配置": "Check setup",
        "每次调用企业微信接口的结果（保留 30 天）。errcode 不为 0 表示企业微信拒绝或出错，含义见右列；配置类错误请到设置页点“检查配置”。": (
            "Every WeCom API call and its result (kept 30 days). A nonzero errcode means WeCom refused or failed; its "
            'meaning is on the right. For configuration errors, click "Check setup" on the settings page.'
        ),
        "没有出错的调用。": "No failed calls.",
        "消息加解密方式": "Message encryption",
        "生成": "Generate",
        "用时": "Duration",
        "立即同步": "Sync now",
        "耗时": "Duration",
        "设置": "Settings",
        "调用日志": "API log",
        "还没有同步过。第一次同步会导入企业微信里已有的员工、客户和客户群。": (
            "Never synced. The first sync imports the staff, customers and customer groups already in WeCom."
        ),
        "还没有调用记录。": "No calls yet.",
        "连接企业微信自建应用（客户联系）和微信公众号。密钥加密保存，保存后不再显示。": (
            "Connect the WeCom self-built app (customer contact) and the WeChat Official Account. Secrets are stored "
            "encrypted and never shown again."
        ),
        "通过 API 做的修改企业微信不会推送回调，回调也可能丢失：系统定期从企业微信读取员工、客户、好友关系、标签和客户群，修正不一致的地方。": (
            "WeCom sends no callbacks for changes made through its API, and callbacks can get lost: siyu regularly reads "
            "staff, customers, relations, tags and groups from WeCom and fixes what differs."
        ),
        "配置检查": "Setup check",
        "错误": "Error",
        "已保存，留空则不修改": "Saved; leave empty to keep it",
        "已保存（%(hint)s），留空则不修改": "Saved (%(hint)s); leave empty to keep it",
        "同步进行中（%(when)s 开始）……": "Sync running (started %(when)s)…",
        "%(when)s 加入队列后一直没有开始：请确认后台任务进程（siyu worker）在运行。": (
            "Queued at %(when)s and not started since: make sure the background worker (siyu worker) is running."
        ),
        "修复 %(n)s 处": "%(n)s fixed",
    }
)
PLURALS = {
    "%(n)s 笔": ("%(n)s order", "%(n)s orders"),
    "距上次消费 %(n)s 天": ("%(n)s day since last purchase", "%(n)s days since last purchase"),
    "已归档 %(n)s 个分群": ("%(n)s archived segment", "%(n)s archived segments"),
    "已使用 %(n)s 次": ("Used %(n)s time", "Used %(n)s times"),
    "已被使用 %(n)s 次": ("Used %(n)s time", "Used %(n)s times"),
    "%(n)s 字": ("%(n)s character", "%(n)s characters"),
    "%(n)s 天": ("%(n)s day", "%(n)s days"),
}

EN.update(
    {  # channel codes, staff tasks, Moments, customer handover, WeCom broadcast tasks and sign-in
        # Channel codes (siyu.acquisition)
        "活码「%(name)s」已保存": "Channel code “%(name)s” saved",
        "张三": "Alex Zhang",
        "上海": "Shanghai",
        "已暂停：企业微信中的「联系我」已删除，已印刷的二维码不再可用": (
            "Paused: the Contact Me setup was deleted in WeCom, so printed QR codes no longer work"
        ),
        "已恢复：已生成新的二维码，请重新下载": "Resumed with a new QR code: download it again",
        "已重新分配（调用企业微信 %(n)s 次）": "Reassigned (%(n)s WeCom API calls)",
        "企业微信群发上限（每位客户）": "WeCom broadcast limit (per customer)",
        "与企业微信管理后台「客户联系 → 群发」的设置保持一致；超出的客户不生成群发任务": (
            "Match the setting under 客户联系 → 群发 in the WeCom admin console; customers over the limit get no "
            "broadcast task"
        ),
        "欢迎语为空：客户添加后不会自动发送消息。": "No welcome message: nothing is sent automatically when a customer adds you.",
        "渠道活码": "Channel codes",
        "立即重新分配": "Reassign now",
        "暂停会删除企业微信中的「联系我」配置，已印刷的二维码将失效。确定暂停？": (
            "Pausing deletes the Contact Me setup in WeCom and printed QR codes stop working. Pause?"
        ),
        "暂停": "Pause",
        "恢复（生成新二维码）": "Resume (new QR code)",
        "归档后不可恢复，确定？": "Archiving can't be undone. Archive?",
        "二维码": "QR code",
        "尚未同步到企业微信/公众号：当前为占位二维码，仅供预览。配置企业微信后重新保存即可生成。": (
            "Not synced to WeCom / the Official Account: this placeholder QR code is for preview only. Set up WeCom, "
            "then save again to generate it."
        ),
        "印刷请优先使用企业微信生成的原图：": "For print, prefer the image WeCom generated: ",
        "原始二维码": "Original QR code",
        "海报": "Poster",
        "海报预览": "Poster preview",
        "添加次数": "Adds",
        "7 天留存": "7-day retention",
        "30 天留存": "30-day retention",
        "获客成本/人": "Cost per customer",
        "首单转化": "First-order conversion",
        "成本": "Cost",
        "欢迎语": "Welcome message",
        "同步于": "synced",
        "分配说明": "Assignment note",
        "每日上限": "Daily cap",
        "备用": "Backup",
        "排班": "Schedule",
        "当前在码上": "On the code now",
        "不限": "No limit",
        "全天": "All day",
        "编辑活码": "Edit channel code",
        "新建活码": "New channel code",
        "例如：南京路店收银台": "e.g. Nanjing Road store checkout",
        "留空自动生成": "Leave empty to generate",
        "所属门店（门店活码必填）": "Store (required for store codes)",
        "成本（元：印刷、投放）": "Cost (CNY: printing, ads)",
        "客户添加无需验证": "Customers can add without approval",
        "成员与轮流规则": "Members and rotation",
        "按顺序分配给在排班时间内、未达当日上限的主成员；都不可用时切换到备用成员。每日上限 0 表示不限。时间段如 09:00-18:00，跨零点写 22:00-02:00。公众号二维码不绑定成员。": (
            "Customers go, in order, to primary members who are on schedule and under their daily cap; when none is "
            "available, to backup members. A daily cap of 0 means no limit. Time ranges look like 09:00-18:00; across "
            "midnight, write 22:00-02:00. Official Account QR codes have no members."
        ),
        "星期": "Days",
        "时间段": "Hours",
        "添加后自动打标签（可多选）": "Tags added automatically (choose any)",
        "欢迎语附带群二维码（素材库图片）": "Group QR code with the welcome message (image from Materials)",
        "欢迎语（可用 {{ customer.name }}、{{ staff.name }}、{{ store.name }}）": (
            "Welcome message (you can use {{ customer.name }}, {{ staff.name }}, {{ store.name }})"
        ),
        "预览（示例客户「张三」）": "Preview (sample customer “Alex Zhang”)",
        "保存活码": "Save channel code",
        "统计时间": "Period",
        "含已归档": "Include archived",
        "还没有渠道活码": "No channel codes yet",
        "渠道活码是一张可追踪的二维码：贴在门店、印在海报或投放在广告里，客户扫码后添加导购的企业微信（或关注公众号）。": (
            "A channel code is a trackable QR code: put it up in a store, print it on a poster or run it in an ad. "
            "Customers scan it to add a store associate on WeCom (or follow the Official Account)."
        ),
        "一张活码可以绑定一名导购，也可以在多名导购之间轮流分配（每人每天上限、备用导购、排班时间），并自动打标签、发送欢迎语、记录客户从哪个渠道来。": (
            "A code can go to one store associate or rotate among several (daily cap per person, backup associates, "
            "schedules), and it adds tags, sends a welcome message and records which channel each customer came from."
        ),
        "填上活码的成本（印刷、投放），这里就能看到每个渠道带来多少客户、7 天和 30 天留存，以及每位客户的获客成本。": (
            "Enter each code's cost (printing, ads) to see here how many customers each channel brings, 7- and 30-day "
            "retention, and the acquisition cost per customer."
        ),
        "企业微信或公众号尚未配置，二维码为占位": "WeCom or the Official Account isn't set up; the QR code is a placeholder",
        "未同步": "Not synced",
        "留存：添加满 7/30 天的客户中，届时仍是添加导购好友（公众号码：仍在关注）的比例。获客成本 = 活码成本 ÷ 该活码带来的全部客户。": (
            "Retention: the share of customers added 7/30 days ago who are still a store associate's friend (Official "
            "Account codes: still following). Acquisition cost = code cost ÷ all customers the code brought in."
        ),
        # Navigation
        "获客": "Acquisition",
        "客户继承": "Customer handover",
        "员工任务": "Staff tasks",
        "我的任务": "My tasks",
        "任务完成情况": "Task completion",
        "朋友圈": "Moments",
        # Broadcast detail: WeCom staff tasks
        "员工群发任务": "Staff broadcast tasks",
        "企业微信群发需员工在企业微信中确认后才会发出；结果每 5 分钟同步一次。": (
            "A WeCom broadcast is sent only after the staff member confirms it in WeCom; results sync every 5 minutes."
        ),
        "超出上限": "Over limit",
        "非好友": "Not friends",
        "提醒员工": "Remind staff",
        "取消后员工无法再发送此任务，确定取消？": "Once cancelled, staff can no longer send this task. Cancel it?",
        "取消任务": "Cancel task",
        "24 小时内最多 3 次，还可 %(n)s 次": "Up to 3 times in 24 hours; %(n)s left",
        "还没有创建群发任务：消息发出后，每位员工会收到一条待确认的群发。": (
            "No broadcast tasks yet: once the message goes out, each staff member gets a broadcast to confirm."
        ),
        "待确认": "Awaiting confirmation",
        "群发任务不存在": "No such broadcast task",
        "群发任务已取消，%(n)s 位客户不会收到。": "Broadcast task cancelled; %(n)s customers won't receive it.",
        "已提醒员工确认发送，24 小时内还可提醒 %(n)s 次。": (
            "Staff member reminded to confirm; %(n)s more reminders allowed in 24 hours."
        ),
        # WeCom callback log
        "等待重试": "Awaiting retry",
        "处理出错的回调会自动重试（10 秒到 30 分钟），5 次仍失败才算失败；一直失败的请把错误信息反馈给技术支持。": (
            "Callbacks that fail are retried automatically (after 10 seconds up to 30 minutes) and count as failed only "
            "after 5 attempts; if one keeps failing, send the error to support."
        ),
        # Customer timeline events
        "扫渠道活码添加": "Added via channel code",
        "添加企业微信好友": "Added as WeCom friend",
        "企业微信好友关系解除": "WeCom friendship ended",
        "企业微信资料变更": "WeCom profile changed",
        "加入客户群": "Joined customer group",
        "退出客户群": "Left customer group",
        "企微客户转接": "WeCom customer transfer",
        "企微转接失败": "WeCom transfer failed",
        "关注公众号": "Followed Official Account",
        "扫公众号二维码": "Scanned Official Account QR code",
        "取消关注公众号": "Unfollowed Official Account",
        # Customer handover
        "转接结果": "Transfer results",
        "刷新结果": "Refresh results",
        "原跟进员工": "Previous owner",
        "接替员工": "Takeover staff",
        "转接消息": "Transfer message",
        "在职转接：客户 24 小时内可拒绝，未拒绝则自动接替；离职继承：24 小时后自动接替。结果每 10 分钟从企业微信同步一次。": (
            "On-job transfer: the customer can decline within 24 hours, otherwise the takeover is automatic. "
            "Resigned-staff handover: automatic after 24 hours. Results sync from WeCom every 10 minutes."
        ),
        "没有符合条件的客户。": "No matching customers.",
        "错误码": "Error code",
        "发起时间": "Started",
        "完成时间": "Completed",
        "离职继承 / 在职转接": "Resigned-staff handover / On-job transfer",
        "把一名员工的企业微信客户交给一名或多名同事（多人时平均分配）。在职转接需客户在 24 小时内确认，可拒绝；离职继承 24 小时后自动完成。同一客户 90 天内最多在职转接 2 次。": (
            "Hand one staff member's WeCom customers to one or more colleagues (split evenly among several). An on-job "
            "transfer needs the customer to accept within 24 hours and can be declined; a resigned-staff handover "
            "completes automatically after 24 hours. A customer can be transferred on-job at most twice in 90 days."
        ),
        "您的范围内还没有绑定企业微信账号的员工。请先在「员工」中填写企业微信 userid，或运行 siyu wecom sync。": (
            "No staff in your scope are linked to a WeCom account yet. Enter their WeCom userid under “Staff”, or run "
            "siyu wecom sync."
        ),
        "接替员工（可多选）": "Takeover staff (choose any)",
        "转接成功后发给客户的消息（仅在职转接，选填）": "Message to customers after the transfer (on-job transfer only, optional)",
        "最多 %(message_max)s 字；不填则使用企业微信默认文案。": (
            "Up to %(message_max)s characters; leave empty for WeCom's default text."
        ),
        "开始转接": "Start transfer",
        "无法转接的客户": "Customers that can't be transferred",
        "原因": "Reason",
        "何时可再转接": "Transferable again",
        "这名员工没有可转接的客户。": "This staff member has no customers to transfer.",
        "转接记录": "Transfer history",
        "还没有转接记录。员工离职或调岗时，在左侧选择原跟进员工和接替员工，先预览再开始。": (
            "No transfers yet. When staff leave or change roles, choose the previous owner and takeover staff on the "
            "left, preview, then start."
        ),
        "进度": "Progress",
        "已发起转接，企业微信会在客户确认或 24 小时后完成接替。": (
            "Transfer started; WeCom completes it when the customer accepts or after 24 hours."
        ),
        "已从企业微信刷新接替结果。": "Transfer results refreshed from WeCom.",
        # Staff tasks (workbench)
        "完成": "Done",
        "企业微信已确认": "Confirmed in WeCom",
        "已完成": "Completed",
        "%(day)s 起未完成": "Overdue since %(day)s",
        "客户：": "Customer: ",
        "（未命名客户）": "(unnamed customer)",
        "复制话术": "Copy script",
        "日期": "Date",
        "查看": "View",
        "%(day)s 没有员工任务": "No staff tasks on %(day)s",
        "群发确认、朋友圈发表和客户跟进会给员工生成任务；员工在手机上的「我的任务」页完成，这里按门店和员工统计完成率。": (
            "Broadcast confirmations, Moments posts and customer follow-ups create staff tasks; staff complete them "
            "on the “My tasks” page on their phones, and this page shows completion by store and staff member."
        ),
        "共 %(total)s 个任务，已完成 %(done)s 个（%(rate)s%%）": "%(done)s of %(total)s tasks done (%(rate)s%%)",
        "按门店": "By store",
        "任务": "Tasks",
        "完成率": "Completion",
        "%(name)s的任务": "%(name)s's tasks",
        "今天没有待办任务": "No tasks for today",
        "总部安排群发、朋友圈或客户跟进时，任务会出现在这里。": (
            "Tasks show up here when HQ schedules broadcasts, Moments or customer follow-ups."
        ),
        "最近完成": "Recently completed",
        "你的账号还没有加入任何品牌，请联系管理员。": "Your account doesn't belong to any brand yet. Contact your admin.",
        "没有绑定员工": "No linked staff member",
        "你的账号没有绑定员工身份，所以没有个人任务。请联系管理员在「员工」里为你的账号绑定员工；店长可在任务完成情况页查看门店员工的任务。": (
            "Your account isn't linked to a staff member, so you have no tasks of your own. Ask your admin to link "
            "one under “Staff”; store managers can see their staff's tasks on the “Task completion” page."
        ),
        "找不到该员工": "Staff member not found",
        "该员工不存在，或不在你的管理范围内。": "No such staff member in your scope.",
        "找不到该任务": "Task not found",
        "该任务不存在，或不在你的管理范围内。": "No such task in your scope.",
        "无法登录": "Can't sign in",
        "该品牌尚未配置企业微信。": "This brand hasn't set up WeCom yet.",
        "登录链接已失效或不完整，请从企业微信侧边栏重新打开。": (
            "The sign-in link has expired or is incomplete. Open it again from the WeCom sidebar."
        ),
        "企业微信授权已失效，请从企业微信侧边栏重新打开。": "The WeCom authorization has expired. Open it again from the WeCom sidebar.",
        "账号未开通": "Account not set up",
        "你的企业微信账号还没有绑定运营台账号，请联系管理员开通。": (
            "Your WeCom account isn't linked to a console account yet. Ask your admin to set one up."
        ),
        "请用密码登录": "Sign in with your password",
        "管理员账号不支持企业微信免密登录，请在运营台用密码登录。": (
            "Admin accounts can't use WeCom sign-in. Sign in to the console with your password."
        ),
        # Moments
        "可见标签：": "Visible to tags: ",
        "企业微信拒绝的发表员工（不在应用可见范围或未开通客户联系）：": (
            "Staff WeCom rejected (outside the app's visibility or without customer contact): "
        ),
        "无效的客户标签：": "Invalid customer tags: ",
        "已发表/员工": "Posted / staff",
        "触达客户": "Customers reached",
        "员工发表情况": "Posting by staff",
        "企业微信正在创建任务，完成后这里会列出每位员工。": "WeCom is creating the task; each staff member is listed here once it's done.",
        "暂无员工任务。": "No staff tasks.",
        "已发表": "Posted",
        "待发表": "Not posted",
        "新建朋友圈": "New Moments post",
        "文案（最多 2000 字）": "Text (up to 2000 characters)",
        "素材：最多 9 张图片，或 1 个视频，或 1 个链接": "Materials: up to 9 images, or 1 video, or 1 link",
        "素材库里还没有图片或链接": "No images or links in Materials yet",
        "发表员工（可多选）": "Posting staff (choose any)",
        "还没有绑定企业微信的员工": "No staff linked to WeCom yet",
        "或按组织（其下所有员工）": "Or by organisation (all staff under it)",
        "可见客户标签（不选则员工的全部客户可见）": "Visible to customer tags (none: all of the staff member's customers)",
        "（未同步）": "(not synced)",
        "提交到企业微信": "Submit to WeCom",
        "还没有朋友圈任务": "No Moments posts yet",
        "在这里写好文案、选好素材，指定发表的员工（或整个门店）和可见的客户标签，企业微信会提醒每位员工一键发表到自己的朋友圈。": (
            "Write the text, pick materials, and choose the posting staff (or a whole store) and the customer tags who "
            "can see it; WeCom reminds each staff member to post it to their Moments in one tap."
        ),
        "每位员工的「员工任务」里会出现这条待办；员工发表后任务自动完成，这里能看到谁已发表、触达了多少客户。": (
            "It shows up as a to-do in each staff member's “Staff tasks”; the task completes once they post, and you "
            "can see here who has posted and how many customers it reached."
        ),
        "（图片/链接）": "(images/link)",
        "状态每 2 分钟从企业微信刷新一次；触达客户为已发表员工的可见客户数。": (
            "Status refreshes from WeCom every 2 minutes; customers reached counts the customers who can see the posts "
            "of staff who posted."
        ),
        "打开运营台": "Open the console",
        "企业微信未能创建朋友圈：%(e)s": "WeCom couldn't create the Moments post: %(e)s",
        "朋友圈任务已提交企业微信，员工将在企业微信中收到发表提醒": (
            "Moments post submitted to WeCom; staff will get a reminder in WeCom to post it"
        ),
        "已从企业微信刷新": "Refreshed from WeCom",
    }
)


EN.update(
    {
        "weekday|周一": "Mon",
        "weekday|周二": "Tue",
        "weekday|周三": "Wed",
        "weekday|周四": "Thu",
        "weekday|周五": "Fri",
        "weekday|周六": "Sat",
        "weekday|周日": "Sun",
    }
)


EN.update(
    {
        "正在向企业微信发起转接：还有 %(n)s / %(total)s 位客户待发起，请稍后刷新。": (
            "Starting the transfers in WeCom: %(n)s of %(total)s customers still to go. Refresh in a moment."
        ),
        "请在企业微信「工作台 → 客户朋友圈」中发表，发表后任务自动完成。": (
            "Post it in WeCom under 工作台 → 客户朋友圈; the task completes itself once you have posted."
        ),
        "请在企业微信「消息 → 群发助手」中确认发送，发送后任务自动完成。": (
            "Confirm the send in WeCom under 消息 → 群发助手; the task completes itself once it is sent."
        ),
        "在企业微信中发送后自动完成": "Completes itself once sent in WeCom",
        "企业微信限频，朋友圈已保存为草稿，几分钟内会自动重新提交": (
            "WeCom is rate-limiting: the Moments post was saved as a draft and will be resubmitted "
            "automatically within a few minutes"
        ),
        "已结束": "Closed",
    }
)


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
