"""Segments: saving definitions, and keeping materialised membership fresh.

A refresh of a workspace, in one transaction:

1. take the workspace's refresh lock (one refresher at a time per workspace);
2. drain ``customers_customerchange``: the customers whose data changed since the last refresh;
3. for each live segment: a changed definition (or a first run) rebuilds it in full; otherwise
   only the changed customers, plus those with activity on days that just left one of the
   rule's rolling windows, are re-evaluated with the compiled statement;
4. the difference against the open memberships is applied set-based through temp tables:
   stays are opened and closed, ``segment_entered`` / ``segment_exited`` events land on each
   customer's timeline, and tag rules add or remove their tag.

A crash anywhere rolls the whole refresh back, change marks included, so nothing is lost.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from django.db import DatabaseError, connection, transaction
from django.db.models import F

from siyu.channels.webhook.events import emit_segment_entered
from siyu.core import clock
from siyu.core.errors import InvalidInput, NotFound
from siyu.core.sql import adapt
from siyu.customers.services import MARK_CONFLICT
from siyu.org.models import OrgUnit, Staff, Workspace
from siyu.org.services import audit
from siyu.segments import rules as r
from siyu.segments.compiler import Compiled, CompileError, Context, Dependency, compile_rule
from siyu.segments.models import Segment, SegmentSize, SegmentTagRule
from siyu.tags.models import Tag, TagSource

logger = logging.getLogger(__name__)
# pg_advisory_xact_lock(class, id): the class keeps our locks apart from other features'.
REFRESH_LOCK_CLASS = 7301
# A segment not refreshed for this long is rebuilt rather than patched day by day.
MAX_INCREMENTAL_GAP_DAYS = 60


@dataclass
class SegmentDiff:
    segment_id: int
    entered: int = 0
    exited: int = 0
    rebuilt: bool = False
    candidates: int = 0


@dataclass
class RefreshReport:
    changed_customers: int = 0
    segments: list[SegmentDiff] = field(default_factory=list)
    # Segments that could not be refreshed: id -> reason.
    failed: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def entered(self) -> int:
        return sum(s.entered for s in self.segments)

    @property
    def exited(self) -> int:
        return sum(s.exited for s in self.segments)


def local_today(workspace: Workspace, now: dt.datetime) -> dt.date:
    return now.astimezone(ZoneInfo(workspace.time_zone)).date()


def workspace_rules(workspace: Workspace) -> dict[int, r.Rule]:
    """Parsed rules of the workspace's segments; a stored rule that no longer parses is left out
    (the refresh reports that segment as failed instead of failing them all)."""
    out = {}
    for segment in Segment.objects.filter(workspace=workspace).only("rule"):
        try:
            out[segment.pk] = r.parse_rule(segment.rule)
        except InvalidInput:
            logger.warning("segment %s has an invalid stored rule", segment.pk)
    return out


def context_for(workspace: Workspace, now: dt.datetime, rules: dict[int, r.Rule] | None = None) -> Context:
    return Context(
        vendor=connection.vendor,
        workspace_id=workspace.pk,
        today=local_today(workspace, now),
        time_zone=workspace.time_zone,
        segments=workspace_rules(workspace) if rules is None else rules,
    )


# -- definitions ---------------------------------------------------------------------------


def validate_rule(workspace: Workspace, document: Any, *, segment_id: int | None = None) -> r.Rule:
    """Parse a rule and check what it refers to exists in this workspace (and loops nowhere)."""
    rule = r.parse_rule(document)
    tag_ids = r.referenced_tags(rule)
    known = set(Tag.objects.filter(workspace=workspace, pk__in=tag_ids).values_list("pk", flat=True))
    if tag_ids - known:
        raise InvalidInput(f"no tag with id {min(tag_ids - known)} in this workspace", field=_path_to(rule, "tags"))
    for node_path, node in _leaves(rule):
        if isinstance(node, r.OrgCondition):
            model = Staff if node.level == "staff" else OrgUnit
            kind = {"store": OrgUnit.Kind.STORE, "region": OrgUnit.Kind.REGION}.get(node.level)
            qs = model.objects.filter(workspace=workspace, pk__in=node.ids)
            if kind:
                qs = qs.filter(kind=kind)
            missing = set(node.ids) - set(qs.values_list("pk", flat=True))
            if missing:
                raise InvalidInput(
                    f"no {node.level} with id {min(missing)} in this workspace", field=f"{node_path}.ids"
                )
        if isinstance(node, r.ReachCondition):
            if node.staff_id and not Staff.objects.filter(workspace=workspace, pk=node.staff_id).exists():
                raise InvalidInput(f"no staff with id {node.staff_id}", field=f"{node_path}.staff_id")
            if node.store_id and not OrgUnit.objects.filter(workspace=workspace, pk=node.store_id).exists():
                raise InvalidInput(f"no store with id {node.store_id}", field=f"{node_path}.store_id")
    others = workspace_rules(workspace)
    for node_path, node in _leaves(rule):
        if isinstance(node, r.SegmentCondition) and node.segment_id not in others:
            raise InvalidInput(f"no segment with id {node.segment_id}", field=f"{node_path}.segment_id")
    if segment_id is not None:
        cycle = r.find_cycle(segment_id, others, {segment_id: rule})
        if cycle:
            chain = " → ".join(str(i) for i in cycle)
            raise InvalidInput(f"segments would refer to each other in a loop ({chain})", field="match")
        others[segment_id] = rule
    if r.expanded_size(rule, others) > r.MAX_NODES:
        raise InvalidInput(f"with the segments it uses, a rule has at most {r.MAX_NODES} conditions", field="match")
    # A trial compile: whatever cannot become SQL is refused now, not at the next refresh.
    compile_for(workspace, rule, rules=others)
    return rule


def _leaves(rule: r.Rule):
    """(path, node) for every node, paths as in validation errors."""

    def visit(node: Any, path: str):
        yield path, node
        if isinstance(node, r.AndNode | r.OrNode):
            for n, child in enumerate(node.conditions):
                yield from visit(child, f"{path}.conditions.{n}")
        elif isinstance(node, r.NotNode):
            yield from visit(node.condition, f"{path}.condition")

    yield from visit(rule.match, "match")


def _path_to(rule: r.Rule, node_type: str) -> str:
    for path, node in _leaves(rule):
        if getattr(node, "type", None) == node_type:
            return f"{path}.tag_ids" if node_type == "tags" else path
    return "match"


def save_segment(
    workspace: Workspace,
    *,
    name: str,
    rule: Any,
    description: str = "",
    segment_id: int | None = None,
    user=None,
) -> Segment:
    """Create a segment, or change one (a changed rule bumps the revision: the next refresh rebuilds it)."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise InvalidInput("a segment needs a name of 1 to 100 characters", field="name")
    if len(description) > 500:
        raise InvalidInput("the description is longer than 500 characters", field="description")
    parsed = validate_rule(workspace, rule, segment_id=segment_id)
    document = parsed.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    document["version"] = r.RULE_VERSION
    now = clock.now()
    with transaction.atomic():
        clash = Segment.objects.filter(workspace=workspace, name=name).exclude(pk=segment_id)
        if clash.exists():
            raise InvalidInput(f"a segment named '{name}' already exists", field="name")
        if segment_id is None:
            segment = Segment.objects.create(
                workspace=workspace,
                name=name,
                description=description,
                rule=document,
                created_by=user,
                created_at=now,
                updated_at=now,
            )
            action = "segment.create"
        else:
            segment = Segment.objects.select_for_update().filter(workspace=workspace, pk=segment_id).first()
            if segment is None:
                raise NotFound("no segment with this id", field="segment_id")
            if segment.rule != document:
                segment.revision += 1
                # Segments that inline this one must be rebuilt too.
                dependents = dependents_of(workspace, segment.pk)
                if dependents:
                    Segment.objects.filter(pk__in=dependents).update(revision=F("revision") + 1)
            segment.name, segment.description, segment.rule, segment.updated_at = name, description, document, now
            segment.archived_at = None
            segment.save()
            action = "segment.update"
        audit(workspace=workspace, action=action, target=f"segment:{segment.pk}", user=user, details={"name": name})
    return segment


