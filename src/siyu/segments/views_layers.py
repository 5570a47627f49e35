"""Console page 客户分层: layer distributions in the viewer's scope, the thresholds form and a
recompute button (HQ operators only)."""

from __future__ import annotations

from dataclasses import asdict

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from siyu.console import charts
from siyu.console.access import console_view
from siyu.core.errors import InvalidInput
from siyu.customers.models import Customer
from siyu.org.models import Role
from siyu.segments import layer_rules as lr
from siyu.segments.layer_queries import layer_distribution
from siyu.segments.layers import current_thresholds, recompute_layers, update_layer_settings
from siyu.segments.tasks import recompute_layers_task

# Who may change thresholds and trigger a recompute: they shape every segment that uses layers.
LAYER_MANAGER_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.OPERATOR})
LIFECYCLE_COLORS = ["#20c997", "#198754", "#fd7e14", "#6c757d", "#dc3545"]
# Up to this many live customers the button recomputes while the operator waits (a second or
# two); a bigger workspace is recomputed by a background worker instead of tying up a request.
INLINE_RECOMPUTE_LIMIT = 50_000


def _days(label: str, help_text: str = "") -> forms.IntegerField:
    low, high = lr.SETTING_LIMITS["new_days"]
    return forms.IntegerField(label=label, min_value=low, max_value=high, help_text=help_text)


class LayerSettingsForm(forms.Form):
    rfm_window_days = _days(gettext_lazy("RFM 统计窗口（天）"), gettext_lazy("只统计这段时间内的已支付订单"))
    new_days = _days(gettext_lazy("新客（首单后天数 ≤）"))
    active_days = _days(gettext_lazy("活跃（距最近下单 ≤ 天）"))
    at_risk_days = _days(gettext_lazy("风险（距最近下单 ≤ 天）"))
    dormant_days = _days(gettext_lazy("沉睡（距最近下单 ≤ 天，超过即流失）"))
    community_window_days = _days(gettext_lazy("社群参与统计窗口（天）"))


def can_manage_layers(request: HttpRequest) -> bool:
    return request.access.role in LAYER_MANAGER_ROLES


@console_view
def layers(request: HttpRequest) -> HttpResponse:
    access = request.access
    manager = can_manage_layers(request)
    form = LayerSettingsForm(initial=asdict(current_thresholds(access.workspace)))
    status = 200
    if request.method == "POST":
        if not manager:
            return render(request, "console/forbidden.html", status=403)
        if request.POST.get("action") == "recompute":
            workspace = access.workspace
            live = Customer.objects.filter(workspace=workspace, merged_into__isnull=True)
            if live.count() > INLINE_RECOMPUTE_LIMIT:
                recompute_layers_task.enqueue(workspace.pk)
                messages.info(request, _("客户较多，已加入后台重算队列，完成后刷新本页即可看到新的分层"))
                return redirect("console:layers")
            report = recompute_layers(workspace)
            messages.success(
                request,
                _("已重算 %(customers)s 位客户的分层，%(changed)s 位有变化，用时 %(seconds).1f 秒")
                % {"customers": f"{report.customers:,}", "changed": f"{report.changed:,}", "seconds": report.seconds},
            )
            return redirect("console:layers")
        form = LayerSettingsForm(request.POST)
        if form.is_valid():
            try:
                update_layer_settings(access.workspace, lr.Thresholds(**form.cleaned_data), user=request.user)
            except InvalidInput as exc:
                form.add_error(exc.field, exc.message)
            else:
                messages.success(request, _("分层设置已保存，下次重算时生效"))
                return redirect("console:layers")
        status = 400
    dist = layer_distribution(access.scope)
    context = {"dist": dist, "form": form, "can_manage": manager}
    if dist.total:
        context |= {
            "fig_rfm": charts.layer_bars([(label, n) for _, label, n in dist.rfm_cells]),
            "fig_lifecycle": charts.layer_bars([(label, n) for _, label, n in dist.lifecycles], LIFECYCLE_COLORS),
            "fig_pyramid": charts.pyramid([(label, n) for _, label, n in dist.community_tiers]),
        }
    return render(request, "console/layers.html", context, status=status)
