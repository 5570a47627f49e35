"""Periodic WeCom work for ``siyu worker`` (``core.schedule``), and the on-demand sync task.

- ``wecom.reconcile``: every ``WECOM_SYNC_HOURS`` hours (env ``SIYU_WECOM_SYNC_HOURS``,
  default 6), reconcile every workspace with a WeCom app — changes made through the API fire
  no callbacks and callbacks get lost, so only a periodic pass keeps siyu right;
- ``wecom.rebalance_channel_codes``: every 5 minutes, re-push the staff list of rotating and
  store codes whose rotation changed (a daily cap filled, a shift started or ended, local
  midnight reset the caps). ``acquisition.services.rebalance`` calls ``update_contact_way``
  only for codes whose list changed, so a quiet period costs no WeCom calls;
- ``wecom.prune_api_logs``: daily, drop API call logs past their 30 days.

Each job iterates the configured workspaces itself; one workspace failing is recorded in the
summary and does not stop the others.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django_tasks import task

from siyu.core.errors import DomainError
from siyu.core.schedule import job
from siyu.org.models import Workspace
from siyu.wecom.client import WecomClient
from siyu.wecom.models import WecomApp

log = logging.getLogger("siyu.wecom")
DEFAULT_SYNC_HOURS = 6
REBALANCE_SECONDS = 300


def sync_hours() -> float:
    hours = getattr(settings, "WECOM_SYNC_HOURS", DEFAULT_SYNC_HOURS)
    return float(hours) if hours and float(hours) > 0 else float(DEFAULT_SYNC_HOURS)


def _summary(report) -> dict[str, Any]:
    return {
        "run_id": report.run_id,
        "status": str(report.status),
        "fixes": report.fixes,
        "api_calls": report.api_calls,
        "error": report.error,
    }


def _configured_workspaces() -> list[Workspace]:
    return list(Workspace.objects.filter(pk__in=WecomApp.objects.values("workspace_id")).order_by("pk"))


@job("wecom.reconcile", every=sync_hours() * 3600)
def reconcile_all() -> dict[str, Any]:
    """Reconcile each configured workspace; ``{slug: what its run did}``."""
    from siyu.wecom.sync import reconcile

    out: dict[str, Any] = {}
    for workspace in _configured_workspaces():
        try:
            out[workspace.slug] = _summary(reconcile(workspace))
        except DomainError as exc:  # a run of this workspace is already going
            out[workspace.slug] = {"skipped": exc.message}
        except Exception as exc:  # the run is marked failed; the other workspaces still run
            log.exception("reconciliation of %s failed", workspace.slug)
            out[workspace.slug] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[:300]}
    return out


@job("wecom.rebalance_channel_codes", every=REBALANCE_SECONDS)
def rebalance_channel_codes() -> dict[str, Any]:
    """Re-push rotating / store codes whose on-duty staff changed; ``{slug: counts}`` for the
    workspaces that have such codes."""
    from siyu.acquisition.models import ChannelCode
    from siyu.acquisition.services import ROTATING_KINDS, gateways_for, rebalance

    with_codes = (
        ChannelCode.objects.filter(status=ChannelCode.Status.ACTIVE, kind__in=ROTATING_KINDS)
        .exclude(config_id="")
        .values("workspace_id")
    )
    workspaces = Workspace.objects.filter(pk__in=with_codes).filter(pk__in=WecomApp.objects.values("workspace_id"))
    out: dict[str, Any] = {}
    for workspace in workspaces.order_by("pk"):
        gateways = gateways_for(workspace)
        try:
            report = rebalance(workspace, gateways=gateways)
        except Exception as exc:  # e.g. WeCom unreachable: try again next period
            log.exception("rebalancing channel codes of %s failed", workspace.slug)
            out[workspace.slug] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
            continue
        finally:
            if isinstance(gateways.wecom, WecomClient):
                gateways.wecom.close()  # its HTTP connections; a run every 5 minutes must not leak them
        out[workspace.slug] = {
            "checked": report.checked,
            "calls": report.calls,
            "changed": report.changed,
            "unavailable": len(report.unavailable),
            "errors": {str(k): v for k, v in report.errors.items()},
        }
    return out


@job("wecom.prune_api_logs", every=24 * 3600)
def prune_api_logs() -> dict[str, Any]:
    from siyu.wecom.services import prune_api_logs as prune

    return {"deleted": prune()}


@task()
def reconcile_task(workspace_id: int) -> dict[str, Any]:
    """The console's 立即同步: one reconciliation of one workspace in a worker."""
    from siyu.wecom.sync import reconcile

    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is None:
        return {"skipped": "no_workspace"}
    try:
        return _summary(reconcile(workspace))
    except DomainError as exc:
        return {"skipped": exc.message}