def dependents_of(workspace: Workspace, segment_id: int) -> set[int]:
    """Segments whose rules use ``segment_id``, directly or through others."""
    uses = {
        pk: r.referenced_segments(r.parse_rule(rule))
        for pk, rule in Segment.objects.filter(workspace=workspace).values_list("pk", "rule")
    }
    found: set[int] = set()
    frontier = {segment_id}
    while frontier:
        frontier = {pk for pk, refs in uses.items() if refs & frontier and pk not in found}
        found |= frontier
    return found


def archive_segment(workspace: Workspace, segment_id: int, *, user=None) -> None:
    """Stop refreshing a segment; its membership history stays. Refused while another segment uses it."""
    with transaction.atomic():
        segment = Segment.objects.select_for_update().filter(workspace=workspace, pk=segment_id).first()
        if segment is None:
            raise NotFound("no segment with this id", field="segment_id")
        users = [
            s.name
            for s in Segment.objects.filter(workspace=workspace, archived_at__isnull=True).exclude(pk=segment_id)
            if segment_id in r.referenced_segments(r.parse_rule(s.rule))
        ]
        if users:
            raise InvalidInput(f"segment is used by: {', '.join(users)}", field="segment_id")
        segment.archived_at = clock.now()
        # Changes made while archived are not tracked for it: a restored segment is rebuilt.
        segment.refreshed_revision = 0
        segment.save(update_fields=["archived_at", "refreshed_revision"])
        SegmentTagRule.objects.filter(segment=segment).update(active=False)
        audit(workspace=workspace, action="segment.archive", target=f"segment:{segment.pk}", user=user)


