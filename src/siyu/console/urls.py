from django.contrib.auth import views as auth_views
from django.urls import path

from siyu.console import views
from siyu.segments import views_layers

app_name = "console"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path(
        "login/",
        auth_views.LoginView.as_view(template_name="console/login.html", redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(next_page="console:login"), name="logout"),
    path("customers/", views.customer_list, name="customers"),
    path("customers/<int:customer_id>/", views.customer_detail, name="customer"),
    path("customers/<int:customer_id>/timeline/", views.customer_timeline, name="customer_timeline"),
    path("customers/<int:customer_id>/tags/", views.customer_tags, name="customer_tags"),
    path("layers/", views_layers.layers, name="layers"),
    path("conflicts/", views.conflicts, name="conflicts"),
    path("org/", views.org, name="org"),
    path("staff/", views.staff, name="staff"),
    path("api-keys/", views.api_keys, name="api_keys"),
    path("workspace/", views.switch_workspace, name="switch_workspace"),
]

# Keyword tagging and risk control (their views live in their features).
from siyu.conversations import views as conversation_views  # noqa: E402
from siyu.tags import views as tag_views  # noqa: E402

urlpatterns += [
    path("keyword-rules/", tag_views.keyword_rule_list, name="keyword_rules"),
    path("keyword-rules/new/", tag_views.keyword_rule_edit, name="keyword_rule_new"),
    path("keyword-rules/<int:rule_id>/", tag_views.keyword_rule_edit, name="keyword_rule"),
    path("risk/", conversation_views.risk, name="risk"),
]

# Customer segments (客户分群).
from siyu.segments import views as segment_views  # noqa: E402

urlpatterns += [
    path("segments/", segment_views.segment_list, name="segments"),
    path("segments/new/", segment_views.segment_edit, name="segment_new"),
    path("segments/preview/", segment_views.segment_preview, name="segment_preview"),
    path("segments/<int:segment_id>/", segment_views.segment_detail, name="segment"),
    path("segments/<int:segment_id>/edit/", segment_views.segment_edit, name="segment_edit"),
    path("segments/<int:segment_id>/export.csv", segment_views.segment_export, name="segment_export"),
]

# Content library (素材库 / 话术库 / 消息模板).
from siyu.content import views as content_views  # noqa: E402

urlpatterns += [
    path("materials/", content_views.material_list, name="materials"),
    path("materials/<int:material_id>/", content_views.material_edit, name="material"),
    path("scripts/", content_views.script_list, name="scripts"),
    path("scripts/new/", content_views.script_edit, name="script_new"),
    path("scripts/<int:script_id>/", content_views.script_edit, name="script"),
    path("scripts/<int:script_id>/use/", content_views.script_use, name="script_use"),
    path("message-templates/", content_views.template_list, name="message_templates"),
    path("message-templates/new/", content_views.template_edit, name="message_template_new"),
    path("message-templates/preview/", content_views.template_preview, name="message_template_preview"),
    path("message-templates/<int:template_id>/", content_views.template_edit, name="message_template"),
]

# Reach (触达): broadcasts, channel accounts, compliance settings, the profile's reach card.
from siyu.channels import views as channel_views  # noqa: E402
from siyu.messaging import views_console as reach_views  # noqa: E402

urlpatterns += [
    path("broadcasts/", reach_views.broadcast_list, name="broadcasts"),
    path("broadcasts/new/", reach_views.broadcast_new, name="broadcast_new"),
    path("broadcasts/<int:broadcast_id>/", reach_views.broadcast_detail, name="broadcast"),
    path("customers/<int:customer_id>/reach/", reach_views.customer_reach, name="customer_reach"),
    path("channel-accounts/", channel_views.account_list, name="channel_accounts"),
    path("channel-accounts/new/", channel_views.account_new, name="channel_account_new"),
    path("channel-accounts/<int:account_id>/", channel_views.account_edit, name="channel_account"),
    path("compliance/", channel_views.compliance, name="compliance"),
    path("compliance/opt-outs/", channel_views.opt_outs, name="opt_outs"),
]

# Acquisition (获客): channel codes (渠道活码).
from siyu.acquisition import views as acquisition_views  # noqa: E402

urlpatterns += [
    path("channel-codes/", acquisition_views.code_list, name="channel_codes"),
    path("channel-codes/new/", acquisition_views.code_edit, name="channel_code_new"),
    path("channel-codes/preview/", acquisition_views.welcome_preview, name="channel_code_preview"),
    path("channel-codes/<int:code_id>/", acquisition_views.code_detail, name="channel_code"),
    path("channel-codes/<int:code_id>/edit/", acquisition_views.code_edit, name="channel_code_edit"),
    path("channel-codes/<int:code_id>/qr.png", acquisition_views.code_qr_png, name="channel_code_qr_png"),
    path("channel-codes/<int:code_id>/qr.svg", acquisition_views.code_qr_svg, name="channel_code_qr_svg"),
    path("channel-codes/<int:code_id>/poster.png", acquisition_views.code_poster, name="channel_code_poster"),
]

# Settings (设置): the WeCom app and the Official Account, sync and API logs.
from siyu.wecom import views_console as wecom_views  # noqa: E402

urlpatterns += [
    path("settings/wecom/", wecom_views.wecom_settings, name="wecom_settings"),
    path("settings/wecom/sync/", wecom_views.wecom_sync_status, name="wecom_sync_status"),
    path("settings/wecom/logs/", wecom_views.wecom_logs, name="wecom_logs"),
]

# Staff workbench: the mobile task page (WeCom sidebar), its completion report, Moments (朋友圈).
from siyu.workbench import views as workbench_views  # noqa: E402
from siyu.workbench import views_moments  # noqa: E402

urlpatterns += [
    path("m/tasks/", workbench_views.task_page, name="staff_tasks"),
    path("m/tasks/<int:task_id>/done/", workbench_views.task_done, name="staff_task_done"),
    path("m/wecom/start/<slug:slug>/", workbench_views.wecom_start, name="wecom_start"),
    path("m/wecom/auth/", workbench_views.wecom_auth, name="wecom_auth"),
    path("tasks/report/", workbench_views.task_report, name="task_report"),
    path("moments/", views_moments.moment_list, name="moments"),
    path("moments/new/", views_moments.moment_new, name="moment_new"),
    path("moments/<int:moment_id>/", views_moments.moment_detail, name="moment"),
]

# Staff turnover (离职继承 / 在职转接).
from siyu.handover import views as handover_views  # noqa: E402

urlpatterns += [
    path("handovers/", handover_views.handover_list, name="handovers"),
    path("handovers/<int:batch_id>/", handover_views.handover_detail, name="handover"),
]
