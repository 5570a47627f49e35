"""Channel-code use cases: save a code and its staff, keep its WeCom contact way (or Official
Account QR) in step, rebalance rotating codes, and attribute the adds they bring.

WeCom is reached through a ``Gateway`` (anything with ``post(path, json) -> dict`` raising
``WecomError``: the wecom feature's ``WecomClient``, the fake server in tests). A workspace
without a WeCom app or Official Account still gets codes ("offline": no platform QR, a
placeholder QR for demos); they sync when saved again after the app is configured.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count

from siyu.acquisition import rules
from siyu.acquisition.attribution import code_for_state, record_add
from siyu.acquisition.models import ChannelCode, ChannelCodeAdd, ChannelCodeStaff
from siyu.acquisition.oa_qrcode import OaQrClient, QrTicket
from siyu.acquisition.welcome import Welcome, welcome_payload
from siyu.channels.crypto import decrypt_secrets
from siyu.content.models import Material
from siyu.content.rendering import check_template
from siyu.core import clock
from siyu.core.errors import InvalidInput, NotFound, PermissionDenied
from siyu.org.models import OrgUnit, Staff, Workspace
from siyu.org.rules import Scope
from siyu.org.services import audit
from siyu.tags.models import Tag
from siyu.wecom.client import WecomError
from siyu.wecom.models import OfficialAccountApp, WecomApp

__all__ = ["Welcome", "code_for_state", "record_add", "welcome_payload"]

ADD_WAY = "externalcontact/add_contact_way"
UPDATE_WAY = "externalcontact/update_contact_way"
DEL_WAY = "externalcontact/del_contact_way"
WECOM_KINDS = (ChannelCode.Kind.STAFF, ChannelCode.Kind.ROTATING, ChannelCode.Kind.STORE)
ROTATING_KINDS = (ChannelCode.Kind.ROTATING, ChannelCode.Kind.STORE)
MAX_COST_FEN = 10**12


class Gateway(Protocol):
    def post(self, path: str, json: dict[str, Any]) -> dict[str, Any]: ...


class OaGateway(Protocol):
    def create_qr(self, scene_str: str) -> QrTicket: ...


@dataclass
class Gateways:
    wecom: Gateway | None = None
    oa: OaGateway | None = None


def gateways_for(workspace: Workspace) -> Gateways:
    """The workspace's configured platforms (either may be None: offline)."""
    from siyu.wecom.services import client_for

    wecom = client_for(workspace) if WecomApp.objects.filter(workspace=workspace).exists() else None
    oa_app = OfficialAccountApp.objects.filter(workspace=workspace).first()
    oa = None
    if oa_app is not None:
        oa = OaQrClient(oa_app.app_id, decrypt_secrets(oa_app.secret).get("secret", ""))
    return Gateways(wecom, oa)


CONTACT_WAY_GONE = 41044  # del/update_contact_way: no such config_id


class SyncError(InvalidInput):
    """WeCom or the Official Account refused a change; ``message`` tells the operator why."""

    def __init__(self, exc: WecomError) -> None:
        super().__init__(rules.sync_error_message(exc.errcode, exc.errmsg), field=rules.sync_error_field(exc.errcode))
        self.errcode = exc.errcode


# ---- input ---------------------------------------------------------------------------------


@dataclass
class StaffEntryInput:
    staff_id: int
    daily_cap: int = 0
    is_backup: bool = False
    schedule: dict[str, Any] | None = None


@dataclass
class CodeInput:
    name: str
    kind: str
    state: str = ""
    staff: list[StaffEntryInput] = field(default_factory=list)
    tag_ids: list[int] = field(default_factory=list)
    welcome_text: str = ""
    welcome_attachments: list[dict[str, Any]] = field(default_factory=list)
    group_qr_material_id: int | None = None
    store_id: int | None = None
    cost_fen: int = 0
    skip_verify: bool = True


@dataclass
class _Clean:
    values: dict[str, Any]
    staff: list[tuple[Staff, StaffEntryInput]]
    tags: list[Tag]


