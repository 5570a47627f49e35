"""Broadcasts (群发): an audience, a channel account, content variants with an A/B split and
a holdout control group; a preview of what the gate will stop; a report with lift.

Starting a broadcast is one ``INSERT ... SELECT``: every audience member becomes an outbox
row (``bc:<broadcast>:<customer>`` keys make a restart harmless), assigned to a variant or to
the holdout by a hash of the ids, so the split is stable and needs no per-customer Python.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from siyu.channels import gate
from siyu.channels.models import ChannelAccount
from siyu.channels.services import compliance_settings
from siyu.content.models import MessageTemplate
from siyu.content.rendering import check_template
from siyu.core import clock
from siyu.core.errors import InvalidInput, NotFound
from siyu.core.sql import adapt
from siyu.messaging.models import Broadcast, BroadcastVariant, OutboundMessage, Purpose, QuietPolicy
from siyu.messaging.rules import HOLDOUT_MULT, VARIANT_MOD, VARIANT_MULT, Lift, lift
from siyu.messaging.wecom_mass import check_text, sender_sql
from siyu.org.models import Workspace
from siyu.org.services import audit
from siyu.segments.models import Segment
from siyu.tags.models import Tag

PROVIDER_TEMPLATE_REQUIRED = ("aliyun_sms", "tencent_sms")
MAX_VARIANTS = 5


@dataclass(frozen=True)
class VariantIn:
    label: str
    weight: int = 1
    template_id: int | None = None
    subject: str = ""
    body: str = ""
    provider_template: str = ""
    provider_params: dict[str, str] | None = None


def create_broadcast(
    workspace: Workspace,
    *,
    name: str,
    account_id: int,
    variants: list[VariantIn],
    segment_id: int | None = None,
    tags_any: list[int] | None = None,
    tags_all: list[int] | None = None,
    purpose: str = Purpose.MARKETING,
    quiet_policy: str = QuietPolicy.HOLD,
    holdout_percent: float = 0,
    scheduled_at: dt.datetime | None = None,
    coupon_code: str = "",
    conversion_days: int = 7,
    user=None,
) -> Broadcast:
    """Validate everything that can be checked before sending, then save a draft."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise InvalidInput("名称必填，最多 100 字 / a name of 1-100 characters is required", field="name")
    account = ChannelAccount.objects.filter(workspace=workspace, pk=account_id).first()
    if account is None:
        raise InvalidInput("渠道账号不存在 / no such channel account", field="account_id")
    if purpose not in (Purpose.MARKETING, Purpose.SERVICE):
        raise InvalidInput("purpose must be marketing or service", field="purpose")
    if quiet_policy not in QuietPolicy.values:
        raise InvalidInput("quiet_policy must be hold or skip", field="quiet_policy")
    if not (0 <= holdout_percent <= 50):
        raise InvalidInput("对照组比例须在 0-50% 之间 / holdout must be 0-50 %", field="holdout_percent")
    if not (1 <= conversion_days <= 90):
        raise InvalidInput("转化窗口 1-90 天 / conversion window must be 1-90 days", field="conversion_days")
    if len(coupon_code) > 64:
        raise InvalidInput("优惠券码最多 64 字", field="coupon_code")
    if segment_id is None and not tags_any and not tags_all:
        raise InvalidInput("请选择分群或标签 / choose a segment or tags as the audience", field="segment_id")
    if segment_id is not None and not Segment.objects.filter(workspace=workspace, pk=segment_id).exists():
        raise InvalidInput("分群不存在 / no such segment", field="segment_id")
    for field_name, ids in (("tags_any", tags_any or []), ("tags_all", tags_all or [])):
        known = set(Tag.objects.filter(workspace=workspace, pk__in=ids).values_list("pk", flat=True))
        for n, tag_id in enumerate(ids):
            if tag_id not in known:
                raise InvalidInput(f"标签 {tag_id} 不存在 / no such tag", field=f"{field_name}.{n}")
    if scheduled_at is not None and scheduled_at.tzinfo is None:
        raise InvalidInput("scheduled_at needs a time zone offset", field="scheduled_at")
    clean = _clean_variants(workspace, account, purpose, variants)
    now = clock.now()
    with transaction.atomic():
        broadcast = Broadcast.objects.create(
            workspace=workspace,
            name=name,
            segment_id=segment_id,
            tags_any=list(tags_any or []),
            tags_all=list(tags_all or []),
            account=account,
            purpose=purpose,
            quiet_policy=quiet_policy,
            holdout_bp=round(holdout_percent * 100),
            coupon_code=coupon_code,
            conversion_days=conversion_days,
            scheduled_at=scheduled_at,
            created_by=user if getattr(user, "pk", None) else None,
            created_at=now,
            updated_at=now,
        )
        for variant in clean:
            variant.broadcast = broadcast
            variant.save()
        audit(workspace=workspace, action="broadcast.create", target=f"broadcast:{broadcast.pk}", user=user)
    return broadcast


