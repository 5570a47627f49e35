"""Keyword rules: tag customers by what they write to staff.

Use cases: create / update / delete a rule (audited), evaluate rules on messages as they
arrive (``tag_from_messages``, called inside ``ingest_messages``'s transaction) and run
them over stored history (``apply_keyword_rules_to_history``). Both evaluation paths are
set-based: one automaton scan per message, one INSERT of matches, one query of the
matches that windows need, one INSERT of tags.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Max
from pydantic import ValidationError

from siyu.core import clock
from siyu.core.batch import validation_errors
from siyu.core.errors import InvalidInput, NotFound
from siyu.core.limits import valid_id
from siyu.core.sql import ColumnType, id_list_condition, insert_rows
from siyu.customers.services import mark_changed
from siyu.org.models import Workspace
from siyu.org.services import audit
from siyu.tags.keywords import Hit, Matcher, MatcherCache, RuleWords, window_trigger
from siyu.tags.models import KeywordMatch, KeywordRule, Tag, TagSource
from siyu.tags.schemas import KeywordRuleIn

MATCH_COLUMNS: dict[str, ColumnType] = {
    "workspace_id": "int",
    "rule_id": "int",
    "customer_id": "int",
    "message_id": "int",
    "matched_at": "datetime",
}
TAG_COLUMNS: dict[str, ColumnType] = {
    "workspace_id": "int",
    "customer_id": "int",
    "tag_id": "int",
    "source": "text",
    "source_ref": "text",
    "created_at": "datetime",
}
HISTORY_CHUNK = 5000
_cache = MatcherCache()


@dataclass(frozen=True)
class MessageRef:
    """An inbound text message as the rules see it."""

    message_id: int
    customer_id: int
    text: str
    sent_at: dt.datetime


@dataclass(frozen=True)
class RuleSpec:
    min_matches: int
    window: dt.timedelta | None
    tag_ids: tuple[int, ...]


@dataclass
class RuleSet:
    matcher: Matcher
    rules: dict[int, RuleSpec] = field(default_factory=dict)


@dataclass
class TaggingResult:
    matches: int = 0  # (rule, message) pairs recorded
    tagged: int = 0  # customer tags added
    customers: set[int] = field(default_factory=set)  # customers whose tags changed


# ---- rule CRUD ---------------------------------------------------------------------------


def parse_rule(raw: Any) -> KeywordRuleIn:
    """Raw dict -> validated input, or InvalidInput naming the first bad field."""
    try:
        return KeywordRuleIn.model_validate(raw)
    except ValidationError as exc:
        loc, msg = validation_errors(exc)[0]
        raise InvalidInput(msg, field=loc) from None


def _check_tags(workspace: Workspace, tag_ids: list[int]) -> list[int]:
    found = set(Tag.objects.filter(workspace=workspace, pk__in=tag_ids).values_list("pk", flat=True))
    missing = [t for t in tag_ids if t not in found]
    if missing:
        raise InvalidInput(f"no tag with id {missing[0]} in this workspace", field="tag_ids")
    return tag_ids


def create_rule(workspace: Workspace, raw: Any, *, user=None) -> KeywordRule:
    data = parse_rule(raw)
    now = clock.now()
    with transaction.atomic():
        tag_ids = _check_tags(workspace, data.tag_ids)
        rule = KeywordRule.objects.create(
            workspace=workspace,
            name=data.name,
            keywords=data.keywords,
            match_mode=data.match_mode,
            min_matches=data.min_matches,
            window_days=data.window_days,
            active=data.active,
            created_at=now,
            updated_at=now,
        )
        rule.tags.set(tag_ids)
        audit(workspace=workspace, action="keyword_rule.create", target=f"keyword_rule:{rule.pk}", user=user)
    return rule


def get_rule(workspace: Workspace, rule_id: int) -> KeywordRule:
    rule = KeywordRule.objects.filter(workspace=workspace, pk=rule_id).first() if valid_id(rule_id) else None
    if rule is None:
        raise NotFound("keyword rule not found", field="rule_id")
    return rule


def update_rule(workspace: Workspace, rule_id: int, raw: Any, *, user=None) -> KeywordRule:
    """Replace a rule's definition; matches recorded so far keep counting toward min_matches."""
    data = parse_rule(raw)
    with transaction.atomic():
        rule = get_rule(workspace, rule_id)
        tag_ids = _check_tags(workspace, data.tag_ids)
        for name in ("name", "keywords", "match_mode", "min_matches", "window_days", "active"):
            setattr(rule, name, getattr(data, name))
        # updated_at is the matcher cache's revision: every edit must move it.
        rule.updated_at = max(clock.now(), rule.updated_at + dt.timedelta(microseconds=1))
        rule.save()
        rule.tags.set(tag_ids)
        audit(workspace=workspace, action="keyword_rule.update", target=f"keyword_rule:{rule.pk}", user=user)
    return rule