def _clean(workspace: Workspace, fields: CodeInput, code: ChannelCode | None, scope: Scope | None) -> _Clean:
    name = (fields.name or "").strip()
    if not name or len(name) > 100:
        raise InvalidInput("请填写名称（不超过 100 字）/ a name of at most 100 characters", field="name")
    if fields.kind not in ChannelCode.Kind.values:
        raise InvalidInput(f"类型应为 {', '.join(ChannelCode.Kind.values)} 之一", field="kind")
    if code is not None and fields.kind != code.kind:
        raise InvalidInput("活码创建后不能更改类型 / the kind cannot change after creation", field="kind")
    state = ""
    if fields.state:
        state = rules.check_state(fields.state)
    if code is not None and state and state != code.state:
        raise InvalidInput("state 创建后不能更改（已印刷的二维码依赖它）/ the state cannot change", field="state")
    if not 0 <= int(fields.cost_fen) <= MAX_COST_FEN:
        raise InvalidInput("成本应为不小于 0 的金额（分）/ cost must be >= 0 fen", field="cost_fen")
    store = None
    if fields.store_id:
        store = OrgUnit.objects.filter(workspace=workspace, pk=fields.store_id, kind=OrgUnit.Kind.STORE).first()
        if store is None:
            raise InvalidInput("门店不存在 / no such store", field="store_id")
    elif fields.kind == ChannelCode.Kind.STORE:
        raise InvalidInput("门店活码需要选择门店 / a store code needs a store", field="store_id")
    staff = _clean_staff(workspace, fields)
    if scope is not None and scope.kind != "all":
        # Store managers save codes of their own stores, staffed by their own people.
        if store is None or not store.path.startswith(scope.unit_path):
            raise PermissionDenied("只能管理本门店的活码 / only your stores' codes", field="store_id")
        if any(not s.org_unit.path.startswith(scope.unit_path) for s, _ in staff):
            raise PermissionDenied("只能选择本门店的成员 / only your stores' staff", field="staff")
    tags = list(Tag.objects.filter(workspace=workspace, pk__in=set(fields.tag_ids)))
    if len(tags) != len(set(fields.tag_ids)):
        raise InvalidInput("有标签不存在 / unknown tag", field="tag_ids")
    material = None
    if fields.group_qr_material_id:
        material = Material.objects.filter(
            workspace=workspace, pk=fields.group_qr_material_id, kind=Material.Kind.IMAGE, archived=False
        ).first()
        if material is None:
            raise InvalidInput("群二维码应为素材库中的图片 / pick an image material", field="group_qr_material_id")
    text = fields.welcome_text or ""
    if text.strip():
        check_template(text, field="welcome_text", medium="wecom")
    attachments = rules.check_attachments(fields.welcome_attachments, extra=1 if material else 0)
    values = {
        "name": name,
        "kind": fields.kind,
        "store": store,
        "cost_fen": int(fields.cost_fen),
        "skip_verify": bool(fields.skip_verify),
        "welcome_text": text,
        "welcome_attachments": attachments,
        "group_qr_material": material,
    }
    if state:
        values["state"] = state
    return _Clean(values, staff, tags)


def _clean_staff(workspace: Workspace, fields: CodeInput) -> list[tuple[Staff, StaffEntryInput]]:
    entries = fields.staff or []
    if fields.kind == ChannelCode.Kind.OA_QR:
        if entries:
            raise InvalidInput("公众号二维码不绑定成员 / Official Account codes have no staff", field="staff")
        return []
    if not entries:
        raise InvalidInput("请至少选择一名成员 / pick at least one staff member", field="staff")
    if fields.kind == ChannelCode.Kind.STAFF and (len(entries) != 1 or entries[0].is_backup):
        raise InvalidInput("单人活码只能有一名（非备用）成员 / a single-staff code has one member", field="staff")
    if all(e.is_backup for e in entries):
        raise InvalidInput("至少需要一名非备用成员 / at least one member must not be a backup", field="staff")
    found = {
        s.pk: s
        for s in Staff.objects.filter(workspace=workspace, pk__in={e.staff_id for e in entries}).select_related(
            "org_unit"
        )
    }
    seen: set[int] = set()
    out = []
    for index, entry in enumerate(entries):
        staff = found.get(entry.staff_id)
        if staff is None or staff.status != Staff.Status.ACTIVE:
            raise InvalidInput("成员不存在或已离职 / no such active staff member", field=f"staff.{index}.staff_id")
        if not staff.wecom_userid:
            raise InvalidInput(
                f"{staff.name} 没有企业微信账号（userid）/ has no WeCom userid", field=f"staff.{index}.staff_id"
            )
        if staff.pk in seen:
            raise InvalidInput("成员重复 / listed twice", field=f"staff.{index}.staff_id")
        seen.add(staff.pk)
        if not 0 <= int(entry.daily_cap) <= 100_000:
            raise InvalidInput("每日上限应为 0（不限）或正整数", field=f"staff.{index}.daily_cap")
        schedule = rules.schedule_json(rules.parse_schedule(entry.schedule, field=f"staff.{index}.schedule"))
        out.append((staff, StaffEntryInput(staff.pk, int(entry.daily_cap), bool(entry.is_backup), schedule)))
    return out