def _clean_variants(
    workspace: Workspace, account: ChannelAccount, purpose: str, variants: list[VariantIn]
) -> list[BroadcastVariant]:
    if not variants:
        raise InvalidInput("至少需要一个内容版本 / at least one content variant", field="variants")
    if len(variants) > MAX_VARIANTS:
        raise InvalidInput(f"最多 {MAX_VARIANTS} 个版本", field="variants")
    labels: set[str] = set()
    out = []
    suffix = compliance_settings(workspace.pk).sms_optout_suffix
    for n, v in enumerate(variants):
        prefix = f"variants.{n}"
        label = (v.label or "").strip()
        if not label or len(label) > 16 or label in labels:
            raise InvalidInput("版本名必填、唯一，最多 16 字 / a unique label is required", field=f"{prefix}.label")
        labels.add(label)
        if not (1 <= v.weight <= 100):
            raise InvalidInput("权重 1-100 / weight must be 1-100", field=f"{prefix}.weight")
        subject, body, provider_template, params = v.subject, v.body, v.provider_template, v.provider_params or {}
        if purpose == Purpose.SERVICE and v.template_id is None:
            # Service messages skip opt-out, caps and quiet hours: a broadcast may claim that
            # only with templates an operator saved as service notices, never with free text.
            raise InvalidInput(
                "服务通知群发须使用「服务通知」类模板 / a service broadcast must use a service template",
                field=f"{prefix}.template_id",
            )
        if v.template_id is not None:
            template = MessageTemplate.objects.filter(workspace=workspace, pk=v.template_id, archived=False).first()
            if template is None:
                raise InvalidInput("模板不存在 / no such template", field=f"{prefix}.template_id")
            if template.medium != account.medium:
                raise InvalidInput(
                    f"模板是{template.get_medium_display()}模板，与渠道不符 / template is for {template.medium}",
                    field=f"{prefix}.template_id",
                )
            if purpose == Purpose.SERVICE and template.purpose != MessageTemplate.Purpose.SERVICE:
                raise InvalidInput(
                    "该模板是营销模板，不能作为服务通知发送 / a marketing template cannot go out as a service notice",
                    field=f"{prefix}.template_id",
                )
            subject, body = template.subject, template.body
            provider_template, params = template.provider_template, template.provider_params or {}
        if not body.strip():
            raise InvalidInput("内容不能为空 / the message body is empty", field=f"{prefix}.body")
        check_template(body, field=f"{prefix}.body", medium=account.medium)
        if account.provider == "wecom":
            check_text(body, field=f"{prefix}.body")
        if subject:
            check_template(subject, field=f"{prefix}.subject", medium=account.medium, max_length=200)
        elif account.medium == "email":
            raise InvalidInput("邮件需要标题 / an email needs a subject", field=f"{prefix}.subject")
        for key, src in params.items():
            check_template(src, field=f"{prefix}.provider_params.{key}", medium=account.medium)
        if account.provider in PROVIDER_TEMPLATE_REQUIRED:
            if not provider_template:
                raise InvalidInput(
                    "短信服务商只发送已审核的模板：请填写模板编号 / the provider needs an approved template code",
                    field=f"{prefix}.provider_template",
                )
            if purpose == Purpose.MARKETING and not body.rstrip().endswith(suffix):
                raise InvalidInput(
                    f"营销短信模板须以「{suffix}」结尾 / marketing SMS templates must end with the opt-out text",
                    field=f"{prefix}.body",
                )
        out.append(
            BroadcastVariant(
                label=label,
                weight=v.weight,
                template_id=v.template_id,
                subject=subject,
                body=body,
                provider_template=provider_template,
                provider_params=params,
            )
        )
    return out