def save_tag_rule(workspace: Workspace, *, segment_id: int, tag_id: int, active: bool = True) -> SegmentTagRule:
    """Keep a tag equal to a segment's members; the segment is rebuilt on the next refresh to sync it."""
    segment = Segment.objects.filter(workspace=workspace, pk=segment_id, archived_at__isnull=True).first()
    if segment is None:
        raise NotFound("no segment with this id", field="segment_id")
    if not Tag.objects.filter(workspace=workspace, pk=tag_id).exists():
        raise NotFound("no tag with this id", field="tag_id")
    with transaction.atomic():
        rule, _ = SegmentTagRule.objects.update_or_create(
            segment=segment,
            tag_id=tag_id,
            defaults={"workspace": workspace, "active": active, "created_at": clock.now()},
        )
        if active:
            sync_tag_rule(rule)
    return rule


def sync_tag_rule(rule: SegmentTagRule) -> None:
    """Make the rule's tags equal the segment's current members (after creating a rule). Only
    tags this rule added are removed: a tag an operator set by hand stays."""
    segment_id, tag_id, ref = rule.segment_id, rule.tag_id, f"segment:{rule.segment_id}"
    members = "SELECT m.customer_id FROM segments_segmentmembership m WHERE m.segment_id = %s AND m.exited_at IS NULL"
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL work_mem = '256MB'")  # NOT IN (members), as in the refresh
        _temp_ids(cursor, "seg_tagged")
        cursor.execute(
            "INSERT INTO seg_tagged (customer_id) SELECT m.customer_id FROM segments_segmentmembership m "
            "WHERE m.segment_id = %s AND m.exited_at IS NULL AND NOT EXISTS (SELECT 1 FROM tags_customertag ct "
            "WHERE ct.customer_id = m.customer_id AND ct.tag_id = %s)",
            [segment_id, tag_id],
        )
        cursor.execute(
            "INSERT INTO tags_customertag (workspace_id, customer_id, tag_id, source, source_ref, created_at) "
            "SELECT %s, customer_id, %s, %s, %s, %s FROM seg_tagged WHERE 1 = 1 ON CONFLICT DO NOTHING",
            [rule.workspace_id, tag_id, TagSource.RULE, ref, adapt(clock.now(), "datetime")],
        )
        cursor.execute(
            "INSERT INTO seg_tagged (customer_id) SELECT ct.customer_id FROM tags_customertag ct "
            f"WHERE ct.tag_id = %s AND ct.source = %s AND ct.source_ref = %s AND ct.customer_id NOT IN ({members}) "
            "ON CONFLICT DO NOTHING",
            [tag_id, TagSource.RULE, ref, segment_id],
        )
        cursor.execute(
            "DELETE FROM tags_customertag WHERE tag_id = %s AND source = %s AND source_ref = %s "
            f"AND customer_id NOT IN ({members})",
            [tag_id, TagSource.RULE, ref, segment_id],
        )
        cursor.execute(
            "INSERT INTO customers_customerchange (customer_id, workspace_id) "
            f"SELECT customer_id, %s FROM seg_tagged WHERE 1 = 1 {MARK_CONFLICT}",
            [rule.workspace_id],
        )
        cursor.execute("DROP TABLE IF EXISTS seg_tagged")


