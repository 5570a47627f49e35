"""Initial import and periodic reconciliation of WeCom data into siyu.

Changes made through the WeCom API fire no callbacks (WeCom doc 96361), callbacks get lost, and
a new workspace starts with nothing: ``reconcile`` reads everything WeCom holds and fixes what
siyu has wrong, in this order (later steps need the earlier ones):

1. staff: ``get_follow_user_list`` -> a ``Staff`` per member (new ones at headquarters); active
   staff no longer in the list are reported, never deleted;
2. corp tags, both directions: ``get_corp_tag_list`` -> siyu ``TagGroup`` / ``Tag`` with their
   ``wecom_*_id``; then every siyu tag without an id in a linked group (one with a
   ``wecom_group_id``: that link is what marks a group for sync) -> ``add_corp_tag``. WeCom is
   the master of linked tags: a linked tag WeCom no longer has is deleted in siyu; a linked
   group WeCom no longer has is unlinked (its siyu-only tags stay);
3. external contacts: ``batch/get_by_user`` for ≤100 members at a time (limit 100, cursor) ->
   per chunk, in one transaction: identities (external_userid, unionid) and new customers
   through OneID, names and owners where missing, ``StaffRelation`` rows created, updated,
   re-activated, or marked deleted when WeCom no longer lists them;
4. customer tags from the follow info (``tag_id[]``), mapped by ``wecom_tag_id``: added, and
   — only after a complete contact pass — removed where WeCom no longer has them (source
   ``wecom`` rows only: tags set in siyu are never removed here);
5. customer groups: ``groupchat/list`` (per ≤100 owners once WeCom answers 81017) and
   ``groupchat/get`` per group -> ``ExternalGroup`` and members (joined, changed, left).

Every write is set-based (``siyu.core.sql``), never a per-customer ORM loop. A 45009 (or a
network failure) stops the run cleanly: what was fetched completely is written, deletions that
need complete data are skipped, and the ``SyncRun`` says ``partial``; the next run completes.
The run counts its API calls against the fewest the API allows for the same data.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction

from siyu.core import clock
from siyu.core.errors import InvalidInput, NotFound
from siyu.core.sql import ColumnType, id_list_condition, insert_rows, update_from_values
from siyu.customers.models import StaffRelation
from siyu.customers.rules import IdentityKey, normalize_identity
from siyu.customers.services import Entry, lookup_identities, mark_changed, place_entries
from siyu.org.models import OrgUnit, Staff, Workspace
from siyu.org.services import get_workspace
from siyu.tags.models import Tag
from siyu.tracking.services import record_system_events
from siyu.wecom.client import ConfigError, NetworkError, RateLimited, WecomClient, WecomError
from siyu.wecom.models import ApiCallLog
from siyu.wecom.sync_groups import apply_groups
from siyu.wecom.sync_models import SyncRun
from siyu.wecom.sync_tags import apply_customer_tags, pull_corp_tags, push_corp_tags

USERS_PER_CALL = 100  # batch/get_by_user userid_list, groupchat/list owner_filter
CONTACTS_PER_PAGE = 100  # batch/get_by_user limit (max)
GROUPS_PER_PAGE = 1000  # groupchat/list limit (max)
OWNER_FILTER_REQUIRED = 81017
STALE_RUN = dt.timedelta(hours=1)  # a "running" run older than this is a crashed one
GENDERS = {1: "m", 2: "f"}

# What a run changed in siyu; their sum is the run's ``fixes``.
FIX_KEYS = (
    "staff_created",
    "customers_created",
    "customers_updated",
    "relations_created",
    "relations_updated",
    "relations_reactivated",
    "relations_deleted",
    "tags_added",
    "tags_removed",
    "tag_groups_created",
    "tag_groups_updated",
    "tag_groups_unlinked",
    "corp_tags_created",
    "corp_tags_updated",
    "corp_tags_deleted",
    "corp_tags_pushed",
    "groups_created",
    "groups_updated",
    "groups_dismissed",
    "members_joined",
    "members_updated",
    "members_left",
)
LABELS = {
    "staff_created": "新建员工",
    "customers_created": "新建客户",
    "customers_updated": "补全客户资料",
    "relations_created": "新建好友关系",
    "relations_updated": "更新好友关系",
    "relations_reactivated": "恢复好友关系",
    "relations_deleted": "标记已删除好友关系",
    "tags_added": "客户打标签",
    "tags_removed": "客户移除标签",
    "tag_groups_created": "新建标签组",
    "tag_groups_updated": "更新标签组",
    "tag_groups_unlinked": "解除关联标签组",
    "corp_tags_created": "新建企业标签",
    "corp_tags_updated": "更新企业标签",
    "corp_tags_deleted": "删除企业标签",
    "corp_tags_pushed": "推送到企微的标签",
    "groups_created": "新建客户群",
    "groups_updated": "更新客户群",
    "groups_dismissed": "标记已解散客户群",
    "members_joined": "入群成员",
    "members_updated": "更新群成员",
    "members_left": "标记退群成员",
}


@dataclass
class SyncReport:
    """What one run found and fixed; ``counts`` also holds what it merely saw (``follow_users``,
    ``contacts``, ``relations_seen``, ``groups_seen``, ``members_seen``, ``unknown_tag_ids``)."""

    run_id: int | None = None
    status: str = SyncRun.Status.RUNNING
    counts: Counter[str] = field(default_factory=Counter)
    api_calls: int = 0
    api_calls_min: int = 0
    token_calls: int = 0
    duration_s: float = 0.0
    staff_not_following: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def fixes(self) -> int:
        return sum(self.counts[key] for key in FIX_KEYS)

    def lines(self) -> list[str]:
        """The report for the operator, Chinese first."""
        status = dict(SyncRun.Status.choices).get(self.status, self.status)
        out = [f"同步{status} / sync {self.status}: {self.duration_s:.1f} s"]
        if self.error:
            out.append(f"  错误 / error: {self.error}")
        fixed = [f"  {LABELS[key]} / {key}: {self.counts[key]}" for key in FIX_KEYS if self.counts[key]]
        out.extend(fixed or ["  无需修复 / nothing to fix"])
        seen = ("follow_users", "contacts", "relations_seen", "groups_seen", "members_seen")
        out.append("  企微数据 / seen in WeCom: " + ", ".join(f"{key} {self.counts[key]}" for key in seen))
        if self.counts["unknown_tag_ids"]:
            out.append(f"  未知标签 ID / unknown tag ids: {self.counts['unknown_tag_ids']}")
        if self.staff_not_following:
            names = ", ".join(self.staff_not_following[:20])
            out.append(f"  不在客户联系成员中的员工 / staff not in the follow list: {names}")
        out.append(f"  API 调用 / API calls: {self.api_calls}（最少 / minimum {self.api_calls_min}）")
        return out


class _CallCounter:
    """Counts the client's HTTP calls (through its recorder), passing each on to the old one.

    With ``log_workspace`` (the client is the workspace's own, from ``client_for``) the calls
    go to ``ApiCallLog`` in batches instead of the client's one-row-one-commit recorder: a run
    makes a thousand calls, and a commit per call cost more than the rest of the run's writes.
    """

    FLUSH_EVERY = 200

    def __init__(self, client: WecomClient, *, log_workspace: int | None = None) -> None:
        self.client = client
        self.previous = None if log_workspace else client.recorder
        self.original = client.recorder
        self.log_workspace = log_workspace
        self.pending: list[ApiCallLog] = []
        self.calls = 0
        self.tokens = 0
        client.recorder = self

    def __call__(self, api: str, errcode: int | None, errmsg: str, duration_ms: int) -> None:
        if api == "gettoken":
            self.tokens += 1
        else:
            self.calls += 1
        if self.previous is not None:
            self.previous(api, errcode, errmsg, duration_ms)
        if self.log_workspace is not None:
            self.pending.append(
                ApiCallLog(
                    workspace_id=self.log_workspace,
                    api=api[:100],
                    errcode=errcode,
                    errmsg=errmsg[:200],
                    duration_ms=duration_ms,
                    at=clock.now(),
                )
            )
            if len(self.pending) >= self.FLUSH_EVERY:
                self.flush()

    def flush(self) -> None:
        rows, self.pending = self.pending, []
        ApiCallLog.objects.bulk_create(rows)

    def detach(self) -> None:
        self.flush()
        self.client.recorder = self.original


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _pages(rows: int, per_page: int) -> int:
    """Calls a cursor-paged list needs: at least one, even when it is empty."""
    return max(1, math.ceil(rows / per_page))


def contact_calls_min(users: int, relations: int) -> int:
    """The fewest ``batch/get_by_user`` calls for ``relations`` follow rows of ``users`` members:
    every call names ≤100 members and returns ≤100 rows."""
    if users == 0:
        return 0
    return max(math.ceil(users / USERS_PER_CALL), math.ceil(relations / CONTACTS_PER_PAGE))


def _timestamp(seconds: Any) -> dt.datetime | None:
    try:
        value = int(seconds)
    except (TypeError, ValueError):
        return None
    return dt.datetime.fromtimestamp(value, tz=dt.UTC) if value > 0 else None


def _epoch(value: dt.datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


def _start_run(workspace: Workspace, now: dt.datetime) -> SyncRun:
    with transaction.atomic():
        # The workspace row serialises starts, so two workers cannot both begin a run.
        Workspace.objects.select_for_update().filter(pk=workspace.pk).first()
        running = SyncRun.objects.filter(
            workspace=workspace, status=SyncRun.Status.RUNNING, started_at__gt=now - STALE_RUN
        ).exists()
        if running:
            raise InvalidInput("该工作区已有企微同步在进行中，请稍后再试。/ A WeCom sync of this workspace is running.")
        return SyncRun.objects.create(workspace=workspace, started_at=now)


def reconcile(workspace: Workspace, *, client: WecomClient | None = None, now: dt.datetime | None = None) -> SyncReport:
    """Bring siyu in line with what WeCom holds for ``workspace`` and report what was fixed.

    Never raises for WeCom's answers: a 45009 or a network failure ends the run as ``partial``,
    a configuration error (bad secret, no permission, untrusted IP) as ``failed``, with the
    operator's message in ``error``. Anything else (a bug, the database) marks the run failed
    and propagates.
    """
    now = now or clock.now()
    started = time.perf_counter()
    run = _start_run(workspace, now)
    report = SyncReport(run_id=run.pk)
    owned = client is None
    api = client or _client_for(workspace)
    counter = _CallCounter(api, log_workspace=workspace.pk if owned else None)
    reconciler = _Reconciler(workspace, api, now, report)
    try:
        reconciler.run()
        report.status = SyncRun.Status.OK
    except ConfigError as exc:
        report.status, report.error = SyncRun.Status.FAILED, exc.message_zh
    except RateLimited as exc:
        report.status = SyncRun.Status.PARTIAL
        report.error = f"企业微信限流（{exc.api}），{int(exc.retry_after)} 秒后可再次同步。"
    except NetworkError as exc:
        report.status, report.error = SyncRun.Status.PARTIAL, f"无法连接企业微信（{exc.api}）：{exc.errmsg}"
    except WecomError as exc:
        report.status, report.error = SyncRun.Status.FAILED, f"企业微信返回错误码 {exc.errcode}（{exc.api}）"
    except BaseException as exc:
        report.status, report.error = SyncRun.Status.FAILED, f"{type(exc).__name__}: {exc}"
        raise
    finally:
        counter.detach()
        if owned:
            api.close()
        report.api_calls, report.token_calls = counter.calls, counter.tokens
        report.api_calls_min = reconciler.minimum
        report.duration_s = time.perf_counter() - started
        _finish_run(run, report)
    return report


def _client_for(workspace: Workspace) -> WecomClient:
    from siyu.wecom.services import client_for

    return client_for(workspace)


def _finish_run(run: SyncRun, report: SyncReport) -> None:
    counts = {key: value for key, value in report.counts.items() if value}
    if report.staff_not_following:
        counts["staff_not_following"] = len(report.staff_not_following)
    SyncRun.objects.filter(pk=run.pk).update(
        status=report.status,
        finished_at=clock.now(),
        counts={**counts, "token_calls": report.token_calls},
        fixes=report.fixes,
        api_calls=report.api_calls,
        api_calls_min=report.api_calls_min,
        duration_ms=int(report.duration_s * 1000),
        error=report.error[:500],
    )


def reconcile_workspace(slug: str) -> SyncReport:
    """``siyu wecom sync --workspace SLUG`` and the worker's periodic job."""
    return reconcile(get_workspace(slug))


def latest_runs(workspace: Workspace, limit: int = 20) -> list[SyncRun]:
    return list(SyncRun.objects.filter(workspace=workspace).order_by("-started_at", "-pk")[:limit])


# ---- the run ---------------------------------------------------------------------------------

RELATION_INSERT: dict[str, ColumnType] = {
    "workspace_id": "int",
    "customer_id": "int",
    "staff_id": "int",
    "added_at": "datetime",
    "add_way": "int",
    "state": "text",
    "remark": "text",
    "description": "text",
    "status": "text",
    "status_changed_at": "datetime",
}
RELATION_UPDATE: dict[str, ColumnType] = {
    "id": "int",
    "added_at": "datetime",
    "add_way": "int",
    "state": "text",
    "remark": "text",
    "description": "text",
    "status": "text",
    "status_changed_at": "datetime",
}


@dataclass
class _Follow:
    """One row of ``batch/get_by_user``: a member's follow info of one external contact."""

    external_userid: str
    userid: str
    added_at: dt.datetime
    add_way: int
    state: str
    remark: str
    description: str
    tag_ids: list[str]


class _Reconciler:
    def __init__(self, workspace: Workspace, client: WecomClient, now: dt.datetime, report: SyncReport) -> None:
        self.workspace = workspace
        self.ws = workspace.pk
        self.client = client
        self.now = now
        self.report = report
        self.counts = report.counts
        self.minimum = 0
        self.follow_users: list[str] = []
        self.staff_ids: dict[str, int] = {}  # wecom userid -> staff id (every staff member)
        self.tag_of: dict[str, int] = {}  # wecom tag id -> siyu tag id
        self.wanted_tags: dict[int, set[int]] = defaultdict(set)  # customer -> siyu tag ids per WeCom
        self.unknown_tags: set[str] = set()
        self.seen_contacts: set[str] = set()
        # The first run of a workspace imports history: it does not put 100k "added" events
        # on timelines. Later runs record what they find changed.
        self.initial = not SyncRun.objects.filter(
            workspace=workspace, status__in=[SyncRun.Status.OK, SyncRun.Status.PARTIAL]
        ).exists()

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.client.post(path, body, idempotent=True)

    def run(self) -> None:
        self.sync_staff()
        self.sync_corp_tags()
        try:
            self.sync_contacts()
        except (RateLimited, NetworkError):
            # What was fetched still gets its tags; removals wait for a complete pass.
            self.sync_customer_tags(complete=False)
            raise
        self.sync_customer_tags(complete=True)
        self.sync_groups()

    # -- 1. staff ------------------------------------------------------------------------------

    def sync_staff(self) -> None:
        self.minimum += 1
        self.follow_users = list(
            dict.fromkeys(self.client.get("externalcontact/get_follow_user_list").get("follow_user") or [])
        )
        self.counts["follow_users"] = len(self.follow_users)
        existing = {
            userid: (pk, status)
            for userid, pk, status in Staff.objects.filter(workspace_id=self.ws)
            .exclude(wecom_userid=None)
            .values_list("wecom_userid", "pk", "status")
        }
        missing = [u for u in self.follow_users if u not in existing]
        if missing:
            hq = OrgUnit.objects.filter(workspace_id=self.ws, kind=OrgUnit.Kind.HQ).order_by("pk").first()
            if hq is None:
                raise NotFound(f"workspace {self.workspace.slug} has no headquarters unit")
            # Named by userid until someone edits them: the contact-book API needs another secret.
            Staff.objects.bulk_create(
                [Staff(workspace_id=self.ws, org_unit=hq, name=u[:100], wecom_userid=u) for u in missing],
                ignore_conflicts=True,
            )
            self.counts["staff_created"] += len(missing)
        following = set(self.follow_users)
        self.report.staff_not_following = sorted(
            u for u, (_, status) in existing.items() if u not in following and status == Staff.Status.ACTIVE
        )
        self.staff_ids = dict(
            Staff.objects.filter(workspace_id=self.ws).exclude(wecom_userid=None).values_list("wecom_userid", "pk")
        )

    # -- 2. corp tags, both directions ----------------------------------------------------------

    def sync_corp_tags(self) -> None:
        self.minimum += 1
        answer = self.call("externalcontact/get_corp_tag_list", {})
        groups = [g for g in answer.get("tag_group") or [] if not g.get("deleted")]
        with transaction.atomic():
            self.counts.update(pull_corp_tags(self.ws, groups))
        pushes, counts, error = push_corp_tags(self.client, self.ws, {str(g["group_id"]) for g in groups})
        self.minimum += pushes
        self.counts.update(counts)
        self.report.error = error
        self.tag_of = dict(
            Tag.objects.filter(workspace_id=self.ws).exclude(wecom_tag_id="").values_list("wecom_tag_id", "pk")
        )

    # -- 3. external contacts -------------------------------------------------------------------

    def sync_contacts(self) -> None:
        """Every follow member's contacts, ≤100 members per chunk, each chunk written once it
        is complete (a chunk cut short by a 45009 is not written: its deletions would be wrong)."""
        users = [u for u in self.follow_users if u in self.staff_ids]
        relations = 0
        try:
            for chunk in _chunks(users, USERS_PER_CALL):
                follows, contacts = self._fetch_contacts(chunk)
                relations += len(follows)
                with transaction.atomic():
                    self._apply_contacts(chunk, follows, contacts)
        finally:
            # Partial or not, the minimum covers what was seen.
            self.minimum += contact_calls_min(len(users), relations)
            self.counts["relations_seen"] += relations

    def _fetch_contacts(self, users: list[str]) -> tuple[list[_Follow], dict[str, dict[str, Any]]]:
        follows: list[_Follow] = []
        contacts: dict[str, dict[str, Any]] = {}
        cursor = ""
        while True:
            body: dict[str, Any] = {"userid_list": users, "limit": CONTACTS_PER_PAGE}
            if cursor:
                body["cursor"] = cursor
            answer = self.call("externalcontact/batch/get_by_user", body)
            for row in answer.get("external_contact_list") or []:
                contact, info = row.get("external_contact") or {}, row.get("follow_info") or {}
                ext, userid = str(contact.get("external_userid", "")), str(info.get("userid", ""))
                if not ext or userid not in self.staff_ids:
                    continue
                contacts[ext] = contact
                follows.append(
                    _Follow(
                        external_userid=ext,
                        userid=userid,
                        added_at=_timestamp(info.get("createtime")) or self.now,
                        add_way=int(info.get("add_way") or 0),
                        state=str(info.get("state") or "")[:64],
                        remark=str(info.get("remark") or "")[:100],
                        description=str(info.get("description") or "")[:200],
                        tag_ids=[str(t) for t in info.get("tag_id") or []],
                    )
                )
            cursor = str(answer.get("next_cursor") or "")
            if not cursor:
                return follows, contacts

    def _apply_contacts(self, users: list[str], follows: list[_Follow], contacts: dict[str, dict[str, Any]]) -> None:
        # A new customer's owner is the member who added them first (as friend_added does).
        first: dict[str, _Follow] = {}
        for follow in follows:
            if follow.external_userid not in first or follow.added_at < first[follow.external_userid].added_at:
                first[follow.external_userid] = follow
        owners = {ext: self.staff_ids[f.userid] for ext, f in first.items()}
        self.seen_contacts.update(contacts)
        self.counts["contacts"] = len(self.seen_contacts)
        customer_of = self._place_contacts(contacts, owners)
        touched: set[int] = set()
        wanted: dict[tuple[int, int], _Follow] = {}
        for follow in follows:
            customer = customer_of.get(follow.external_userid)
            if customer is None:
                continue
            wanted.setdefault((self.staff_ids[follow.userid], customer), follow)
            for tid in follow.tag_ids:
                if tid in self.tag_of:
                    self.wanted_tags[customer].add(self.tag_of[tid])
                else:
                    self.unknown_tags.add(tid)
        self.counts["unknown_tag_ids"] = len(self.unknown_tags)
        touched |= self._apply_relations([self.staff_ids[u] for u in users], wanted)
        touched |= self._fill_profiles(contacts, customer_of, wanted)
        mark_changed(self.ws, touched)

    def _place_contacts(self, contacts: dict[str, dict[str, Any]], owners: dict[str, int]) -> dict[str, int]:
        """external_userid -> live customer id, linking identities and creating customers (OneID)."""
        keys_of: dict[str, list[IdentityKey]] = {}
        for ext, contact in contacts.items():
            try:
                keys = [normalize_identity("wecom_external_userid", ext)]
                if contact.get("unionid"):
                    keys.append(normalize_identity("wechat_unionid", contact["unionid"]))
            except InvalidInput:
                self.counts["invalid_contacts"] += 1
                continue
            keys_of[ext] = keys
        known = lookup_identities(self.ws, [k for keys in keys_of.values() for k in keys])
        entries: list[Entry] = []
        for index, (ext, keys) in enumerate(keys_of.items()):
            if all(k in known for k in keys):
                continue
            profile: dict[str, Any] = {}
            if not any(k in known for k in keys):
                contact = contacts[ext]
                profile = {
                    "name": str(contact.get("name") or "")[:100],
                    "source_channel": "wecom",
                    "owner_staff_id": owners.get(ext),
                }
                if contact.get("gender") in GENDERS:
                    profile["gender"] = GENDERS[contact["gender"]]
                self.counts["customers_created"] += 1
            else:
                self.counts["customers_updated"] += 1  # an identity linked to a known profile
            entries.append(Entry(index=index, keys=keys, profile=profile))
        placed = {}
        if entries:
            exts = list(keys_of)
            for entry, placement in zip(entries, place_entries(self.workspace, entries, source="wecom"), strict=True):
                placed[exts[entry.index]] = placement.customer_id
        return {ext: placed.get(ext) or known[keys[0]] for ext, keys in keys_of.items()}

    def _apply_relations(self, staff_ids: list[int], wanted: dict[tuple[int, int], _Follow]) -> set[int]:
        existing = {
            (staff, customer): (pk, status, added_at, add_way, state, remark, description)
            for pk, staff, customer, status, added_at, add_way, state, remark, description in (
                StaffRelation.objects.filter(workspace_id=self.ws, staff_id__in=staff_ids).values_list(
                    "pk", "staff_id", "customer_id", "status", "added_at", "add_way", "state", "remark", "description"
                )
            )
        }
        active = StaffRelation.Status.ACTIVE
        inserts, updates, events = [], [], []
        touched: set[int] = set()
        for (staff, customer), f in wanted.items():
            old = existing.get((staff, customer))
            if old is None:
                inserts.append(
                    (
                        self.ws,
                        customer,
                        staff,
                        f.added_at,
                        f.add_way,
                        f.state,
                        f.remark,
                        f.description,
                        active,
                        f.added_at,
                    )
                )
                events.append((customer, "wecom_friend_added", self._event(staff, f), f.added_at))
                continue
            pk, status, added_at, add_way, state, remark, description = old
            fields = (_epoch(f.added_at), f.add_way, f.state, f.remark, f.description)
            if status == active and fields == (_epoch(added_at), add_way, state, remark, description):
                continue
            changed_at = self.now if status != active else None
            updates.append((pk, f.added_at, f.add_way, f.state, f.remark, f.description, active, changed_at))
            touched.add(customer)
            if status != active:
                self.counts["relations_reactivated"] += 1
                events.append((customer, "wecom_friend_added", self._event(staff, f), f.added_at))
            else:
                self.counts["relations_updated"] += 1
        gone = [
            (pk, StaffRelation.Status.DELETED_BY_STAFF, self.now, staff, customer)
            for (staff, customer), (pk, status, *_rest) in existing.items()
            if status == active and (staff, customer) not in wanted
        ]
        insert_rows("customers_staffrelation", RELATION_INSERT, inserts, ignore_conflicts=True)
        update_from_values(
            "customers_staffrelation",
            RELATION_UPDATE,
            updates,
            assignments={
                **{c: f"v.{c}" for c in RELATION_UPDATE if c not in ("id", "status_changed_at")},
                "status_changed_at": "COALESCE(v.status_changed_at, {t}.status_changed_at)",
            },
        )
        # Gone from the member's list: WeCom drops a contact there when the member deletes it
        # (a customer deleting the member arrives as del_follow_user, which we would have seen).
        update_from_values(
            "customers_staffrelation",
            {"id": "int", "status": "text", "status_changed_at": "datetime"},
            [row[:3] for row in gone],
            where=f"{{t}}.status = '{active}'",
        )
        self.counts["relations_created"] += len(inserts)
        self.counts["relations_deleted"] += len(gone)
        for _pk, status, _at, staff, customer in gone:
            events.append(
                (customer, "wecom_friend_deleted", {"staff_id": staff, "by": status, "source": "sync"}, self.now)
            )
        if events and not self.initial:
            record_system_events(self.ws, events, source="wecom")
        return touched | {row[1] for row in inserts} | {row[4] for row in gone}

    def _event(self, staff: int, follow: _Follow) -> dict[str, Any]:
        return {"staff_id": staff, "userid": follow.userid, "state": follow.state, "source": "sync"}

    def _fill_profiles(
        self, contacts: dict[str, dict[str, Any]], customer_of: dict[str, int], wanted: dict[tuple[int, int], _Follow]
    ) -> set[int]:
        """Names and owners siyu does not have yet; what siyu has is never overwritten."""
        owner: dict[int, tuple[dt.datetime, int]] = {}
        for (staff, customer), follow in wanted.items():
            if customer not in owner or follow.added_at < owner[customer][0]:
                owner[customer] = (follow.added_at, staff)
        name_of = {customer_of[e]: str(c.get("name") or "")[:100] for e, c in contacts.items() if e in customer_of}
        ids = sorted(set(owner) | set(name_of))
        rows = []
        with connection.cursor() as cursor:
            for part in _chunks(ids, 5000):
                condition, params = id_list_condition("id", part)
                cursor.execute(f"SELECT id, name, owner_staff_id FROM customers_customer WHERE {condition}", params)
                for pk, name, owner_staff in cursor.fetchall():
                    new_name = name_of.get(pk) if not name and name_of.get(pk) else None
                    new_owner = owner[pk][1] if owner_staff is None and pk in owner else None
                    if new_name or new_owner:
                        rows.append((pk, new_name, new_owner, self.now))
        update_from_values(
            "customers_customer",
            {"id": "int", "name": "text", "owner_staff_id": "int", "updated_at": "datetime"},
            rows,
            assignments={
                "name": "COALESCE(v.name, {t}.name)",
                "owner_staff_id": "COALESCE({t}.owner_staff_id, v.owner_staff_id)",
                "updated_at": "v.updated_at",
            },
        )
        self.counts["customers_updated"] += len(rows)
        return {row[0] for row in rows}

    # -- 4. customer tags -------------------------------------------------------------------------

    def sync_customer_tags(self, *, complete: bool) -> None:
        counts = apply_customer_tags(
            self.ws, self.wanted_tags, set(self.tag_of.values()), now=self.now, complete=complete
        )
        self.counts.update(counts)

    # -- 5. customer groups ----------------------------------------------------------------------

    def sync_groups(self) -> None:
        listed, complete = {}, False
        details: dict[str, dict[str, Any]] = {}
        try:
            listed = self._list_groups()
            for chat_id in listed:
                answer = self.call("externalcontact/groupchat/get", {"chat_id": chat_id, "need_name": 1})
                details[chat_id] = answer.get("group_chat") or {}
            complete = True
        finally:
            self.minimum += len(listed)
            self.counts["groups_seen"] = len(listed)
            if details:
                with transaction.atomic():
                    self._apply_groups(listed, details, complete=complete)

    def _owner_filter_needed(self) -> bool:
        """WeCom answers 81017 without owner_filter past 1,000 visible members; remember it."""
        if len(self.follow_users) > GROUPS_PER_PAGE:
            return True
        last = SyncRun.objects.filter(workspace_id=self.ws).exclude(pk=self.report.run_id).order_by("-started_at")
        return bool((last.values_list("counts", flat=True).first() or {}).get("groupchat_owner_filter"))

    def _list_groups(self) -> dict[str, int]:
        if not self._owner_filter_needed():
            try:
                listed = self._list_group_pages(None)
                self.minimum += _pages(len(listed), GROUPS_PER_PAGE)
                return listed
            except WecomError as exc:
                if exc.errcode != OWNER_FILTER_REQUIRED:
                    raise
        # The failed probe is not part of the minimum: a run that knew would not have made it.
        self.counts["groupchat_owner_filter"] = 1
        listed = {}
        for owners in _chunks(self.follow_users, USERS_PER_CALL):
            listed.update(self._list_group_pages(owners))
        owners_calls = math.ceil(len(self.follow_users) / USERS_PER_CALL)
        self.minimum += max(owners_calls, math.ceil(len(listed) / GROUPS_PER_PAGE))
        return listed

    def _list_group_pages(self, owners: list[str] | None) -> dict[str, int]:
        listed: dict[str, int] = {}
        cursor = ""
        while True:
            body: dict[str, Any] = {"status_filter": 0, "limit": GROUPS_PER_PAGE}
            if owners is not None:
                body["owner_filter"] = {"userid_list": owners}
            if cursor:
                body["cursor"] = cursor
            answer = self.call("externalcontact/groupchat/list", body)
            for chat in answer.get("group_chat_list") or []:
                listed[str(chat["chat_id"])] = int(chat.get("status") or 0)
            cursor = str(answer.get("next_cursor") or "")
            if not cursor:
                return listed

    def _apply_groups(self, listed: dict[str, int], details: dict[str, dict[str, Any]], *, complete: bool) -> None:
        counts = apply_groups(self.ws, listed, details, self.staff_ids, now=self.now, complete=complete)
        self.counts.update(counts)
