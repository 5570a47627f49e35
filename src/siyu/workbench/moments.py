"""Moments posts (朋友圈): create one in WeCom, follow it until every sender has published.

The life of a post, and why each step is where it is:

1. ``create_moment`` checks the input (text, materials, senders, tags) and saves a draft;
2. ``submit_moment`` claims the draft (draft → creating, one conditional UPDATE, so two
   clicks or two workers never create it twice), uploads images / the video
   (``media/upload_attachment``), calls ``add_moment_task`` and keeps the ``jobid``. A
   process that dies between the claim and saving the jobid leaves a "creating" row with no
   jobid: it is never resent blind (WeCom may have the post) and the poll marks it failed
   after ``STUCK_AFTER`` with a note to check WeCom;
3. the ``wecom.poll_moments`` job (``poll_moment``) reads ``get_moment_task_result`` until
   the job is done (→ ``moment_id``, invalid senders and tags), then ``get_moment_task``:
   each sender gets a ``StaffTask`` (kind moment, source ``moment`` + pk), closed when WeCom
   says they published; ``get_moment_send_result`` counts the customers each published post
   reached (once per sender: the audience is fixed when they publish).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction

from siyu.content.models import Material
from siyu.core import clock
from siyu.core.errors import InvalidInput, NotFound
from siyu.org.models import OrgUnit, Staff, Workspace
from siyu.org.services import audit
from siyu.tags.models import Tag
from siyu.wecom.client import RateLimited, WecomClient, WecomError
from siyu.workbench import rules
from siyu.workbench.models import Moment, StaffTask
from siyu.workbench.services import NewTask, close_tasks, upsert_tasks

SOURCE = "moment"
STUCK_AFTER = dt.timedelta(minutes=10)
POLL_DAYS = 7  # after a week, a post nobody published is not followed any more
TASK_PAGE = 1000
SEND_PAGE = 5000
RATE_LIMITED_NOTE = "企业微信限频，稍后自动重新提交 / WeCom rate limit: submitted again at the next poll"


@dataclass(frozen=True)
class MomentInput:
    text: str = ""
    material_ids: tuple[int, ...] = ()
    staff_ids: tuple[int, ...] = ()
    org_unit_ids: tuple[int, ...] = ()
    tag_ids: tuple[int, ...] = ()


def _materials(workspace: Workspace, ids: tuple[int, ...]) -> list[Material]:
    ids = tuple(dict.fromkeys(ids))
    found = {m.pk: m for m in Material.objects.filter(workspace=workspace, pk__in=ids, archived=False)}
    missing = [i for i in ids if i not in found]
    if missing:
        raise InvalidInput(f"素材不存在或已归档 / unknown materials: {missing[:5]}", field="attachments")
    materials = [found[i] for i in ids]
    kinds = [rules.moment_kind(m.kind, m.file.name if m.file else "") for m in materials]
    rules.check_attachment_kinds(kinds)
    for material, kind in zip(materials, kinds, strict=True):
        if kind == "link" and not material.url:
            raise InvalidInput(f"链接素材「{material.title}」没有网址 / the link has no URL", field="attachments")
        if kind in ("image", "video") and not material.file:
            raise InvalidInput(f"素材「{material.title}」没有文件 / the material has no file", field="attachments")
    return materials


def _senders(workspace: Workspace, staff_ids: tuple[int, ...], unit_ids: tuple[int, ...]) -> list[str]:
    chosen = list(Staff.objects.filter(workspace=workspace, pk__in=staff_ids))
    if len(chosen) != len(set(staff_ids)):
        raise InvalidInput("员工不存在 / unknown staff", field="staff_ids")
    no_wecom = [s.name for s in chosen if not s.wecom_userid]
    if no_wecom:
        raise InvalidInput(
            f"员工「{'、'.join(no_wecom[:5])}」没有企业微信账号 / staff without a WeCom userid", field="staff_ids"
        )
    userids = [s.wecom_userid for s in chosen if s.status == Staff.Status.ACTIVE]
    units = list(OrgUnit.objects.filter(workspace=workspace, pk__in=unit_ids))
    if len(units) != len(set(unit_ids)):
        raise InvalidInput("组织不存在 / unknown org unit", field="org_unit_ids")
    for unit in units:
        members = (
            Staff.objects.filter(workspace=workspace, org_unit__path__startswith=unit.path, status=Staff.Status.ACTIVE)
            .exclude(wecom_userid=None)
            .exclude(wecom_userid="")
        )
        userids.extend(members.order_by("pk").values_list("wecom_userid", flat=True))
    userids = list(dict.fromkeys(u for u in userids if u))
    if not userids:
        raise InvalidInput(
            "请至少选择一位有企业微信账号的员工或一个门店 / choose at least one staff member with WeCom",
            field="staff_ids",
        )
    if len(userids) > rules.SENDERS_MAX:
        raise InvalidInput(f"发表成员最多 {rules.SENDERS_MAX} 人 / too many senders", field="staff_ids")
    return userids


def _wecom_tags(workspace: Workspace, tag_ids: tuple[int, ...]) -> list[str]:
    tags = list(Tag.objects.filter(workspace=workspace, pk__in=tag_ids))
    if len(tags) != len(set(tag_ids)):
        raise InvalidInput("标签不存在 / unknown tag", field="tag_ids")
    unsynced = [t.name for t in tags if not t.wecom_tag_id]
    if unsynced:
        raise InvalidInput(
            f"标签「{'、'.join(unsynced[:5])}」尚未同步到企业微信，请先运行同步 / tags not linked to WeCom corp tags",
            field="tag_ids",
        )
    return [t.wecom_tag_id for t in tags]


def create_moment(workspace: Workspace, data: MomentInput, *, user=None) -> Moment:
    """Check the input and save a draft (nothing is sent to WeCom yet)."""
    text = rules.check_text(data.text)
    materials = _materials(workspace, data.material_ids)
    if not text and not materials:
        raise InvalidInput("请填写文字或选择素材 / write a text or choose materials", field="text")
    senders = _senders(workspace, data.staff_ids, data.org_unit_ids)
    wecom_tags = _wecom_tags(workspace, data.tag_ids)
    now = clock.now()
    with transaction.atomic():
        moment = Moment.objects.create(
            workspace=workspace,
            text=text,
            attachments=[m.pk for m in materials],
            staff_ids=sorted(set(data.staff_ids)),
            org_unit_ids=sorted(set(data.org_unit_ids)),
            tag_ids=sorted(set(data.tag_ids)),
            sender_userids=senders,
            wecom_tag_ids=wecom_tags,
            created_by=user if getattr(user, "pk", None) else None,
            created_at=now,
            updated_at=now,
        )
        audit(workspace=workspace, action="moment.create", target=f"moment:{moment.pk}", user=moment.created_by)
    return moment


def _upload(client: WecomClient, material: Material, kind: str) -> str:
    """``media/upload_attachment`` (attachment_type 1 = Moments), through the client like every
    other call: rate buckets, token refresh, -1 retries, 45009 back-off, ApiCallLog."""
    material.file.open("rb")
    try:
        content = material.file.read()
    finally:
        material.file.close()
    name = material.payload.get("filename") or material.file.name.rsplit("/", 1)[-1]
    data = client.upload(
        "media/upload_attachment", files={"media": (name, content)}, params={"media_type": kind, "attachment_type": 1}
    )
    return str(data["media_id"])


def _attachments(client: WecomClient, moment: Moment) -> list[dict[str, Any]]:
    materials = {m.pk: m for m in Material.objects.filter(workspace_id=moment.workspace_id, pk__in=moment.attachments)}
    out: list[dict[str, Any]] = []
    for material_id in moment.attachments:
        material = materials.get(material_id)
        if material is None:
            raise InvalidInput(f"素材 {material_id} 已被删除 / material deleted", field="attachments")
        kind = rules.moment_kind(material.kind, material.file.name if material.file else "")
        if kind == "link":
            out.append({"msgtype": "link", "link": {"title": material.title[:64], "url": material.url}})
        elif kind in ("image", "video"):
            out.append({"msgtype": kind, kind: {"media_id": _upload(client, material, kind)}})
    return out


def submit_moment(workspace: Workspace, moment_id: int, *, client: WecomClient | None = None) -> Moment:
    """Send a draft to WeCom (``add_moment_task``). A WeCom refusal marks the post failed with
    WeCom's reason; the jobid is kept for the poll. A rate limit (45009, on an upload or on
    the create call) means WeCom created nothing: the post goes back to draft and the next
    poll submits it again."""
    claimed = Moment.objects.filter(workspace=workspace, pk=moment_id, status=Moment.Status.DRAFT).update(
        status=Moment.Status.CREATING, updated_at=clock.now()
    )
    moment = Moment.objects.filter(workspace=workspace, pk=moment_id).first()
    if moment is None:
        raise NotFound("朋友圈不存在 / no such moment")
    if not claimed:
        return moment  # already submitted (a second click, another worker)
    try:
        with _client(workspace, client) as wecom:
            attachments = _attachments(wecom, moment)
            body = rules.moment_body(moment.text, attachments, moment.sender_userids, moment.wecom_tag_ids)
            data = wecom.post("externalcontact/add_moment_task", body)
    except RateLimited as exc:
        _update(moment, status=Moment.Status.DRAFT, error=f"{RATE_LIMITED_NOTE} ({int(exc.retry_after)} s)")
        return moment
    except (WecomError, InvalidInput, NotFound) as exc:
        message = getattr(exc, "message_zh", None) or getattr(exc, "message", None) or str(exc)
        _update(moment, status=Moment.Status.FAILED, error=str(message)[:500])
        return moment
    _update(moment, jobid=str(data.get("jobid", ""))[:128], error="")
    return moment


@contextmanager
def _client(workspace: Workspace, client: WecomClient | None) -> Iterator[WecomClient]:
    """The caller's client, or one made (and closed) here."""
    if client is not None:
        yield client
        return
    from siyu.wecom.services import client_for

    with client_for(workspace) as made:
        yield made