def bulk_tag(workspace: Workspace, segment_id: int, tag_id: int, *, remove: bool = False, user=None) -> int:
    """Tag (or untag) every current member of a segment at once; returns how many changed."""
    segment = Segment.objects.filter(workspace=workspace, pk=segment_id).first()
    tag = Tag.objects.filter(workspace=workspace, pk=tag_id).first()
    if segment is None:
        raise NotFound("no segment with this id", field="segment_id")
    if tag is None:
        raise NotFound("no tag with this id", field="tag_id")
    members = "SELECT m.customer_id FROM segments_segmentmembership m WHERE m.segment_id = %s AND m.exited_at IS NULL"
    with transaction.atomic(), connection.cursor() as cursor:
        if remove:
            cursor.execute(
                f"DELETE FROM tags_customertag WHERE tag_id = %s AND customer_id IN ({members})", [tag_id, segment_id]
            )
        else:
            cursor.execute(
                "INSERT INTO tags_customertag (workspace_id, customer_id, tag_id, source, source_ref, created_at) "
                f"SELECT %s, m.customer_id, %s, %s, %s, %s FROM ({members}) m WHERE 1 = 1 ON CONFLICT DO NOTHING",
                [
                    workspace.pk,
                    tag_id,
                    TagSource.RULE,
                    f"bulk:segment:{segment_id}",
                    adapt(clock.now(), "datetime"),
                    segment_id,
                ],
            )
        changed = cursor.rowcount
        with connection.cursor() as mark:
            mark.execute(
                "INSERT INTO customers_customerchange (customer_id, workspace_id) "
                f"SELECT m.customer_id, %s FROM ({members}) m WHERE 1 = 1 {MARK_CONFLICT}",
                [workspace.pk, segment_id],
            )
        audit(
            workspace=workspace,
            action="segment.untag" if remove else "segment.tag",
            target=f"segment:{segment_id}",
            user=user,
            details={"tag": tag_id, "changed": changed},
        )
    return changed


# -- refresh ---------------------------------------------------------------------------------


def refresh_workspace(workspace: Workspace, *, now: dt.datetime | None = None, full: bool = False) -> RefreshReport:
    """Bring every live segment of the workspace up to date (see the module docstring)."""
    started = time.perf_counter()
    now = now or clock.now()
    report = RefreshReport()
    with transaction.atomic():
        lock_workspace_refresh(workspace.pk)
        report.changed_customers = drain_changes(workspace.pk)
        rules = workspace_rules(workspace)
        ctx = context_for(workspace, now, rules)
        if connection.vendor == "postgresql":
            # NOT IN (subquery) is only fast as a hashed subplan, which must fit in work_mem.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL work_mem = '256MB'")
                # Parallel workers each rebuild the same hash of a subquery (measured: the broad
                # segment 2.0 s with 2 workers, 1.6 s without, on 2 cores).
                cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
                # JIT compiles every statement again (~15 ms each, hundreds per refresh) for plans
                # that mostly probe indexes.
                cursor.execute("SET LOCAL jit = off")
        # Rules on segment_entered / segment_exited events depend on other segments' moves.
        mark_moves = any(
            isinstance(n, r.EventCondition) and n.name.startswith("segment_")
            for rule in rules.values()
            for n in r.walk(rule.match)
        )
        segments = Segment.objects.filter(workspace=workspace, archived_at__isnull=True).order_by("pk")
        restricted = dataclasses.replace(ctx, per_customer=True)
        for segment in segments:
            try:
                # A savepoint each: one broken segment is reported, the others still refresh.
                with transaction.atomic():
                    if segment.pk not in rules:
                        raise CompileError("the stored rule is not valid")
                    compiled = compile_rule(rules[segment.pk], ctx)
                    narrow = compile_rule(rules[segment.pk], restricted)
                    diff = _refresh_segment(segment, compiled, narrow, ctx, now, full=full, mark_moves=mark_moves)
            except (CompileError, OverflowError, ValueError, DatabaseError) as exc:
                logger.exception("segment %s of workspace %s failed to refresh", segment.pk, workspace.pk)
                report.failed[segment.pk] = str(exc)
                continue
            report.segments.append(diff)
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS seg_changed")
    report.seconds = time.perf_counter() - started
    return report


