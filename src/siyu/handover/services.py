"""Staff turnover (客户继承): preview, start and send, and the transfer_fail hook.

One home per state change:

- ``preview`` counts how many of the handover staff member's customers would move to whom, and
  which cannot (WeCom's two-transfers-in-90-days limit, a transfer already running, no
  external_userid), in SQL with a bounded sample of the blocked ones;
- ``start_handover`` writes the batch and its rows (one INSERT ... SELECT), then ``send_planned``
  asks WeCom in chunks of 100 per takeover staff member and records each customer's errcode
  (in the request for a few chunks, else in ``tasks.send_handover_task``);
- ``transfer_failed`` is what the WeCom callback calls for a ``transfer_fail`` event.

Results (transfer_result polling and what a done transfer moves) are in ``results``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q

from siyu.core import clock
from siyu.core.errors import InvalidInput, NotFound
from siyu.core.sql import adapt
from siyu.customers.models import Customer, Identity, IdentityType, StaffRelation
from siyu.handover import rules
from siyu.handover.models import HandoverBatch, HandoverTransfer, Kind
from siyu.org.models import Staff, Workspace
from siyu.org.services import audit
from siyu.wecom.client import ConfigError, NetworkError, RateLimited, WecomClient, WecomError

TRANSFER_API = {
    Kind.ON_JOB: "externalcontact/transfer_customer",
    Kind.RESIGNED: "externalcontact/resigned/transfer_customer",
}

PREVIEW_LIST = 200  # blocked customers listed by name in a preview (all are counted)
# transfer_customer calls a start makes before answering; more are sent by a background task.
INLINE_CHUNKS = 3


@dataclass(frozen=True)
class Blocked:
    customer_id: int
    name: str
    external_userid: str
    reason: str  # limit / in_progress / no_external_userid
    next_allowed_at: dt.datetime | None = None


@dataclass(frozen=True)
class Plan:
    """What starting this handover would do; nothing is written to make it. Counts only, and a
    bounded sample of the blocked customers: a staff member may have 20,000 customers."""

    kind: str
    handover_staff_id: int
    takeover_staff_ids: tuple[int, ...]
    transfer_success_msg: str
    movable: int
    blocked: tuple[Blocked, ...]  # the first PREVIEW_LIST, in customer order
    blocked_counts: dict[str, int] = field(default_factory=dict)

    @property
    def per_takeover(self) -> dict[int, int]:
        """Round robin in customer order (``rules.distribute``): the first ``movable % n``
        takeover staff get one more."""
        n = len(self.takeover_staff_ids)
        base, extra = divmod(self.movable, n) if n else (0, 0)
        return {t: base + (1 if i < extra else 0) for i, t in enumerate(self.takeover_staff_ids)}

    @property
    def total(self) -> int:
        return self.movable + sum(self.blocked_counts.values())


# ---- preview ---------------------------------------------------------------------------------


def _staff(workspace: Workspace, staff_id: int, field_name: str) -> Staff:
    staff = Staff.objects.filter(workspace=workspace, pk=staff_id).first()
    if staff is None:
        raise InvalidInput("员工不存在 / no such staff member", field=field_name)
    if not staff.wecom_userid:
        raise InvalidInput(f"{staff.name} 没有企业微信账号 / has no WeCom userid", field=field_name)
    return staff


def _check(
    workspace: Workspace, kind: str, handover_id: int, takeover_ids: list[int], message: str
) -> tuple[Staff, list[Staff]]:
    if kind not in Kind.values:
        raise InvalidInput("类型应为 on_job 或 resigned / kind is on_job or resigned", field="kind")
    handover = _staff(workspace, handover_id, "handover_staff_id")
    if kind == Kind.ON_JOB and handover.status == Staff.Status.LEFT:
        raise InvalidInput(
            "该员工已离职，请使用离职继承 / this staff member has left: use a resigned handover", field="kind"
        )
    ids = list(dict.fromkeys(takeover_ids))
    if not ids:
        raise InvalidInput("请选择接替员工 / choose at least one takeover staff member", field="takeover_staff_ids")
    if len(ids) > rules.MAX_TAKEOVERS:
        raise InvalidInput(
            f"接替员工最多 {rules.MAX_TAKEOVERS} 人 / at most {rules.MAX_TAKEOVERS}", field="takeover_staff_ids"
        )
    if handover.pk in ids:
        raise InvalidInput("接替员工不能是原跟进员工 / the takeover cannot be the handover", field="takeover_staff_ids")
    takeovers = [_staff(workspace, i, "takeover_staff_ids") for i in ids]
    for staff in takeovers:
        if staff.status != Staff.Status.ACTIVE:
            raise InvalidInput(f"{staff.name} 已离职 / has left", field="takeover_staff_ids")
    if len(message) > rules.MESSAGE_MAX:
        raise InvalidInput(
            f"转接消息最多 {rules.MESSAGE_MAX} 字 / at most {rules.MESSAGE_MAX} characters",
            field="transfer_success_msg",
        )
    if message and kind == Kind.RESIGNED:
        raise InvalidInput(
            "离职继承不会给客户发消息 / a resigned handover sends no message", field="transfer_success_msg"
        )
    return handover, takeovers


def _quoted(values: tuple[str, ...]) -> str:
    """Status constants from ``rules`` as SQL literals (code constants, never input)."""
    return ", ".join(f"'{v}'" for v in values)


def _flagged(workspace: Workspace, kind: str, handover: Staff, now: dt.datetime) -> tuple[str, list[Any]]:
    """SELECT customer_id, name, ext, reason: the handover staff member's active, unmerged
    customers, their first WeCom external_userid, and why each cannot move ('' if it can):
    no external_userid, a transfer of theirs already running, or (on-job) WeCom's limit of two
    transfers in 90 days, counted in SQL. Portable SQL for SQLite and PostgreSQL."""
    transfer = HandoverTransfer._meta.db_table
    limit = ""
    params: list[Any] = [workspace.pk, handover.pk]
    if kind == Kind.ON_JOB:
        limit = (
            f"WHEN (SELECT COUNT(*) FROM {transfer} t WHERE t.workspace_id = %s AND t.kind = %s"
            f" AND t.customer_id = c.customer_id AND t.status IN ({_quoted(rules.COUNTED)})"
            " AND t.requested_at > %s) >= %s THEN 'limit' "
        )
        params += [workspace.pk, Kind.ON_JOB, adapt(now - rules.LIMIT_WINDOW, "datetime"), rules.TRANSFER_LIMIT]
    params += [workspace.pk, IdentityType.WECOM_EXTERNAL_USERID, workspace.pk, handover.pk]
    params.append(StaffRelation.Status.ACTIVE)
    sql = (
        "SELECT c.customer_id, c.name, c.ext, CASE"
        " WHEN c.ext IS NULL OR c.ext = '' THEN 'no_external_userid'"
        f" WHEN EXISTS (SELECT 1 FROM {transfer} t WHERE t.workspace_id = %s AND t.handover_staff_id = %s"
        f" AND t.customer_id = c.customer_id AND t.status IN ({_quoted(rules.PENDING)})) THEN 'in_progress' "
        f"{limit}ELSE '' END AS reason FROM ("
        " SELECT r.customer_id, cu.name,"
        f" (SELECT i.value FROM {Identity._meta.db_table} i WHERE i.workspace_id = %s"
        " AND i.customer_id = r.customer_id AND i.type = %s ORDER BY i.id LIMIT 1) AS ext"
        f" FROM {StaffRelation._meta.db_table} r JOIN {Customer._meta.db_table} cu ON cu.id = r.customer_id"
        " WHERE r.workspace_id = %s AND r.staff_id = %s AND r.status = %s AND cu.merged_into_id IS NULL"
        ") c"
    )
    return sql, params


def preview(
    workspace: Workspace,
    *,
    kind: str,
    handover_staff_id: int,
    takeover_staff_ids: list[int],
    transfer_success_msg: str = "",
    now: dt.datetime | None = None,
) -> Plan:
    """How many of the handover staff member's customers with an active relation would move
    (shared evenly among the takeover staff), and who cannot move now and why. Set-based: an
    aggregate and a bounded sample, however many customers."""
    now = now or clock.now()
    message = (transfer_success_msg or "").strip()
    handover, takeovers = _check(workspace, kind, handover_staff_id, takeover_staff_ids, message)
    flagged, params = _flagged(workspace, kind, handover, now)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT f.reason, COUNT(*) FROM ({flagged}) f GROUP BY f.reason", params)
        counts = {reason: n for reason, n in cursor.fetchall()}
        cursor.execute(
            f"SELECT f.customer_id, f.name, f.ext, f.reason FROM ({flagged}) f WHERE f.reason <> ''"
            " ORDER BY f.customer_id LIMIT %s",
            [*params, PREVIEW_LIST],
        )
        sample = cursor.fetchall()
    limited = [cid for cid, _name, _ext, reason in sample if reason == "limit"]
    recent: dict[int, list[dt.datetime]] = defaultdict(list)
    if limited:  # at most PREVIEW_LIST customers: when each may move again
        rows = HandoverTransfer.objects.filter(
            workspace=workspace,
            kind=Kind.ON_JOB,
            status__in=rules.COUNTED,
            requested_at__gt=now - rules.LIMIT_WINDOW,
            customer_id__in=limited,
        ).values_list("customer_id", "requested_at")
        for customer_id, requested_at in rows:
            recent[customer_id].append(requested_at)
    blocked = tuple(
        Blocked(
            cid,
            name,
            ext or "",
            reason,
            rules.next_allowed_at(recent[cid], now) if reason == "limit" else None,
        )
        for cid, name, ext, reason in sample
    )
    movable = counts.pop("", 0)
    return Plan(
        kind=kind,
        handover_staff_id=handover.pk,
        takeover_staff_ids=tuple(t.pk for t in takeovers),
        transfer_success_msg=message,
        movable=movable,
        blocked=blocked,
        blocked_counts=counts,
    )


# ---- start and send --------------------------------------------------------------------------


def start_handover(
    workspace: Workspace,
    *,
    kind: str,
    handover_staff_id: int,
    takeover_staff_ids: list[int],
    transfer_success_msg: str = "",
    user: Any = None,
    api_key: Any = None,
    client: WecomClient | None = None,
    background: bool = True,
) -> HandoverBatch:
    """Start a handover: write the batch and one row per customer (planned, or blocked by the
    90-day limit), mark a resigned staff member as left, audit, then send to WeCom.

    The rows are committed before any WeCom call, so a crash mid-send leaves planned rows that
    the poll job sends later (see ``send_planned``). WeCom must be configured first. Up to
    ``INLINE_CHUNKS`` calls are sent at once, so a small handover answers with its errcodes;
    a larger one (up to 200 calls) is queued as ``send_handover_task`` so a web request never
    waits for it, unless ``background`` is off (the CLI) or a ``client`` is given.
    """
    from siyu.wecom.models import WecomApp

    if client is None and not WecomApp.objects.filter(workspace=workspace).exists():
        raise NotFound("企业微信尚未配置 / WeCom is not configured: run siyu wecom configure")
    now = clock.now()
    plan = preview(
        workspace,
        kind=kind,
        handover_staff_id=handover_staff_id,
        takeover_staff_ids=takeover_staff_ids,
        transfer_success_msg=transfer_success_msg,
        now=now,
    )
    if not plan.movable:
        raise InvalidInput("没有可转接的客户 / no customer can be transferred", field="handover_staff_id")
    try:
        with transaction.atomic():
            batch = _create_batch(workspace, plan, user, now)
    except IntegrityError:
        raise InvalidInput(
            "这些客户的转接已在进行中 / a handover of these customers is already running", field="handover_staff_id"
        ) from None
    audit(
        workspace=workspace,
        action="handover.start",
        target=f"handover:{batch.pk}",
        user=user,
        api_key=api_key,
        details={
            "kind": kind,
            "handover": plan.handover_staff_id,
            "takeover": list(plan.takeover_staff_ids),
            "customers": plan.movable,
        },
    )
    calls = sum(-(-n // rules.CHUNK) for n in plan.per_takeover.values())
    if client is not None:
        send_planned(workspace, batch.pk, client)
    elif background and calls > INLINE_CHUNKS:
        from siyu.handover.tasks import send_handover_task

        send_handover_task.enqueue(workspace.pk, batch.pk)
    else:
        from siyu.wecom.services import client_for

        with client_for(workspace) as own:
            send_planned(workspace, batch.pk, own)
    batch.refresh_from_db()
    return batch


def _create_batch(workspace: Workspace, plan: Plan, user: Any, now: dt.datetime) -> HandoverBatch:
    """The batch and, in one INSERT ... SELECT, a planned row per movable customer (takeover by
    ``ROW_NUMBER() % n`` in customer order, as the preview counted) and a blocked_limit row per
    customer WeCom's 90-day limit holds back (the record of why it did not move)."""
    batch = HandoverBatch.objects.create(
        workspace=workspace,
        kind=plan.kind,
        handover_staff_id=plan.handover_staff_id,
        transfer_success_msg=plan.transfer_success_msg,
        created_by=user if getattr(user, "pk", None) else None,
        created_at=now,
        updated_at=now,
    )
    batch.takeover_staff.set(plan.takeover_staff_ids)
    handover = Staff.objects.get(pk=plan.handover_staff_id)
    flagged, params = _flagged(workspace, plan.kind, handover, now)
    takeovers = plan.takeover_staff_ids
    pick = " ".join(f"WHEN {n} THEN {int(t)}" for n, t in enumerate(takeovers))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {HandoverTransfer._meta.db_table} (workspace_id, batch_id, kind, customer_id,"
            " external_userid, handover_staff_id, takeover_staff_id, status, finished_at, claim)"
            " SELECT %s, %s, %s, f.customer_id, f.ext, %s,"
            " CASE WHEN f.reason = '' THEN CASE (ROW_NUMBER() OVER (PARTITION BY f.reason ORDER BY f.customer_id) - 1)"
            f" %% {len(takeovers)} {pick} END END,"
            " CASE WHEN f.reason = '' THEN %s ELSE %s END,"
            " CASE WHEN f.reason = '' THEN NULL ELSE %s END, ''"
            f" FROM ({flagged}) f WHERE f.reason IN ('', 'limit')",
            [
                workspace.pk,
                batch.pk,
                plan.kind,
                plan.handover_staff_id,
                rules.PLANNED,
                rules.BLOCKED_LIMIT,
                adapt(now, "datetime"),
                *params,
            ],
        )
    if plan.kind == Kind.RESIGNED:
        Staff.objects.filter(pk=plan.handover_staff_id).update(status=Staff.Status.LEFT)
    _refresh_batches([batch.pk])
    return batch