def _update(moment: Moment, **fields: Any) -> None:
    fields["updated_at"] = clock.now()
    Moment.objects.filter(pk=moment.pk).update(**fields)
    for name, value in fields.items():
        setattr(moment, name, value)


def _pages(client: WecomClient, api: str, body: dict[str, Any], key: str) -> Iterator[dict[str, Any]]:
    cursor = ""
    while True:
        data = client.post(api, {**body, "cursor": cursor}, idempotent=True)
        yield from data.get(key) or []
        cursor = str(data.get("next_cursor") or "")
        if not cursor:
            return


def poll_moment(client: WecomClient, moment: Moment) -> str:
    """One step of following a post; returns its status afterwards."""
    now = clock.now()
    if moment.status == Moment.Status.CREATING:
        if not moment.jobid:
            if now - moment.updated_at > STUCK_AFTER:
                _update(moment, status=Moment.Status.FAILED,
                        error="提交中断，未取得任务 ID：请在企业微信管理后台核对是否已创建 / interrupted before WeCom answered")  # fmt: skip
            return moment.status
        data = client.get("externalcontact/get_moment_task_result", jobid=moment.jobid)
        if int(data.get("status") or 0) != 3:
            _update(moment, polled_at=now)
            return moment.status  # 1 / 2: WeCom is still creating it
        result = data.get("result") or {}
        invalid_senders = (result.get("invalid_sender_list") or {}).get("user_list") or []
        invalid_tags = (result.get("invalid_external_contact_list") or {}).get("tag_list") or []
        fields: dict[str, Any] = {
            "invalid_sender_list": list(invalid_senders),
            "invalid_external_contact_list": list(invalid_tags),
            "polled_at": now,
        }
        if int(result.get("errcode") or 0) != 0 or not result.get("moment_id"):
            error = f"企业微信创建失败 / WeCom refused: errcode {result.get('errcode')} {result.get('errmsg', '')}"
            _update(moment, status=Moment.Status.FAILED, error=error[:500], **fields)
            return moment.status
        _update(moment, status=Moment.Status.CREATED, moment_id=str(result["moment_id"])[:128], **fields)
    if moment.status == Moment.Status.CREATED:
        _follow_senders(client, moment)
    return moment.status