def lock_workspace_refresh(workspace_id: int) -> None:
    """One refresher per workspace. On PostgreSQL an advisory lock, not a row lock on the
    workspace: every insert that references the workspace takes a key-share lock on that
    row, and a FOR UPDATE there would stall all ingestion for the length of a refresh.
    (SQLite allows one writer at a time anyway.)"""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [REFRESH_LOCK_CLASS, workspace_id])


def drain_changes(workspace_id: int) -> int:
    """Move the workspace's change marks into the temp table ``seg_changed``; returns how many.

    Two statements, not DELETE ... RETURNING into Python: after a big import the set can hold
    every customer. A mark added between them is not deleted, so it waits for the next refresh.
    """
    with connection.cursor() as cursor:
        _temp_ids(cursor, "seg_changed")
        cursor.execute(
            "INSERT INTO seg_changed (customer_id) SELECT customer_id FROM customers_customerchange "
            "WHERE workspace_id = %s",
            [workspace_id],
        )
        count = cursor.rowcount
        cursor.execute(
            "DELETE FROM customers_customerchange WHERE workspace_id = %s "
            "AND customer_id IN (SELECT customer_id FROM seg_changed)",
            [workspace_id],
        )
    return count


def _refresh_segment(
    segment: Segment,
    compiled: Compiled,
    narrow: Compiled,
    ctx: Context,
    now: dt.datetime,
    *,
    full: bool,
    mark_moves: bool = False,
) -> SegmentDiff:
    """``compiled`` answers for the whole workspace, ``narrow`` only for the customers in ``seg_cand``."""
    gap = (ctx.today - segment.refreshed_day).days if segment.refreshed_day else None
    rebuild = full or segment.refreshed_revision != segment.revision or gap is None or gap > MAX_INCREMENTAL_GAP_DAYS
    diff = SegmentDiff(segment.pk, rebuilt=rebuild)
    if rebuild:
        _apply(segment, compiled, now, candidates=False, diff=diff, mark_moves=mark_moves)
    else:
        with connection.cursor() as cursor:
            _temp_ids(cursor, "seg_cand")
            cursor.execute("INSERT INTO seg_cand (customer_id) SELECT customer_id FROM seg_changed")
            if gap:
                for dependency in compiled.dependencies:
                    sql, params = expired_candidates(dependency, ctx, segment.refreshed_day)
                    cursor.execute(f"INSERT INTO seg_cand (customer_id) {sql} ON CONFLICT DO NOTHING", params)
            cursor.execute("SELECT COUNT(*) FROM seg_cand")
            diff.candidates = cursor.fetchone()[0]
            if connection.vendor == "postgresql" and diff.candidates:
                # Without statistics the planner guesses a big temp table and scans whole counter
                # ranges; knowing it is small, it probes the per-customer unique indexes instead.
                cursor.execute("ANALYZE seg_cand")
        if diff.candidates:
            _apply(segment, narrow, now, candidates=True, diff=diff, mark_moves=mark_moves)
    if rebuild:
        size = segment.memberships.filter(exited_at__isnull=True).count()
    else:
        size = segment.member_count + diff.entered - diff.exited
    Segment.objects.filter(pk=segment.pk).update(
        member_count=size,
        refreshed_revision=segment.revision,
        refreshed_day=ctx.today,
        refreshed_at=now,
    )
    updated = SegmentSize.objects.filter(segment=segment, day=ctx.today).update(
        size=size, entered=F("entered") + diff.entered, exited=F("exited") + diff.exited
    )
    if not updated:
        SegmentSize.objects.create(segment=segment, day=ctx.today, size=size, entered=diff.entered, exited=diff.exited)
    return diff