def set_rule_active(workspace: Workspace, rule_id: int, active: bool, *, user=None) -> KeywordRule:
    with transaction.atomic():
        rule = get_rule(workspace, rule_id)
        rule.active = active
        rule.updated_at = max(clock.now(), rule.updated_at + dt.timedelta(microseconds=1))
        rule.save(update_fields=["active", "updated_at"])
        action = "keyword_rule.enable" if active else "keyword_rule.disable"
        audit(workspace=workspace, action=action, target=f"keyword_rule:{rule.pk}", user=user)
    return rule


def delete_rule(workspace: Workspace, rule_id: int, *, user=None) -> None:
    """Delete a rule and its match history; tags it added stay on the customers."""
    with transaction.atomic():
        rule = get_rule(workspace, rule_id)
        KeywordMatch.objects.filter(rule=rule).delete()
        rule.delete()
        audit(workspace=workspace, action="keyword_rule.delete", target=f"keyword_rule:{rule_id}", user=user)


def hit_counts(workspace: Workspace) -> dict[int, int]:
    """Rule id -> matching messages recorded."""
    rows = (
        KeywordMatch.objects.filter(workspace=workspace)
        .values("rule_id")
        .annotate(n=Count("id"))
        .values_list("rule_id", "n")
    )
    return dict(rows)


def rule_as_dict(rule: KeywordRule, hits: int | None = None) -> dict[str, Any]:
    return {
        "id": rule.pk,
        "name": rule.name,
        "keywords": rule.keywords,
        "match_mode": rule.match_mode,
        "min_matches": rule.min_matches,
        "window_days": rule.window_days,
        "tag_ids": sorted(t.pk for t in rule.tags.all()),
        "active": rule.active,
        "hits": hits,
        "created_at": rule.created_at,
        "updated_at": rule.updated_at,
    }


# ---- evaluation --------------------------------------------------------------------------


def rule_set(workspace_id: int) -> RuleSet:
    """The workspace's active rules compiled, rebuilt only when a rule changed."""
    revision = tuple(
        KeywordRule.objects.filter(workspace_id=workspace_id)
        .aggregate(n=Count("id"), last=Max("updated_at"), top=Max("id"))
        .values()
    )
    return _cache.get(("keyword", workspace_id), revision, lambda: _build_rule_set(workspace_id))  # type: ignore[return-value]


def _build_rule_set(workspace_id: int) -> RuleSet:
    rows = list(
        KeywordRule.objects.filter(workspace_id=workspace_id, active=True).values_list(
            "id", "keywords", "match_mode", "min_matches", "window_days"
        )
    )
    tags: dict[int, list[int]] = {}
    for rule_id, tag_id in KeywordRule.tags.through.objects.filter(
        keywordrule__workspace_id=workspace_id, keywordrule__active=True
    ).values_list("keywordrule_id", "tag_id"):
        tags.setdefault(rule_id, []).append(tag_id)
    words = [RuleWords(pk, tuple(kw), mode == KeywordRule.Mode.EXACT) for pk, kw, mode, _, _ in rows]
    specs = {
        pk: RuleSpec(n, dt.timedelta(days=days) if days else None, tuple(sorted(tags.get(pk, ()))))
        for pk, _, _, n, days in rows
    }
    return RuleSet(Matcher(words), specs)


def forget_compiled_rules() -> None:
    """Drop every cached automaton (tests reuse workspace ids across rolled-back transactions)."""
    _cache.clear()


def tag_from_messages(workspace: Workspace, messages: Sequence[MessageRef]) -> TaggingResult:
    """Evaluate the active keyword rules on stored inbound text messages (call inside a transaction).

    Steps: scan every text once; record (rule, message) matches, ignoring ones already
    recorded (replays); find (rule, customer) pairs that now qualify (min_matches within
    the window); add the rules' tags they lack with source ``keyword`` and
    ``source_ref`` = ``keyword_rule:<id> message:<id>``; mark those customers changed.
    """
    result = TaggingResult()
    ruleset = rule_set(workspace.pk)
    if not ruleset.rules or not messages:
        return result
    found = ruleset.matcher.match_many([m.text for m in messages])
    hits = [(rule_id, m) for m, rule_ids in zip(messages, found, strict=True) for rule_id in rule_ids]
    if not hits:
        return result
    ws = workspace.pk
    insert_rows(
        "tags_keywordmatch",
        MATCH_COLUMNS,
        [(ws, rule_id, m.customer_id, m.message_id, m.sent_at) for rule_id, m in hits],
        ignore_conflicts=True,
    )
    result.matches = len(hits)
    pairs: dict[tuple[int, int], list[MessageRef]] = {}
    for rule_id, m in hits:
        pairs.setdefault((rule_id, m.customer_id), []).append(m)
    _tag_qualifying(ws, ruleset, pairs, result)
    return result