def get_broadcast(workspace: Workspace, broadcast_id: int) -> Broadcast:
    found = Broadcast.objects.filter(workspace=workspace, pk=broadcast_id).select_related("account").first()
    if found is None:
        raise NotFound("no such broadcast")
    return found


# ---- audience -------------------------------------------------------------------------------------


def audience_sql(broadcast: Broadcast) -> tuple[str, list[Any]]:
    """SELECT customer_id of every live audience member (segment and/or tags)."""
    params: list[Any] = [broadcast.workspace_id]
    where = ["c.workspace_id = %s", "c.merged_into_id IS NULL"]
    if broadcast.segment_id:
        where.append(
            "EXISTS (SELECT 1 FROM segments_segmentmembership m WHERE m.segment_id = %s "
            "AND m.customer_id = c.id AND m.exited_at IS NULL)"
        )
        params.append(broadcast.segment_id)
    if broadcast.tags_any:
        marks = ", ".join(["%s"] * len(broadcast.tags_any))
        where.append(f"EXISTS (SELECT 1 FROM tags_customertag t WHERE t.customer_id = c.id AND t.tag_id IN ({marks}))")
        params.extend(int(t) for t in broadcast.tags_any)
    for tag_id in broadcast.tags_all or []:
        where.append("EXISTS (SELECT 1 FROM tags_customertag t WHERE t.customer_id = c.id AND t.tag_id = %s)")
        params.append(int(tag_id))
    return f"SELECT c.id AS customer_id FROM customers_customer c WHERE {' AND '.join(where)}", params


def _assignment_sql(broadcast: Broadcast, variants: list[BroadcastVariant]) -> tuple[str, str]:
    """SQL for (is held out, variant id) of ``a.customer_id``, matching ``messaging.rules``."""
    # "%%": these fragments go into statements with parameters (both drivers read %% as %).
    holdout = f"((a.customer_id * {HOLDOUT_MULT} + {int(broadcast.pk)} * 40503) %% 10000) < {int(broadcast.holdout_bp)}"
    total = sum(v.weight for v in variants)
    slot = f"(((a.customer_id * {VARIANT_MULT} + {int(broadcast.pk)}) %% {VARIANT_MOD}) %% {total})"
    cases, upper = [], 0
    for v in variants:
        upper += v.weight
        cases.append(f"WHEN {slot} < {upper} THEN {int(v.pk)}")
    return holdout, f"(CASE {' '.join(cases)} END)"


# ---- preview -------------------------------------------------------------------------------------------


def preview(broadcast: Broadcast, now: dt.datetime | None = None) -> dict[str, Any]:
    """Before sending: audience, holdout, and how many the gate would stop now, by reason."""
    now = now or clock.now()
    variants = list(broadcast.variants.order_by("id"))
    aud_sql, aud_params = audience_sql(broadcast)
    holdout, _variant = _assignment_sql(broadcast, variants) if variants else ("1 = 0", "")
    policy = gate.GatePolicy.of(compliance_settings(broadcast.workspace_id), broadcast.workspace.time_zone)
    account = broadcast.account
    candidates = (
        f"SELECT a.customer_id AS id, a.customer_id, %s AS medium, %s AS purpose, '' AS to_address "
        f"FROM ({aud_sql}) a WHERE NOT ({holdout})"
    )
    # WeCom: a customer who is no staff member's friend is suppressed before the gate.
    friendly = f"{sender_sql('a.customer_id')} IS NOT NULL" if account.medium == "wecom" else ""
    if friendly:
        candidates += f" AND {friendly}"
    sql, params = gate.gate_sql(
        policy,
        workspace_id=broadcast.workspace_id,
        candidates_sql=candidates,
        candidates_params=[account.medium, broadcast.purpose, *aud_params],
        exclude_sql="1 = 0",
        exclude_params=[],
        now=now,
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*), SUM(CASE WHEN {holdout} THEN 1 ELSE 0 END) FROM ({aud_sql}) a", aud_params)
        audience, held_out = cursor.fetchone()
        cursor.execute(f"SELECT reason, COUNT(*) FROM ({sql}) g GROUP BY reason", params)
        by_reason = dict(cursor.fetchall())
        if friendly:
            cursor.execute(f"SELECT COUNT(*) FROM ({aud_sql}) a WHERE NOT ({holdout}) AND NOT ({friendly})", aud_params)
            by_reason["not_friend"] = cursor.fetchone()[0]
            by_reason = {k: v for k, v in by_reason.items() if v}
    would_send = by_reason.pop("", 0)
    quiet = by_reason.get("quiet_hours", 0)
    if broadcast.quiet_policy == QuietPolicy.HOLD and quiet:
        by_reason.pop("quiet_hours")
    return {
        "audience": audience or 0,
        "holdout": held_out or 0,
        "would_send": would_send,
        "held_for_window": quiet if broadcast.quiet_policy == QuietPolicy.HOLD else 0,
        "window_opens_at": gate.next_window_start(policy, now) if quiet else None,
        "suppressed": dict(sorted(by_reason.items(), key=lambda kv: -kv[1])),
        "suppressed_total": sum(by_reason.values()),
    }


