"""Console: keyword rules (关键词打标). HQ sees and edits them; store roles do not (the rules
apply to the whole workspace)."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from siyu.console.access import console_view
from siyu.conversations.views import can_edit_rules, post_id, split_words
from siyu.core.errors import InvalidInput, NotFound
from siyu.tags import keyword_rules
from siyu.tags.models import KeywordRule, Tag


def form_data(request: HttpRequest) -> dict:
    post = request.POST

    def number(name: str, default):
        value = post.get(name, "").strip()
        if not value:
            return default
        try:
            return int(value)
        except ValueError:
            return value  # the schema reports it against its field

    tag_ids = []
    for raw in post.getlist("tags"):
        try:
            tag_ids.append(int(raw))
        except ValueError:
            continue
    return {
        "name": post.get("name", ""),
        "keywords": split_words(post.get("keywords", "")),
        "match_mode": post.get("match_mode", "contains"),
        "min_matches": number("min_matches", 1),
        "window_days": number("window_days", None),
        "tag_ids": tag_ids,
        "active": post.get("active", "on") == "on",
    }


def editor_context(access, rule: KeywordRule | None, values: dict | None = None) -> dict:
    if values is None and rule is not None:
        values = {**keyword_rules.rule_as_dict(rule), "keywords": "\n".join(rule.keywords)}
    elif values is not None:
        values = {**values, "keywords": "\n".join(values["keywords"])}
    return {
        "rule": rule,
        "values": values or {"match_mode": "contains", "min_matches": 1, "tag_ids": [], "active": True},
        "all_tags": Tag.objects.filter(workspace=access.workspace)
        .select_related("group")
        .order_by("group__sort", "sort"),
        "modes": KeywordRule.Mode.choices,
    }


@console_view
def keyword_rule_list(request: HttpRequest) -> HttpResponse:
    access = request.access
    if access.scope.kind != "all":
        return render(request, "console/forbidden.html", status=403)
    editor = can_edit_rules(access)
    if request.method == "POST":
        if not editor:
            return render(request, "console/forbidden.html", status=403)
        action = request.POST.get("action")
        try:
            rule = keyword_rules.get_rule(access.workspace, post_id(request, "rule"))
        except NotFound:
            raise Http404 from None
        if action == "toggle":
            keyword_rules.set_rule_active(access.workspace, rule.pk, not rule.active, user=request.user)
        elif action == "delete":
            keyword_rules.delete_rule(access.workspace, rule.pk, user=request.user)
            messages.success(request, _("规则已删除，已打上的标签保留"))
        elif action == "run":
            result = keyword_rules.apply_keyword_rules_to_history(access.workspace, rule_id=rule.pk, user=request.user)
            messages.success(
                request,
                _("已对历史消息执行：命中 %(matches)s 条消息，新打标签 %(tagged)s 个")
                % {"matches": result.matches, "tagged": result.tagged},
            )
        return redirect("console:keyword_rules")

    hits = keyword_rules.hit_counts(access.workspace)
    rules = KeywordRule.objects.filter(workspace=access.workspace).prefetch_related("tags").order_by("-active", "pk")
    context = {"rows": [(rule, hits.get(rule.pk, 0)) for rule in rules], "editor": editor}
    return render(request, "console/keyword_rules.html", context)


@console_view
def keyword_rule_edit(request: HttpRequest, rule_id: int | None = None) -> HttpResponse:
    access = request.access
    if not can_edit_rules(access):
        return render(request, "console/forbidden.html", status=403)
    rule = None
    if rule_id is not None:
        try:
            rule = keyword_rules.get_rule(access.workspace, rule_id)
        except NotFound:
            raise Http404 from None
    if request.method == "POST":
        values = form_data(request)
        try:
            if rule is None:
                keyword_rules.create_rule(access.workspace, values, user=request.user)
            else:
                keyword_rules.update_rule(access.workspace, rule.pk, values, user=request.user)
        except InvalidInput as exc:
            messages.error(request, _("无法保存：%(field)s %(message)s") % {"field": exc.field, "message": exc.message})
            return render(request, "console/keyword_rule_form.html", editor_context(access, rule, values), status=422)
        messages.success(request, _("规则已保存"))
        return redirect("console:keyword_rules")
    return render(request, "console/keyword_rule_form.html", editor_context(access, rule))