def _claim_chunk(batch_id: int, takeover_id: int, now: dt.datetime) -> tuple[str, list[str]]:
    """Claim up to 100 planned rows of one takeover (free, or whose sender's lease ran out)."""
    free = Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - rules.LEASE)
    planned = HandoverTransfer.objects.filter(batch_id=batch_id, takeover_staff_id=takeover_id, status=rules.PLANNED)
    ids = list(planned.filter(free).order_by("pk").values_list("pk", flat=True)[: rules.CHUNK])
    if not ids:
        return "", []
    token = uuid.uuid4().hex
    # Another sender may have claimed some of these between the read and this update: the
    # condition is checked again by the UPDATE, and only rows carrying our token are sent.
    planned.filter(free, pk__in=ids).update(claim=token, claimed_at=now)
    externals = list(
        HandoverTransfer.objects.filter(batch_id=batch_id, claim=token, status=rules.PLANNED)
        .order_by("pk")
        .values_list("external_userid", flat=True)
    )
    return token, externals


def send_planned(workspace: Workspace, batch_id: int, client: WecomClient) -> int:
    """Send the batch's planned rows to WeCom, 100 per call per takeover staff member, and
    record each customer's errcode. Returns how many calls were made.

    A rate limit, a network failure or a configuration error stops the batch with
    ``last_error`` set and the chunk released: the poll job sends it again. Another WeCom
    error for the whole call (e.g. 40097, the member has not left in WeCom) fails that chunk.
    """
    batch = HandoverBatch.objects.select_related("handover_staff").get(pk=batch_id, workspace=workspace)
    takeovers = dict(
        Staff.objects.filter(pk__in=batch.transfers.filter(status=rules.PLANNED).values("takeover_staff_id"))
        .order_by("pk")
        .values_list("pk", "wecom_userid")
    )
    calls = 0
    error = ""
    stop = False
    for takeover_id, userid in takeovers.items():
        while not stop:
            now = clock.now()
            token, externals = _claim_chunk(batch.pk, takeover_id, now)
            if not externals:
                break
            body: dict[str, Any] = {
                "handover_userid": batch.handover_staff.wecom_userid,
                "takeover_userid": userid,
                "external_userid": externals,
            }
            if batch.kind == Kind.ON_JOB and batch.transfer_success_msg:
                body["transfer_success_msg"] = batch.transfer_success_msg
            calls += 1
            try:
                data = client.post(TRANSFER_API[batch.kind], body)
            except (RateLimited, NetworkError, ConfigError) as exc:
                HandoverTransfer.objects.filter(batch_id=batch_id, claim=token, status=rules.PLANNED).update(
                    claim="", claimed_at=None
                )
                error, stop = _describe(exc), True
                break
            except WecomError as exc:
                HandoverTransfer.objects.filter(batch_id=batch_id, claim=token, status=rules.PLANNED).update(
                    status=rules.FAILED, errcode=exc.errcode, finished_at=now
                )
                error = _describe(exc)
                continue
            _record_sent(batch.pk, token, data.get("customer") or [], now)
    HandoverBatch.objects.filter(pk=batch.pk).update(last_error=error[:300], updated_at=clock.now())
    _refresh_batches([batch.pk])
    return calls