# ---- start / schedule / finish ----------------------------------------------------------------------


def send(broadcast: Broadcast, *, now: dt.datetime | None = None, user=None) -> Broadcast:
    """Send now, or at ``scheduled_at`` if that is still ahead."""
    now = now or clock.now()
    if broadcast.status not in (Broadcast.Status.DRAFT, Broadcast.Status.SCHEDULED):
        raise InvalidInput(
            f"群发已{broadcast.get_status_display()}，不能再发送 / already {broadcast.status}", field="status"
        )
    if broadcast.account.status != ChannelAccount.Status.ACTIVE:
        raise InvalidInput(
            f"渠道账号已停用：{broadcast.account.disabled_reason} / the channel account is disabled", field="account_id"
        )
    audit(workspace=broadcast.workspace, action="broadcast.send", target=f"broadcast:{broadcast.pk}", user=user)
    if broadcast.scheduled_at and broadcast.scheduled_at > now:
        Broadcast.objects.filter(pk=broadcast.pk).update(status=Broadcast.Status.SCHEDULED, updated_at=now)
        broadcast.refresh_from_db()
        return broadcast
    return materialize(broadcast, now)


def materialize(broadcast: Broadcast, now: dt.datetime) -> Broadcast:
    """Write one outbox row per audience member (variant or holdout): one statement.

    A WeCom message also names its sender (``payload.sender``, the staff member whose friend
    the customer is, ``wecom_mass.sender_sql``); a customer who is nobody's friend is
    suppressed as ``not_friend`` right here.
    """
    variants = list(broadcast.variants.order_by("id"))
    aud_sql, aud_params = audience_sql(broadcast)
    holdout, variant = _assignment_sql(broadcast, variants)
    pg = connection.vendor == "postgresql"
    key = "'bc:' || %s || ':' || a.customer_id" if not pg else "'bc:' || %s::text || ':' || a.customer_id::text"
    payload = "'{}'::jsonb" if pg else "'{}'"
    state = f"CASE WHEN {holdout} THEN 'holdout' ELSE 'queued' END"
    reason = "''"
    order = ""
    if broadcast.account.medium == "wecom":
        aud_sql = f"SELECT w.customer_id, {sender_sql('w.customer_id')} AS sender FROM ({aud_sql}) w"
        build = "jsonb_build_object('sender', a.sender)" if pg else "json_object('sender', a.sender)"
        payload = f"(CASE WHEN a.sender IS NULL THEN {payload} ELSE {build} END)"
        state = f"CASE WHEN {holdout} THEN 'holdout' WHEN a.sender IS NULL THEN 'suppressed' ELSE 'queued' END"
        reason = f"CASE WHEN NOT ({holdout}) AND a.sender IS NULL THEN 'not_friend' ELSE '' END"
        # Rows get ids in sender order, so a claim (oldest ids first) holds whole runs of one
        # staff member's customers: one task each, not one per staff member per claim.
        order = " ORDER BY a.sender, a.customer_id"
    with transaction.atomic():
        # Claim the start: only one caller moves the broadcast to sending.
        started = Broadcast.objects.filter(
            pk=broadcast.pk, status__in=[Broadcast.Status.DRAFT, Broadcast.Status.SCHEDULED]
        ).update(status=Broadcast.Status.SENDING, started_at=now, updated_at=now)
        if not started:
            broadcast.refresh_from_db()
            return broadcast
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO messaging_outboundmessage (workspace_id, customer_id, account_id, medium, purpose, "
                "idempotency_key, broadcast_id, variant_id, to_address, subject, body, payload, state, reason, "
                "quiet_policy, not_before, attempts, claimed_by, provider_ref, error_code, error_message, "
                "created_at, updated_at) "
                f"SELECT %s, a.customer_id, %s, %s, %s, {key}, %s, {variant}, '', '', '', {payload}, "
                f"{state}, {reason}, %s, NULL, 0, '', '', '', '', %s, %s "
                f"FROM ({aud_sql}) a WHERE 1 = 1{order} ON CONFLICT DO NOTHING",  # WHERE: SQLite reads ON as a join
                [
                    broadcast.workspace_id,
                    broadcast.account_id,
                    broadcast.account.medium,
                    broadcast.purpose,
                    str(broadcast.pk),
                    broadcast.pk,
                    broadcast.quiet_policy,
                    adapt(now, "datetime"),
                    adapt(now, "datetime"),
                    *aud_params,
                ],
            )
            cursor.execute("SELECT COUNT(*) FROM messaging_outboundmessage WHERE broadcast_id = %s", [broadcast.pk])
            size = cursor.fetchone()[0]
        Broadcast.objects.filter(pk=broadcast.pk).update(audience_size=size)
    broadcast.refresh_from_db()
    return broadcast