def _write_staff(code: ChannelCode, staff: list[tuple[Staff, StaffEntryInput]]) -> None:
    code.staff_entries.all().delete()
    ChannelCodeStaff.objects.bulk_create(
        ChannelCodeStaff(
            code=code,
            staff=member,
            position=position,
            daily_cap=entry.daily_cap,
            is_backup=entry.is_backup,
            schedule=entry.schedule or {},
        )
        for position, (member, entry) in enumerate(staff)
    )


# ---- create, update, pause, archive ----------------------------------------------------------


def create_code(
    workspace: Workspace,
    fields: CodeInput,
    *,
    gateways: Gateways | None = None,
    now: dt.datetime | None = None,
    user=None,
    scope: Scope | None = None,
) -> ChannelCode:
    """Save a code and make its WeCom contact way / OA QR.

    Steps: validate; insert the code and its staff (committed: a platform call is never made
    inside a transaction); call the platform; on a refusal delete the code again and raise
    ``SyncError`` with the operator's fix, so no half-made code stays behind.
    """
    clean = _clean(workspace, fields, None, scope)
    now = now or clock.now()
    with transaction.atomic():
        values = {**clean.values}
        wanted_state = values.pop("state", "")
        code = ChannelCode(workspace=workspace, state=wanted_state or f"~{now.timestamp():.6f}"[:30], **values)
        code.created_by, code.created_at, code.updated_at = user, now, now
        try:
            with transaction.atomic():
                code.save()
        except IntegrityError:
            raise InvalidInput("该 state 已被其他活码使用 / state already used", field="state") from None
        if not wanted_state:
            code.state = rules.default_state(code.pk)
            code.save(update_fields=["state"])
        _write_staff(code, clean.staff)
        code.tags.set(clean.tags)
        audit(workspace=workspace, action="channel_code.create", target=f"channel_code:{code.pk}", user=user)
    try:
        _sync(code, gateways if gateways is not None else gateways_for(workspace), now)
    except SyncError:
        code.delete()
        raise
    return code


def update_code(
    workspace: Workspace,
    code_id: int,
    fields: CodeInput,
    *,
    gateways: Gateways | None = None,
    now: dt.datetime | None = None,
    user=None,
    scope: Scope | None = None,
) -> ChannelCode:
    """Change a code; the contact way gets the new staff list, remark and skip_verify."""
    code = _get(workspace, code_id)
    if code.status == ChannelCode.Status.ARCHIVED:
        raise InvalidInput("已归档的活码不能修改 / archived codes cannot change", field="status")
    clean = _clean(workspace, fields, code, scope)
    now = now or clock.now()
    with transaction.atomic():
        for name, value in clean.values.items():
            setattr(code, name, value)
        code.updated_at = now
        code.save()
        _write_staff(code, clean.staff)
        code.tags.set(clean.tags)
        audit(workspace=workspace, action="channel_code.update", target=f"channel_code:{code.pk}", user=user)
    if code.status == ChannelCode.Status.ACTIVE:
        _sync(code, gateways if gateways is not None else gateways_for(workspace), now, force=True)
    return code


def pause_code(workspace: Workspace, code_id: int, *, gateways: Gateways | None = None, user=None) -> ChannelCode:
    """Stop a code: its WeCom contact way is deleted (printed QR codes stop adding); resuming
    makes a new one. An OA permanent QR cannot be deleted: scans keep being attributed."""
    return _stop(workspace, code_id, ChannelCode.Status.PAUSED, gateways, user)


def archive_code(workspace: Workspace, code_id: int, *, gateways: Gateways | None = None, user=None) -> ChannelCode:
    return _stop(workspace, code_id, ChannelCode.Status.ARCHIVED, gateways, user)


def resume_code(
    workspace: Workspace, code_id: int, *, gateways: Gateways | None = None, now: dt.datetime | None = None, user=None
) -> ChannelCode:
    code = _get(workspace, code_id)
    if code.status != ChannelCode.Status.PAUSED:
        raise InvalidInput("只有已暂停的活码可以恢复 / only paused codes resume", field="status")
    now = now or clock.now()
    _sync(code, gateways if gateways is not None else gateways_for(workspace), now)
    ChannelCode.objects.filter(pk=code.pk).update(status=ChannelCode.Status.ACTIVE, updated_at=now)
    code.status = ChannelCode.Status.ACTIVE
    audit(workspace=workspace, action="channel_code.resume", target=f"channel_code:{code.pk}", user=user)
    return code


