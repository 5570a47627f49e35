"""The WeCom channel: customer mass messages (客户群发) that staff members confirm.

An account of this provider holds nothing of its own: it sends through the workspace's WeCom
app (``siyu.wecom``), which must be configured first. The work is in
``siyu.messaging.wecom_mass`` (tasks per staff member, recovery) and
``siyu.messaging.wecom_poll`` (results).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from siyu.channels.base import AccountConfig, Health, OutMessage, SendResult, SettingsError


class WecomMassChannel:
    provider: ClassVar[str] = "wecom"
    label: ClassVar[str] = "企业微信客户群发（员工确认后发出）"
    media: ClassVar[tuple[str, ...]] = ("wecom",)
    setting_fields: ClassVar[tuple[str, ...]] = ()
    secret_fields: ClassVar[tuple[str, ...]] = ()
    batch_size: ClassVar[int] = 10_000  # external_userid per add_msg_template
    # Messages per second for the dispatcher's claims: high, so one claim holds whole runs of a
    # staff member's customers (see channels.services.create_account).
    min_rate_per_second: ClassVar[float] = 10_000.0

    def validate(self, settings: dict[str, Any], secrets: dict[str, Any]) -> None:
        return None

    def validate_workspace(self, workspace_id: int) -> None:
        """An account needs the workspace's WeCom app (checked when the account is saved)."""
        from siyu.wecom.models import WecomApp

        if not WecomApp.objects.filter(workspace_id=workspace_id).exists():
            raise SettingsError(
                "请先配置企业微信应用（siyu wecom configure）/ configure the workspace's WeCom app first",
                field="provider",
            )

    def send(self, account: AccountConfig, messages: Sequence[OutMessage]) -> list[SendResult]:
        from siyu.messaging import wecom_mass

        return wecom_mass.send(account, messages)

    def recover(self, account: AccountConfig, messages: Sequence[OutMessage]) -> dict[int, SendResult | None]:
        from siyu.messaging import wecom_mass

        return wecom_mass.recover(account, messages)

    def healthcheck(self, account: AccountConfig) -> Health:
        from siyu.core.errors import NotFound
        from siyu.org.models import Workspace
        from siyu.wecom.client import WecomError
        from siyu.wecom.services import client_for

        try:
            with client_for(Workspace.objects.get(pk=account.workspace_id)) as client:
                client.token()
        except NotFound:
            return Health(False, "企业微信尚未配置 / WeCom is not configured")
        except WecomError as exc:
            return Health(False, f"企业微信接口不可用 / WeCom API unusable: {exc}")
        return Health(True, "使用工作区的企业微信应用发送；员工在企业微信中确认后才会发出。")