def start_due(now: dt.datetime) -> int:
    """Materialize scheduled broadcasts whose time has come (called by the dispatcher)."""
    started = 0
    for broadcast in Broadcast.objects.filter(status=Broadcast.Status.SCHEDULED, scheduled_at__lte=now).select_related(
        "account", "workspace"
    ):
        materialize(broadcast, now)
        started += 1
    return started


def finish_done(now: dt.datetime) -> int:
    """Mark sending broadcasts with nothing left in flight as sent."""
    finished = 0
    for broadcast_id in Broadcast.objects.filter(status=Broadcast.Status.SENDING).values_list("pk", flat=True):
        open_rows = OutboundMessage.objects.filter(
            broadcast_id=broadcast_id, state__in=["queued", "held", "sending"]
        ).exists()
        if not open_rows:
            finished += Broadcast.objects.filter(pk=broadcast_id, status=Broadcast.Status.SENDING).update(
                status=Broadcast.Status.SENT, finished_at=now, updated_at=now
            )
    return finished


def cancel(broadcast: Broadcast, *, user=None) -> int:
    """Stop a scheduled or sending broadcast; messages not yet sent are suppressed as cancelled."""
    now = clock.now()
    with transaction.atomic():
        changed = Broadcast.objects.filter(
            pk=broadcast.pk, status__in=[Broadcast.Status.DRAFT, Broadcast.Status.SCHEDULED, Broadcast.Status.SENDING]
        ).update(status=Broadcast.Status.CANCELLED, finished_at=now, updated_at=now)
        if not changed:
            raise InvalidInput("群发已结束 / the broadcast has finished", field="status")
        stopped = OutboundMessage.objects.filter(broadcast_id=broadcast.pk, state__in=["queued", "held"]).update(
            state=OutboundMessage.State.SUPPRESSED, reason="cancelled", updated_at=now
        )
        audit(workspace=broadcast.workspace, action="broadcast.cancel", target=f"broadcast:{broadcast.pk}", user=user)
    return stopped


# ---- report ------------------------------------------------------------------------------------------------


@dataclass
class GroupResult:
    label: str
    size: int
    converted: int
    revenue_fen: int

    @property
    def rate(self) -> float:
        return self.converted / self.size if self.size else 0.0