def _stop(workspace: Workspace, code_id: int, status: str, gateways: Gateways | None, user) -> ChannelCode:
    code = _get(workspace, code_id)
    if code.status == ChannelCode.Status.ARCHIVED:
        return code
    gateways = gateways if gateways is not None else gateways_for(workspace)
    changes: dict[str, Any] = {"status": status, "updated_at": clock.now()}
    if code.kind in WECOM_KINDS and code.config_id:
        if gateways.wecom is not None:
            try:
                _call(gateways.wecom, DEL_WAY, {"config_id": code.config_id})
            except SyncError as exc:
                # 41044: WeCom no longer has this contact way (deleted outside siyu): stopping
                # it is already done, and refusing would leave the code unpausable.
                if exc.errcode != CONTACT_WAY_GONE:
                    raise
        changes.update(config_id="", qr_code="", qr_content="", current_userids=[], synced_at=None)
    ChannelCode.objects.filter(pk=code.pk).update(**changes)
    audit(workspace=workspace, action=f"channel_code.{status}", target=f"channel_code:{code.pk}", user=user)
    code.refresh_from_db()
    return code


def _get(workspace: Workspace, code_id: int) -> ChannelCode:
    code = ChannelCode.objects.filter(workspace=workspace, pk=code_id).first()
    if code is None:
        raise NotFound("活码不存在 / no such channel code", field="code_id")
    return code


# ---- platform sync ---------------------------------------------------------------------------


def _call(gateway: Gateway, path: str, body: dict[str, Any]) -> dict[str, Any]:
    try:
        return gateway.post(path, json=body)
    except WecomError as exc:
        raise SyncError(exc) from None


def offline_qr_content(state: str) -> str:
    """What an unsynced code's QR encodes: a placeholder naming the state (demos, previews)."""
    return f"{settings.PUBLIC_URL}/channel-codes/offline/{state}"


def _slots(code: ChannelCode, counts: dict[tuple[int, int], int]) -> list[rules.Slot]:
    return [
        rules.Slot(
            staff_id=e.staff_id,
            userid=e.staff.wecom_userid or "",
            position=e.position,
            daily_cap=e.daily_cap,
            is_backup=e.is_backup,
            schedule=rules.parse_schedule(e.schedule),
            adds_today=counts.get((code.pk, e.staff_id), 0),
        )
        for e in code.staff_entries.all()
    ]


def _rotation(code: ChannelCode, now: dt.datetime, counts: dict[tuple[int, int], int]) -> rules.Rotation:
    local_now = now.astimezone(ZoneInfo(code.workspace.time_zone))
    return rules.rotate(_slots(code, counts), local_now)


def _sync(code: ChannelCode, gateways: Gateways, now: dt.datetime, *, force: bool = False) -> None:
    """Create (or, with ``force``, update) the code's platform QR; offline codes get a placeholder."""
    updates: dict[str, Any] = {}
    if code.kind == ChannelCode.Kind.OA_QR:
        if code.config_id:
            return
        if gateways.oa is None:
            updates = {"qr_content": offline_qr_content(code.state)}
        else:
            try:
                ticket = gateways.oa.create_qr(code.state)
            except WecomError as exc:
                raise SyncError(exc) from None
            updates = {"config_id": ticket.ticket, "qr_code": ticket.image_url, "qr_content": ticket.url}
            updates["synced_at"] = now
    else:
        rotation = _rotation(code, now, adds_today([code.pk], now, code.workspace.time_zone))
        userids = list(rotation.userids)
        if not userids:
            # Nobody is on duty right now: WeCom needs someone, so start with every primary
            # member and let the next rebalance narrow it down.
            userids = [e.staff.wecom_userid for e in code.staff_entries.all() if not e.is_backup]
        if gateways.wecom is None:
            updates = {"qr_content": code.qr_content or offline_qr_content(code.state), "current_userids": userids}
        elif not code.config_id:
            body = {
                "type": rules.contact_way_type(code.kind),
                "scene": 2,
                "remark": code.name[:30],
                "skip_verify": code.skip_verify,
                "state": code.state,
                "user": userids,
            }
            answer = _call(gateways.wecom, ADD_WAY, body)
            qr = str(answer.get("qr_code", ""))
            updates = {"config_id": str(answer["config_id"]), "qr_code": qr, "qr_content": qr}
            updates.update(current_userids=userids, synced_at=now)
        elif force:
            body = {
                "config_id": code.config_id,
                "remark": code.name[:30],
                "skip_verify": code.skip_verify,
                "user": userids,
            }
            _call(gateways.wecom, UPDATE_WAY, body)
            updates = {"current_userids": userids, "synced_at": now}
        updates["rotation_note"] = rotation.reason[:300]
    ChannelCode.objects.filter(pk=code.pk).update(**updates)
    for name, value in updates.items():
        setattr(code, name, value)


