"""Periodic job: follow started transfers until WeCom says how they ended."""

from __future__ import annotations

import logging

from siyu.core.schedule import job
from siyu.handover import rules
from siyu.handover.models import HandoverTransfer
from siyu.org.models import Workspace

log = logging.getLogger("siyu.handover")


@job("handover.poll_results", every=600)
def poll_results() -> dict:
    """Every workspace with unfinished transfers and a WeCom app: send what is planned, read
    transfer_result / resigned/transfer_result, apply. One failing workspace does not stop
    the others."""
    from siyu.handover.results import poll_workspace

    ids = HandoverTransfer.objects.filter(status__in=rules.PENDING).values("workspace_id")
    summary: dict = {"workspaces": 0, "calls": 0, "changed": {}, "errors": []}
    for workspace in Workspace.objects.filter(pk__in=ids, wecom_app__isnull=False).order_by("pk"):
        summary["workspaces"] += 1
        try:
            report = poll_workspace(workspace)
        except Exception as exc:  # keep polling the other workspaces; the error is in the summary
            log.exception("handover poll failed for %s", workspace.slug)
            summary["errors"].append(f"{workspace.slug}: {type(exc).__name__}: {exc}"[:200])
            continue
        summary["calls"] += report.calls + report.sent_calls
        for status, count in report.changed.items():
            summary["changed"][status] = summary["changed"].get(status, 0) + count
        summary["errors"].extend(f"{workspace.slug}: {e}" for e in report.errors)
    return summary
