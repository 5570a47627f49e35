"""API: keyword rules (tag customers by what they write)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Status

from siyu.tags import keyword_rules
from siyu.tags.models import KeywordRule
from siyu.tags.schemas import KeywordRuleIn

router = Router(tags=["keyword rules"])


@router.get("/keyword-rules", response=list[dict[str, Any]])
def list_rules(request: HttpRequest):
    """Every keyword rule of the workspace with `hits` (matching messages recorded)."""
    hits = keyword_rules.hit_counts(request.workspace)
    rules = KeywordRule.objects.filter(workspace=request.workspace).prefetch_related("tags").order_by("pk")
    return [keyword_rules.rule_as_dict(rule, hits.get(rule.pk, 0)) for rule in rules]


@router.post("/keyword-rules", response={201: dict[str, Any]})
def create_rule(request: HttpRequest, payload: KeywordRuleIn):
    """Create a rule; it applies to messages ingested from now on (see `/keyword-rules/{id}/run`)."""
    rule = keyword_rules.create_rule(request.workspace, payload.model_dump())
    return Status(201, keyword_rules.rule_as_dict(rule, 0))


@router.get("/keyword-rules/{rule_id}", response=dict[str, Any])
def get_rule(request: HttpRequest, rule_id: int):
    rule = keyword_rules.get_rule(request.workspace, rule_id)
    return keyword_rules.rule_as_dict(rule, keyword_rules.hit_counts(request.workspace).get(rule.pk, 0))


@router.put("/keyword-rules/{rule_id}", response=dict[str, Any])
def update_rule(request: HttpRequest, rule_id: int, payload: KeywordRuleIn):
    rule = keyword_rules.update_rule(request.workspace, rule_id, payload.model_dump())
    return keyword_rules.rule_as_dict(rule, keyword_rules.hit_counts(request.workspace).get(rule.pk, 0))


@router.delete("/keyword-rules/{rule_id}", response={204: None})
def delete_rule(request: HttpRequest, rule_id: int):
    """Delete the rule and its match history; tags it added stay."""
    keyword_rules.delete_rule(request.workspace, rule_id)
    return Status(204, None)


@router.post("/keyword-rules/{rule_id}/run", response=dict[str, int])
def run_on_history(request: HttpRequest, rule_id: int):
    """Run the active rules over every stored customer message (idempotent)."""
    keyword_rules.get_rule(request.workspace, rule_id)
    result = keyword_rules.apply_keyword_rules_to_history(request.workspace, rule_id=rule_id)
    return {"matches": result.matches, "tagged": result.tagged, "customers": len(result.customers)}