def _follow_senders(client: WecomClient, moment: Moment) -> None:
    tasks = list(_pages(client, "externalcontact/get_moment_task",
                        {"moment_id": moment.moment_id, "limit": TASK_PAGE}, "task_list"))  # fmt: skip
    status = {str(t.get("userid", "")): int(t.get("publish_status") or 0) for t in tasks}
    staff = dict(
        Staff.objects.filter(workspace_id=moment.workspace_id, wecom_userid__in=list(status)).values_list(
            "wecom_userid", "pk"
        )
    )
    local_day = moment.created_at.astimezone(ZoneInfo(moment.workspace.time_zone)).date()
    title = "发朋友圈：" + (moment.text.replace("\n", " ")[:40] or "（图片/链接）")
    upsert_tasks(
        moment.workspace_id,
        [
            NewTask(staff_id=pk, kind=StaffTask.Kind.MOMENT, title=title, due_on=local_day, source_type=SOURCE,
                    source_id=str(moment.pk), script=moment.text, materials=list(moment.attachments))
            for pk in staff.values()
        ],
    )  # fmt: skip
    published = [u for u, s in status.items() if s == 1]
    close_tasks(moment.workspace_id, source_type=SOURCE, source_id=str(moment.pk),
                staff_ids=[staff[u] for u in published if u in staff])  # fmt: skip
    reached_by = dict(moment.counts.get("reached_by") or {})
    for userid in published:
        if userid not in reached_by:  # the audience is fixed once the sender publishes
            body = {"moment_id": moment.moment_id, "userid": userid, "limit": SEND_PAGE}
            reached_by[userid] = sum(1 for _ in _pages(client, "externalcontact/get_moment_send_result",
                                                       body, "customer_list"))  # fmt: skip
    counts = {
        "senders": len(status),
        "published": len(published),
        "reached": sum(reached_by.values()),
        "reached_by": reached_by,
    }
    _update(moment, counts=counts, polled_at=clock.now())


