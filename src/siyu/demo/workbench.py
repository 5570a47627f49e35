"""The demo brand's staff to-dos (员工任务) and one Moments post, so the mobile task page, the
completion report and the 朋友圈 pages have something real to show.

No WeCom is configured in the demo, so the Moments post is written as WeCom would have left it
(created, with a moment id) and its per-staff tasks are half done; follow-up tasks pick each
clerk's own at-risk and dormant customers with the library's recall script.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable

from django.db.models import Case, When

from siyu.content.models import Material, Script
from siyu.org.models import Membership, Staff, Workspace
from siyu.segments.models import CustomerLayer
from siyu.workbench.models import Moment, StaffTask
from siyu.workbench.services import NewTask, upsert_tasks

FOLLOW_UPS_PER_STAFF = 3
STAFF_WITH_TASKS = 24
MOMENT_TEXT = "冬季焕新周｜会员到店领取护手霜小样，满 299 再送保温杯，数量有限，先到先得～"


def build_staff_tasks(workspace: Workspace, now: dt.datetime, rng: random.Random, echo: Callable[[str], None]) -> None:
    StaffTask.objects.filter(workspace=workspace).delete()  # a rerun replaces them
    Moment.objects.filter(workspace=workspace).delete()
    today = now.date()
    active = Staff.objects.filter(workspace=workspace, status=Staff.Status.ACTIVE).exclude(wecom_userid=None)
    # The demo's clerk login first, so 导购 sees a list on /m/tasks/.
    linked = list(active.filter(pk__in=Membership.objects.filter(workspace=workspace).values("staff_id")))
    staff = linked + [m for m in active.order_by("org_unit_id", "pk")[:STAFF_WITH_TASKS] if m not in linked]
    recall = Script.objects.filter(workspace=workspace, scenario=Script.Scenario.RECALL, archived=False).first()
    script = recall.content if recall else "好久不见～最近店里上了新品，给您留了一份试用装，方便时来店里坐坐？"
    tasks: list[NewTask] = []
    # One query per staff member (a few dozen), never per customer.
    for member in staff:
        # Their at-risk and dormant customers first, then whoever else they look after.
        customers = list(
            CustomerLayer.objects.filter(
                workspace=workspace, customer__owner_staff=member, customer__merged_into__isnull=True
            )
            .annotate(
                first=Case(
                    When(lifecycle__in=[CustomerLayer.Lifecycle.AT_RISK, CustomerLayer.Lifecycle.DORMANT], then=0),
                    default=1,
                )
            )
            .order_by("first", "customer_id")
            .values_list("customer_id", "customer__name", "lifecycle")[:FOLLOW_UPS_PER_STAFF]
        )
        for customer_id, name, lifecycle in customers:
            label = {
                CustomerLayer.Lifecycle.DORMANT: "沉睡唤醒",
                CustomerLayer.Lifecycle.AT_RISK: "流失预警回访",
                CustomerLayer.Lifecycle.NEW: "新客首购关怀",
            }.get(lifecycle, "老客维护")
            tasks.append(
                NewTask(
                    staff_id=member.pk,
                    kind=StaffTask.Kind.FOLLOW_UP,
                    title=f"{label}：{name or '客户'}",
                    due_on=today,
                    source_type="demo_follow_up",
                    source_id=str(customer_id),
                    script=script,
                    customer_id=customer_id,
                    audience=1,
                )
            )
    image = Material.objects.filter(workspace=workspace, kind=Material.Kind.IMAGE, archived=False).first()
    senders = staff[: max(len(staff) // 2, 1)]
    moment = Moment.objects.create(
        workspace=workspace,
        text=MOMENT_TEXT,
        attachments=[image.pk] if image else [],
        staff_ids=[m.pk for m in senders],
        sender_userids=[m.wecom_userid for m in senders],
        jobid="demo-job-1",
        moment_id="demo-moment-1",
        status=Moment.Status.CREATED,
        counts={"senders": len(senders)},
        created_at=now - dt.timedelta(hours=2),
        updated_at=now,
        polled_at=now,
    )
    for member in senders:
        tasks.append(
            NewTask(
                staff_id=member.pk,
                kind=StaffTask.Kind.MOMENT,
                title="发朋友圈：冬季焕新周",
                due_on=today,
                source_type="moment",
                source_id=str(moment.pk),
                script=MOMENT_TEXT,
                materials=[image.pk] if image else [],
            )
        )
    upsert_tasks(workspace.pk, tasks)
    # About a third are already done (by staff in siyu, or reported by WeCom for Moments).
    done = [t.pk for t in StaffTask.objects.filter(workspace=workspace).order_by("pk") if rng.random() < 0.35]
    for kind, via in ((StaffTask.Kind.FOLLOW_UP, "staff"), (StaffTask.Kind.MOMENT, "wecom")):
        StaffTask.objects.filter(pk__in=done, kind=kind).update(
            status=StaffTask.Status.DONE, done_at=now - dt.timedelta(minutes=30), done_via=via
        )
    echo(f"员工任务 / staff tasks: {len(tasks)} for {len(staff)} staff, 1 Moments post")