def expired_candidates(dependency: Dependency, ctx: Context, last_day: dt.date) -> tuple[str, list[Any]]:
    """Customers with activity on the days that left a rolling window between ``last_day`` and today.

    The range is widened by a day on each side: a superset only costs a re-evaluation.
    """
    first = last_day - dt.timedelta(days=dependency.days)
    last = ctx.today - dt.timedelta(days=dependency.days - 1)
    days = [adapt(first, "date"), adapt(last, "date")]
    if dependency.source == "event":
        return (
            "SELECT DISTINCT d.customer_id FROM tracking_eventdaily d WHERE d.workspace_id = %s AND d.name = %s "
            "AND d.day >= %s AND d.day <= %s",
            [ctx.workspace_id, dependency.name, *days],
        )
    if dependency.source == "orders":
        return (
            "SELECT DISTINCT o.customer_id FROM tracking_orderdaily o WHERE o.workspace_id = %s "
            "AND o.day >= %s AND o.day <= %s",
            [ctx.workspace_id, *days],
        )
    tz = ZoneInfo(ctx.time_zone)
    lo = dt.datetime.combine(first, dt.time(), tz).astimezone(dt.UTC)
    hi = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tz).astimezone(dt.UTC)
    return (
        "SELECT DISTINCT e.customer_id FROM tracking_event e WHERE e.workspace_id = %s AND e.name = %s "
        "AND e.occurred_at >= %s AND e.occurred_at < %s",
        [ctx.workspace_id, dependency.name, adapt(lo, "datetime"), adapt(hi, "datetime")],
    )


def _temp_ids(cursor, name: str) -> None:
    cursor.execute(f"DROP TABLE IF EXISTS {name}")
    cursor.execute(f"CREATE TEMP TABLE {name} (customer_id bigint PRIMARY KEY)")