def adds_today(code_ids: Iterable[int], now: dt.datetime, time_zone: str) -> dict[tuple[int, int], int]:
    """Adds per (code, staff) since local midnight: what the daily caps are counted against."""
    local = now.astimezone(ZoneInfo(time_zone))
    midnight = dt.datetime.combine(local.date(), dt.time(), local.tzinfo)
    rows = (
        ChannelCodeAdd.objects.filter(code_id__in=list(code_ids), at__gte=midnight, staff_id__isnull=False)
        .values("code_id", "staff_id")
        .annotate(n=Count("id"))
    )
    return {(r["code_id"], r["staff_id"]): r["n"] for r in rows}


@dataclass
class RebalanceReport:
    checked: int = 0
    calls: int = 0  # update_contact_way calls made
    changed: list[int] = field(default_factory=list)
    unavailable: dict[int, str] = field(default_factory=dict)  # code id -> why nobody is on it
    errors: dict[int, str] = field(default_factory=dict)  # code id -> operator message


def rebalance(
    workspace: Workspace,
    now: dt.datetime | None = None,
    *,
    gateways: Gateways | None = None,
    code_ids: Iterable[int] | None = None,
) -> RebalanceReport:
    """Recompute every active rotating / store code's staff list and call
    ``update_contact_way`` only for the codes whose list changed (one call each).

    Meant to run every few minutes from the worker (caps fill, shifts change) and on demand.
    A code with nobody available keeps its current list (WeCom refuses an empty one).
    """
    now = now or clock.now()
    gateways = gateways if gateways is not None else gateways_for(workspace)
    codes = ChannelCode.objects.filter(
        workspace=workspace, status=ChannelCode.Status.ACTIVE, kind__in=ROTATING_KINDS
    ).exclude(config_id="")
    if code_ids is not None:
        codes = codes.filter(pk__in=list(code_ids))
    codes = list(codes.select_related("workspace").prefetch_related("staff_entries__staff").order_by("pk"))
    counts = adds_today([c.pk for c in codes], now, workspace.time_zone)
    report = RebalanceReport(checked=len(codes))
    for code in codes:
        rotation = _rotation(code, now, counts)
        note = rotation.reason[:300]
        if not rotation.userids:
            report.unavailable[code.pk] = rotation.reason
        elif list(rotation.userids) != list(code.current_userids) and gateways.wecom is not None:
            report.calls += 1
            try:
                _call(gateways.wecom, UPDATE_WAY, {"config_id": code.config_id, "user": list(rotation.userids)})
            except SyncError as exc:
                report.errors[code.pk] = exc.message
                continue
            report.changed.append(code.pk)
            ChannelCode.objects.filter(pk=code.pk).update(
                current_userids=list(rotation.userids), rotation_note=note, synced_at=now
            )
            continue
        if note != code.rotation_note:
            ChannelCode.objects.filter(pk=code.pk).update(rotation_note=note)
    return report


# ---- images ----------------------------------------------------------------------------------


def qr_content(code: ChannelCode) -> str:
    return code.qr_content or offline_qr_content(code.state)


def poster_for(
    workspace: Workspace, code: ChannelCode, *, background: str = "", background_material_id: int | None = None
) -> bytes:
    """The code's poster: its name as the title, the first staff member on it and its store."""
    from siyu.acquisition import images

    entries = list(code.staff_entries.select_related("staff", "staff__org_unit"))
    current = [e for e in entries if e.staff.wecom_userid in (code.current_userids or [])] or entries
    staff_name = current[0].staff.name if current and code.kind == ChannelCode.Kind.STAFF else ""
    store_name = code.store.name if code.store_id else ""
    if not store_name and current and code.kind == ChannelCode.Kind.STAFF:
        store_name = current[0].staff.org_unit.name
    image = None
    if background_material_id:
        material = Material.objects.filter(
            workspace=workspace, pk=background_material_id, kind=Material.Kind.IMAGE, archived=False
        ).first()
        if material is None or not material.file:
            raise InvalidInput("背景应为素材库中的图片 / pick an image material", field="background_material_id")
        with material.file.open("rb") as handle:
            image = handle.read()
    return images.poster_png(
        qr_content(code),
        title=code.name,
        staff_name=staff_name,
        store_name=store_name,
        background=background or "#F6E7D8",
        background_image=image,
    )