def report(broadcast: Broadcast) -> dict[str, Any]:
    """Audience, suppressed by reason, sent, delivered, clicked, converted, revenue; lift vs holdout.

    Conversion is an order paid within ``conversion_days`` of the start. Every member counts in
    their group whether or not the message reached them (intention to treat), so the
    comparison with the holdout is fair even when the gate stopped some messages.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT state, reason, variant_id, COUNT(*), SUM(CASE WHEN clicked_at IS NOT NULL THEN 1 ELSE 0 END) "
            "FROM messaging_outboundmessage WHERE broadcast_id = %s GROUP BY state, reason, variant_id",
            [broadcast.pk],
        )
        rows = cursor.fetchall()
        start = broadcast.started_at
        groups: dict[tuple[str, int | None], tuple[int, int, int]] = {}
        if start is not None:
            end = start + dt.timedelta(days=broadcast.conversion_days)
            cursor.execute(
                "SELECT CASE WHEN o.state = 'holdout' THEN 'holdout' ELSE 'treated' END, o.variant_id, COUNT(*), "
                "SUM(CASE WHEN x.n > 0 THEN 1 ELSE 0 END), COALESCE(SUM(x.revenue), 0) "
                "FROM messaging_outboundmessage o LEFT JOIN (SELECT r.customer_id, COUNT(*) AS n, "
                "SUM(r.paid_fen - r.refund_fen) AS revenue FROM tracking_order r WHERE r.workspace_id = %s "
                "AND r.paid_at >= %s AND r.paid_at < %s AND r.customer_id IN "
                "(SELECT customer_id FROM messaging_outboundmessage WHERE broadcast_id = %s) GROUP BY r.customer_id) x "
                "ON x.customer_id = o.customer_id WHERE o.broadcast_id = %s GROUP BY 1, 2",
                [broadcast.workspace_id, adapt(start, "datetime"), adapt(end, "datetime"), broadcast.pk, broadcast.pk],
            )
            groups = {(g, v): (int(n), int(c or 0), int(r or 0)) for g, v, n, c, r in cursor.fetchall()}
    counts: dict[str, int] = {}
    suppressed: dict[str, int] = {}
    clicked = 0
    per_variant: dict[int | None, dict[str, int]] = {}
    for state, reason, variant_id, n, clicks in rows:
        counts[state] = counts.get(state, 0) + n
        clicked += int(clicks or 0)
        if state == "suppressed":
            suppressed[reason] = suppressed.get(reason, 0) + n
        if state != "holdout":
            entry = per_variant.setdefault(variant_id, {"audience": 0, "sent": 0, "clicked": 0})
            entry["audience"] += n
            entry["clicked"] += int(clicks or 0)
            if state in ("sent", "delivered", "unknown"):
                entry["sent"] += n
    control = _group("holdout", [v for k, v in groups.items() if k[0] == "holdout"])
    treated = _group("treated", [v for k, v in groups.items() if k[0] == "treated"])
    variants = {v.pk: v.label for v in broadcast.variants.all()}
    variant_rows = []
    for variant_id, label in sorted(variants.items()):
        group = _group(label, [groups[("treated", variant_id)]] if ("treated", variant_id) in groups else [])
        stats = per_variant.get(variant_id, {"audience": 0, "sent": 0, "clicked": 0})
        variant_rows.append(
            {
                "label": label,
                **stats,
                "converted": group.converted,
                "revenue_fen": group.revenue_fen,
                "rate": group.rate,
                "lift": _lift_dict(lift(group.size, group.converted, control.size, control.converted)),
            }
        )
    sent = counts.get("sent", 0) + counts.get("delivered", 0) + counts.get("unknown", 0)
    return {
        "audience": sum(counts.values()),
        "holdout": counts.get("holdout", 0),
        "queued": counts.get("queued", 0) + counts.get("held", 0) + counts.get("sending", 0),
        "held": counts.get("held", 0),
        "suppressed": dict(sorted(suppressed.items(), key=lambda kv: -kv[1])),
        "suppressed_total": counts.get("suppressed", 0),
        "sent": sent + counts.get("bounced", 0),
        "delivered": counts.get("delivered", 0),
        "failed": counts.get("failed", 0) + counts.get("bounced", 0),
        "unknown": counts.get("unknown", 0),
        "clicked": clicked,
        "treated": treated.__dict__ | {"rate": treated.rate},
        "control": control.__dict__ | {"rate": control.rate},
        "converted": treated.converted,
        "revenue_fen": treated.revenue_fen,
        "lift": _lift_dict(lift(treated.size, treated.converted, control.size, control.converted)),
        "variants": variant_rows,
    }


def _group(label: str, parts: list[tuple[int, int, int]]) -> GroupResult:
    return GroupResult(label, sum(p[0] for p in parts), sum(p[1] for p in parts), sum(p[2] for p in parts))


def _lift_dict(value: Lift | None) -> dict[str, Any] | None:
    return None if value is None else value.__dict__.copy()