def moments_to_poll(workspace_id: int | None = None):
    since = clock.now() - dt.timedelta(days=POLL_DAYS)
    open_statuses = [Moment.Status.DRAFT, Moment.Status.CREATING, Moment.Status.CREATED]
    rows = Moment.objects.filter(status__in=open_statuses, created_at__gte=since)
    if workspace_id is not None:
        rows = rows.filter(workspace_id=workspace_id)
    # A post every sender has published needs no more calls. A draft is one a rate limit (or
    # a process that died before submitting it) left behind: the poll submits it.
    return [m for m in rows.select_related("workspace").order_by("pk")
            if m.status != Moment.Status.CREATED or m.counts.get("published", -1) != m.counts.get("senders")]  # fmt: skip


def expire_stale(workspace_id: int | None = None) -> int:
    """Posts older than ``POLL_DAYS`` are not followed any more: their senders' pending tasks
    expire (one UPDATE) instead of staying on the task page for ever, and the post moves to
    ``closed`` in the same transaction, so the next run does not select it again."""
    now = clock.now()
    stale = Moment.objects.filter(status=Moment.Status.CREATED, created_at__lt=now - dt.timedelta(days=POLL_DAYS))
    if workspace_id is not None:
        stale = stale.filter(workspace_id=workspace_id)
    ids = list(stale.values_list("pk", flat=True))
    if not ids:
        return 0
    with transaction.atomic():
        expired = StaffTask.objects.filter(
            source_type=SOURCE, source_id__in=[str(pk) for pk in ids], status=StaffTask.Status.PENDING
        ).update(status=StaffTask.Status.EXPIRED, updated_at=now)
        Moment.objects.filter(pk__in=ids, status=Moment.Status.CREATED).update(
            status=Moment.Status.CLOSED, updated_at=now
        )
    return expired


def poll_workspace(workspace: Workspace, *, client: WecomClient | None = None) -> dict[str, int]:
    """Follow every open post of one workspace, submitting the drafts; a 45009 stops the round
    (the next one goes on)."""
    summary = {"polled": 0, "errors": 0}
    pending = moments_to_poll(workspace.pk)
    if not pending:
        return summary
    with _client(workspace, client) as wecom:
        for moment in pending:
            try:
                if moment.status == Moment.Status.DRAFT:
                    if submit_moment(workspace, moment.pk, client=wecom).status == Moment.Status.DRAFT:
                        summary["errors"] += 1  # rate limited again
                        break
                else:
                    poll_moment(wecom, moment)
                summary["polled"] += 1
            except RateLimited:
                summary["errors"] += 1
                break
            except WecomError as exc:
                summary["errors"] += 1
                _update(moment, error=str(exc)[:500], polled_at=clock.now())
    return summary
