"""What the setup console changes: the WeCom app and the Official Account as an operator edits
them (secrets write-only), and a reconciliation queued on demand. Each writes its audit entry.

``services.configure_wecom`` / ``configure_oa`` take every field every time (the CLI's shape);
an operator editing one field must not have to paste the secret again, so the stored secret
and key are reused when left empty — except when the corp id (or app id) changes: whoever may
edit settings could otherwise point the stored secret at another corp.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import transaction

from siyu.channels.crypto import decrypt_secrets
from siyu.core import clock
from siyu.core.errors import InvalidInput
from siyu.org.models import AuditEntry, Workspace
from siyu.org.services import audit
from siyu.wecom.models import OfficialAccountApp, WecomApp
from siyu.wecom.services import configure_oa, configure_wecom
from siyu.wecom.sync import STALE_RUN
from siyu.wecom.sync_models import SyncRun

QUEUE_ACTION = "wecom.sync.queue"
# A queued run that has not started after this long is shown as stuck (no worker running).
QUEUE_PATIENCE = dt.timedelta(minutes=10)


@dataclass(frozen=True)
class WecomFields:
    corp_id: str
    agent_id: str
    secret: str = ""  # empty: keep the stored one
    token: str = ""
    aes_key: str = ""  # empty: keep the stored one


@dataclass(frozen=True)
class OaFields:
    app_id: str
    secret: str = ""
    token: str = ""
    aes_key: str = ""
    encrypted: bool = False  # safe mode; False switches to plaintext and drops the key


def save_wecom(workspace: Workspace, fields: WecomFields, *, user=None) -> WecomApp:
    """Create or change the workspace's WeCom app.

    Steps: reuse the stored secret / key where left empty (refused when the corp id changes
    without a new secret); ``configure_wecom`` validates and writes; if the callback Token,
    key and corp id are unchanged, WeCom's earlier URL verification still holds and is kept;
    an audit entry names the fields that changed (never their values for secrets).
    """
    current = WecomApp.objects.filter(workspace=workspace).first()
    stored = decrypt_secrets(current.secret) if current is not None else {}
    corp_id, secret, aes_key = fields.corp_id.strip(), fields.secret.strip(), fields.aes_key.strip()
    if current is not None and corp_id != current.corp_id and not secret:
        raise InvalidInput(
            "修改企业 ID 时须重新填写 Secret / re-enter the secret when the corp id changes", field="secret"
        )
    if current is not None and corp_id != current.corp_id and not aes_key:
        raise InvalidInput(
            "修改企业 ID 时须重新填写 EncodingAESKey / re-enter the EncodingAESKey when the corp id changes",
            field="aes_key",
        )
    secret = secret or stored.get("secret", "")
    aes_key = aes_key or stored.get("aes_key", "")
    token = fields.token.strip()
    changed = _changed(
        current,
        {"corp_id": corp_id, "agent_id": str(fields.agent_id).strip(), "callback_token": token},
        {"secret": secret, "aes_key": aes_key},
        stored,
    )
    with transaction.atomic():
        app = configure_wecom(
            workspace,
            corp_id=corp_id,
            agent_id=fields.agent_id,
            secret=secret,
            token=token,
            aes_key=aes_key,
            base_url=current.base_url if current is not None else None,
        )
        audit(
            workspace=workspace,
            action="wecom.configure",
            target=f"wecom_app:{app.pk}",
            user=user,
            details={"changed": changed, "corp_id": app.corp_id, "agent_id": app.agent_id},
        )
    return app


def save_oa(workspace: Workspace, fields: OaFields, *, user=None) -> OfficialAccountApp:
    """Create or change the workspace's Official Account (same rules as ``save_wecom``)."""
    current = OfficialAccountApp.objects.filter(workspace=workspace).first()
    stored = decrypt_secrets(current.secret) if current is not None else {}
    app_id, secret, aes_key = fields.app_id.strip(), fields.secret.strip(), fields.aes_key.strip()
    if current is not None and app_id != current.app_id and not secret:
        raise InvalidInput(
            "修改 AppID 时须重新填写 AppSecret / re-enter the app secret when the app id changes", field="secret"
        )
    secret = secret or stored.get("secret", "")
    if fields.encrypted:
        aes_key = aes_key or (stored.get("aes_key", "") if current is not None and app_id == current.app_id else "")
        if not aes_key:
            raise InvalidInput("安全模式需要 EncodingAESKey / safe mode needs the EncodingAESKey", field="aes_key")
    else:
        aes_key = ""
    token = fields.token.strip()
    changed = _changed(
        current, {"app_id": app_id, "callback_token": token}, {"secret": secret, "aes_key": aes_key}, stored
    )
    with transaction.atomic():
        app = configure_oa(workspace, app_id=app_id, secret=secret, token=token, aes_key=aes_key)
        audit(
            workspace=workspace,
            action="oa.configure",
            target=f"official_account:{app.pk}",
            user=user,
            details={"changed": changed, "app_id": app.app_id, "encrypted": app.encrypted},
        )
    return app


def _changed(current, plain: dict[str, str], secret: dict[str, str], stored: dict[str, str]) -> list[str]:
    """Names of the fields that differ from what is stored (all of them for a new app)."""
    if current is None:
        return sorted([*plain, *(k for k, v in secret.items() if v)])
    names = [name for name, value in plain.items() if str(getattr(current, name)) != value]
    names += [name for name, value in secret.items() if stored.get(name, "") != value]
    return sorted(names)


# ---- reconciliation on demand -----------------------------------------------------------


@dataclass(frozen=True)
class SyncState:
    """What the sync card shows: the latest run and whether one is queued or running."""

    latest: SyncRun | None
    queued_at: dt.datetime | None  # asked for and not started yet
    running: bool
    stuck: bool  # queued long ago and never started: is a worker running?

    @property
    def busy(self) -> bool:
        return self.running or self.queued_at is not None


def sync_state(workspace: Workspace, now: dt.datetime | None = None) -> SyncState:
    now = now or clock.now()
    latest = SyncRun.objects.filter(workspace=workspace).order_by("-started_at", "-pk").first()
    running = latest is not None and latest.status == SyncRun.Status.RUNNING and latest.started_at > now - STALE_RUN
    asked = (
        AuditEntry.objects.filter(workspace=workspace, action=QUEUE_ACTION)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    queued_at = asked if asked is not None and (latest is None or latest.started_at < asked) else None
    stuck = queued_at is not None and queued_at < now - QUEUE_PATIENCE
    return SyncState(latest, queued_at, running, stuck)


def queue_sync(workspace: Workspace, *, user=None) -> None:
    """Ask a background worker to reconcile the workspace now (``jobs.reconcile_task``).

    Refused while a run is running or already queued, so repeated clicks queue one run. The
    audit entry is also the "queued" marker the progress card reads.
    """
    from siyu.wecom.jobs import reconcile_task

    if not WecomApp.objects.filter(workspace=workspace).exists():
        raise InvalidInput("请先配置企业微信应用 / configure the WeCom app first", field="corp_id")
    state = sync_state(workspace)
    if state.running or (state.queued_at is not None and not state.stuck):
        raise InvalidInput("已有同步在排队或进行中 / a sync is already queued or running", field="sync")
    audit(workspace=workspace, action=QUEUE_ACTION, target=f"workspace:{workspace.pk}", user=user)
    reconcile_task.enqueue(workspace.pk)
