"""``siyu wecom transfer``: the command's work, so cli.py stays a thin parser."""

from __future__ import annotations

from siyu.core.errors import InvalidInput
from siyu.handover import rules, services
from siyu.handover.models import Kind
from siyu.org.models import Staff
from siyu.org.services import get_workspace


def transfer(
    workspace_slug: str, from_userid: str, to_userids: str, *, resigned: bool, message: str, dry_run: bool
) -> list[str]:
    """Preview or start a handover by WeCom userids; the lines to print."""
    workspace = get_workspace(workspace_slug)
    wanted = [u.strip() for u in to_userids.split(",") if u.strip()]
    staff = dict(
        Staff.objects.filter(workspace=workspace, wecom_userid__in=[from_userid, *wanted]).values_list(
            "wecom_userid", "pk"
        )
    )
    if from_userid not in staff:
        raise InvalidInput(
            f"没有企业微信账号为 {from_userid} 的员工 / no staff member with userid {from_userid}", field="from"
        )
    missing = [u for u in wanted if u not in staff]
    if missing or not wanted:
        raise InvalidInput(f"没有这些接替员工 / unknown takeover userids: {', '.join(missing) or '-'}", field="to")
    fields = {
        "kind": Kind.RESIGNED if resigned else Kind.ON_JOB,
        "handover_staff_id": staff[from_userid],
        "takeover_staff_ids": [staff[u] for u in wanted],
        "transfer_success_msg": message,
    }
    plan = services.preview(workspace, **fields)
    names = {pk: userid for userid, pk in staff.items()}
    lines = [f"可转接 / movable: {plan.movable}"]
    lines += [f"  → {names[t]}: {n}" for t, n in plan.per_takeover.items()]
    for reason, count in sorted(plan.blocked_counts.items()):
        lines.append(f"无法转接 / blocked ({rules.REASONS[reason]}): {count}")
    for item in plan.blocked[:20]:
        until = f" until {item.next_allowed_at:%Y-%m-%d}" if item.next_allowed_at else ""
        lines.append(f"  · {item.name or item.customer_id} [{item.reason}]{until}")
    if dry_run:
        lines.append("（预览，未发起 / dry run: nothing was sent）")
        return lines
    batch = services.start_handover(workspace, background=False, **fields)
    counts = ", ".join(f"{k} {v}" for k, v in sorted((batch.counts or {}).items()))
    lines.append(f"已发起转接 #{batch.pk} / handover #{batch.pk} started: {counts}")
    if batch.last_error:
        lines.append(f"注意 / note: {batch.last_error}")
    lines.append(
        "结果由 handover.poll_results 每 10 分钟同步 / results are polled every 10 minutes (siyu jobs run handover.poll_results)"
    )
    return lines