def _tag_qualifying(
    ws: int, ruleset: RuleSet, pairs: dict[tuple[int, int], list[MessageRef]], result: TaggingResult
) -> None:
    customers = sorted({c for _, c in pairs})
    tag_ids = sorted({t for rule_id, _ in pairs for t in ruleset.rules[rule_id].tag_ids})
    if not tag_ids:
        return
    # A tag deleted since the rules were compiled is skipped, not an FK violation.
    live_tags = set(Tag.objects.filter(workspace_id=ws, pk__in=tag_ids).values_list("pk", flat=True))
    has = _existing_tags(customers, sorted(live_tags))
    # Pairs whose customer already carries every tag of the rule need no counting.
    todo = {
        key: new
        for key, new in pairs.items()
        if any(t in live_tags and (key[1], t) not in has for t in ruleset.rules[key[0]].tag_ids)
    }
    triggers: dict[tuple[int, int], int] = {}
    windowed = {}
    for key, new in todo.items():
        spec = ruleset.rules[key[0]]
        if spec.min_matches <= 1:
            triggers[key] = max(new, key=lambda m: (m.sent_at, m.message_id)).message_id
        else:
            windowed[key] = new
    if windowed:
        stored = _stored_hits(windowed, ruleset)
        for key, new in windowed.items():
            spec = ruleset.rules[key[0]]
            new_ids = {m.message_id for m in new}
            pair_hits = [Hit(at, mid, mid in new_ids) for at, mid in stored.get(key, [])]
            trigger = window_trigger(pair_hits, spec.min_matches, spec.window)
            if trigger is not None:
                triggers[key] = trigger
    now = clock.now()
    rows = {}
    for (rule_id, customer_id), message_id in sorted(triggers.items()):
        for tag_id in ruleset.rules[rule_id].tag_ids:
            if tag_id in live_tags and (customer_id, tag_id) not in has and (customer_id, tag_id) not in rows:
                ref = f"keyword_rule:{rule_id} message:{message_id}"
                rows[(customer_id, tag_id)] = (ws, customer_id, tag_id, TagSource.KEYWORD.value, ref, now)
    insert_rows("tags_customertag", TAG_COLUMNS, list(rows.values()), ignore_conflicts=True)
    result.tagged += len(rows)
    changed = {c for c, _ in rows}
    result.customers |= changed
    mark_changed(ws, changed)


def _existing_tags(customers: list[int], tag_ids: list[int]) -> set[tuple[int, int]]:
    if not customers or not tag_ids:
        return set()
    by_customer, params = id_list_condition("customer_id", customers)
    by_tag, tag_params = id_list_condition("tag_id", tag_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT customer_id, tag_id FROM tags_customertag WHERE {by_customer} AND {by_tag}", [*params, *tag_params]
        )
        return {(c, t) for c, t in cursor.fetchall()}


def _stored_hits(
    pairs: dict[tuple[int, int], list[MessageRef]], ruleset: RuleSet
) -> dict[tuple[int, int], list[tuple[dt.datetime, int]]]:
    """(rule, customer) -> every recorded match that could share a window with a new one."""
    rule_ids = sorted({r for r, _ in pairs})
    customers = sorted({c for _, c in pairs})
    earliest = None
    if all(ruleset.rules[r].window is not None for r in rule_ids):
        earliest = min(
            m.sent_at - ruleset.rules[r].window  # type: ignore[operator]
            for (r, _), new in pairs.items()
            for m in new
        )
    qs = KeywordMatch.objects.filter(rule_id__in=rule_ids, customer_id__in=customers)
    if earliest is not None:
        qs = qs.filter(matched_at__gte=earliest)
    out: dict[tuple[int, int], list[tuple[dt.datetime, int]]] = {}
    for rule_id, customer_id, at, message_id in qs.values_list("rule_id", "customer_id", "matched_at", "message_id"):
        if (rule_id, customer_id) in pairs:
            out.setdefault((rule_id, customer_id), []).append((at, message_id))
    return out


def apply_keyword_rules_to_history(workspace: Workspace, *, rule_id: int | None = None, user=None) -> TaggingResult:
    """Run the active rules over every stored inbound text message, in id-ordered chunks.

    Safe to repeat: matches already recorded are not recorded again, tags already held are
    not added again. ``rule_id`` only labels the audit entry (all active rules run: one scan).
    """
    from siyu.conversations.services import inbound_text_after

    total = TaggingResult()
    after = 0
    while True:
        with transaction.atomic():
            chunk = inbound_text_after(workspace.pk, after, HISTORY_CHUNK)
            if not chunk:
                break
            part = tag_from_messages(workspace, chunk)
        total.matches += part.matches
        total.tagged += part.tagged
        total.customers |= part.customers
        after = chunk[-1].message_id
        if len(chunk) < HISTORY_CHUNK:
            break
    audit(
        workspace=workspace,
        action="keyword_rule.run_history",
        target=f"keyword_rule:{rule_id}" if rule_id else "keyword_rules",
        user=user,
        details={"matches": total.matches, "tagged": total.tagged},
    )
    return total