def _apply(
    segment: Segment, compiled: Compiled, now: dt.datetime, *, candidates: bool, diff: SegmentDiff, mark_moves: bool
) -> None:
    """Diff the rule's answer against open stays (limited to ``seg_cand`` when ``candidates``), set-based."""
    pg = connection.vendor == "postgresql"
    only = " AND c.id IN (SELECT customer_id FROM seg_cand)" if candidates else ""
    at = adapt(now, "datetime")
    with connection.cursor() as cursor:
        for name in ("seg_new", "seg_enter", "seg_exit"):
            _temp_ids(cursor, name)
        select, params = compiled.select(segment.workspace_id, extra=only)
        cursor.execute(f"INSERT INTO seg_new (customer_id) {select}", params)
        if pg and not candidates:
            cursor.execute("ANALYZE seg_new")
        if candidates:
            # Driven from the (small) candidate table, one probe of the open-stay index each,
            # rather than a scan of every open stay of the segment.
            cursor.execute(
                "INSERT INTO seg_exit (customer_id) SELECT k.customer_id FROM seg_cand k WHERE EXISTS "
                "(SELECT 1 FROM segments_segmentmembership m WHERE m.segment_id = %s AND m.exited_at IS NULL "
                "AND m.customer_id = k.customer_id) "
                "AND NOT EXISTS (SELECT 1 FROM seg_new n WHERE n.customer_id = k.customer_id)",
                [segment.pk],
            )
        else:
            cursor.execute(
                "INSERT INTO seg_exit (customer_id) SELECT m.customer_id FROM segments_segmentmembership m "
                "WHERE m.segment_id = %s AND m.exited_at IS NULL "
                "AND NOT EXISTS (SELECT 1 FROM seg_new n WHERE n.customer_id = m.customer_id)",
                [segment.pk],
            )
        diff.exited = cursor.rowcount
        cursor.execute(
            "INSERT INTO seg_enter (customer_id) SELECT n.customer_id FROM seg_new n WHERE NOT EXISTS "
            "(SELECT 1 FROM segments_segmentmembership m WHERE m.segment_id = %s AND m.exited_at IS NULL "
            "AND m.customer_id = n.customer_id)",
            [segment.pk],
        )
        diff.entered = cursor.rowcount
        if diff.exited:
            cursor.execute(
                "UPDATE segments_segmentmembership SET exited_at = %s WHERE segment_id = %s AND exited_at IS NULL "
                "AND customer_id IN (SELECT customer_id FROM seg_exit)",
                [at, segment.pk],
            )
        if diff.entered:
            cursor.execute(
                "INSERT INTO segments_segmentmembership (workspace_id, segment_id, customer_id, entered_at) "
                "SELECT %s, %s, customer_id, %s FROM seg_enter",
                [segment.workspace_id, segment.pk, at],
            )
            # Webhook subscribers hear of each new stay; set-based, one lookup when there are none.
            emit_segment_entered(segment.workspace_id, segment.pk, segment.name, now)
        properties = json.dumps({"segment_id": segment.pk, "segment": segment.name}, ensure_ascii=False)
        for table, event_name, count in (
            ("seg_enter", "segment_entered", diff.entered),
            ("seg_exit", "segment_exited", diff.exited),
        ):
            if not count:
                continue
            cursor.execute(
                "INSERT INTO tracking_event (workspace_id, customer_id, name, properties, occurred_at, received_at, source) "
                f"SELECT %s, customer_id, %s, %s{'::jsonb' if pg else ''}, %s, %s, 'segment' FROM {table}",
                [segment.workspace_id, event_name, properties, at, at],
            )
        tagged = _apply_tag_rules(cursor, segment, at, diff)
        if (tagged or mark_moves) and (diff.entered or diff.exited):
            mark_entered_and_exited(cursor, segment.workspace_id)
        for name in ("seg_new", "seg_enter", "seg_exit", "seg_cand"):
            cursor.execute(f"DROP TABLE IF EXISTS {name}")


def _apply_tag_rules(cursor, segment: Segment, at: Any, diff: SegmentDiff) -> bool:
    """Add / remove the segment's rule tags for who entered / exited; True if it has any."""
    tag_ids = list(SegmentTagRule.objects.filter(segment=segment, active=True).values_list("tag_id", flat=True))
    if not tag_ids or not (diff.entered or diff.exited):
        return bool(tag_ids)
    for tag_id in tag_ids:
        cursor.execute(
            "INSERT INTO tags_customertag (workspace_id, customer_id, tag_id, source, source_ref, created_at) "
            "SELECT %s, customer_id, %s, %s, %s, %s FROM seg_enter WHERE 1 = 1 ON CONFLICT DO NOTHING",
            [segment.workspace_id, tag_id, TagSource.RULE, f"segment:{segment.pk}", at],
        )
        # Only the tags this rule added: a hand-set tag, or another rule's, stays.
        cursor.execute(
            "DELETE FROM tags_customertag WHERE tag_id = %s AND source = %s AND source_ref = %s "
            "AND customer_id IN (SELECT customer_id FROM seg_exit)",
            [tag_id, TagSource.RULE, f"segment:{segment.pk}"],
        )
    return True


def mark_entered_and_exited(cursor, workspace_id: int) -> None:
    """Their tags or segment events changed: other segments look at them on the next refresh."""
    cursor.execute(
        "INSERT INTO customers_customerchange (customer_id, workspace_id) SELECT customer_id, %s FROM "
        f"(SELECT customer_id FROM seg_enter UNION SELECT customer_id FROM seg_exit) t WHERE 1 = 1 {MARK_CONFLICT}",
        [workspace_id],
    )


def compile_for(
    workspace: Workspace, rule: r.Rule, *, now: dt.datetime | None = None, rules: dict[int, r.Rule] | None = None
) -> Compiled:
    try:
        return compile_rule(rule, context_for(workspace, now or clock.now(), rules))
    except (CompileError, OverflowError, ValueError) as exc:
        raise InvalidInput(f"this rule cannot be evaluated: {exc}", field="match") from None