def _describe(exc: WecomError) -> str:
    if isinstance(exc, RateLimited):
        return f"企业微信限流，{int(exc.retry_after)} 秒后重试 / rate-limited, retrying in {int(exc.retry_after)} s"
    if isinstance(exc, ConfigError):
        return f"{exc.message_zh} / {exc.message_en}"
    if isinstance(exc, NetworkError):
        return f"无法连接企业微信 / cannot reach WeCom: {exc.errmsg}"
    return f"errcode {exc.errcode}: {exc.errmsg}"


def _record_sent(batch_id: int, token: str, answers: list[dict[str, Any]], now: dt.datetime) -> None:
    """Per-customer errcodes of one chunk, one UPDATE per distinct errcode. Rows WeCom did not
    answer for stay planned and claimed: the lease runs out and they are sent again."""
    by_code: dict[int, list[str]] = defaultdict(list)
    for item in answers:
        by_code[int(item.get("errcode") or 0)].append(str(item.get("external_userid", "")))
    for errcode, externals in by_code.items():
        status = rules.status_for_errcode(errcode)
        values: dict[str, Any] = {"status": status, "errcode": errcode or None}
        if status == rules.STARTED:
            values["requested_at"] = now
        else:
            values["finished_at"] = now
        HandoverTransfer.objects.filter(
            batch_id=batch_id, claim=token, status=rules.PLANNED, external_userid__in=externals
        ).update(**values)


def transfer_failed(
    workspace: Workspace, *, takeover_userid: str, external_userid: str, reason: str, at: dt.datetime
) -> int:
    """WeCom's ``transfer_fail`` callback: the customer refused (``customer_refused``) or the
    takeover staff member has too many customers (``customer_limit_exceed``). Marks the
    unfinished transfer of that customer to that member; returns how many rows changed."""
    status = rules.FAIL_REASONS.get(reason, rules.FAILED)
    rows = HandoverTransfer.objects.filter(
        workspace=workspace,
        takeover_staff__wecom_userid=takeover_userid,
        external_userid=external_userid,
        status__in=rules.IN_FLIGHT,
    )
    batches = list(rows.values_list("batch_id", flat=True))
    changed = rows.update(status=status, finished_at=at)
    _refresh_batches(batches)
    return changed


def _refresh_batches(batch_ids: list[int]) -> None:
    """Counts by status and running/finished, one aggregate per batch."""
    for batch_id in sorted(set(batch_ids)):
        counts = dict(
            HandoverTransfer.objects.filter(batch_id=batch_id)
            .values_list("status")
            .annotate(n=Count("pk"))
            .values_list("status", "n")
        )
        running = any(counts.get(s) for s in rules.PENDING)
        HandoverBatch.objects.filter(pk=batch_id).update(
            counts=counts,
            total=sum(counts.values()),
            status=HandoverBatch.Status.RUNNING if running else HandoverBatch.Status.FINISHED,
            updated_at=clock.now(),
        )
