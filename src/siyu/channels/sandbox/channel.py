"""The sandbox channel: records each message in ``channels_sandboxmessage`` instead of
sending it. Writing the record is idempotent on the message id, so it is exactly-once even
when a worker dies and the message is recovered."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from django.db import connection

from siyu.channels.base import AccountConfig, Health, Outcome, OutMessage, SendResult
from siyu.core import clock
from siyu.core.sql import id_list_condition, insert_rows


class SandboxChannel:
    provider: ClassVar[str] = "sandbox"
    label: ClassVar[str] = "沙箱（只记录不发送）"
    media: ClassVar[tuple[str, ...]] = ("sms", "email", "app", "wecom", "official_account")
    setting_fields: ClassVar[tuple[str, ...]] = ()
    secret_fields: ClassVar[tuple[str, ...]] = ()
    batch_size: ClassVar[int] = 5000

    def validate(self, settings: dict[str, Any], secrets: dict[str, Any]) -> None:
        return None

    def send(self, account: AccountConfig, messages: Sequence[OutMessage]) -> list[SendResult]:
        now = clock.now()
        insert_rows(
            "channels_sandboxmessage",
            {
                "workspace_id": "int",
                "account_id": "int",
                "message_id": "int",
                "to_address": "text",
                "subject": "text",
                "body": "text",
                "recorded_at": "datetime",
            },
            [(account.workspace_id, account.id, m.id, m.to_address, m.subject, m.body, now) for m in messages],
            ignore_conflicts=True,
        )
        return [SendResult(m.id, Outcome.DELIVERED, provider_ref=f"sandbox-{m.id}") for m in messages]

    def recover(self, account: AccountConfig, messages: Sequence[OutMessage]) -> dict[int, SendResult | None]:
        condition, params = id_list_condition("message_id", [m.id for m in messages])
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT message_id FROM channels_sandboxmessage WHERE {condition}", params)
            recorded = {row[0] for row in cursor.fetchall()}
        return {
            m.id: SendResult(m.id, Outcome.DELIVERED, provider_ref=f"sandbox-{m.id}") if m.id in recorded else None
            for m in messages
        }

    def healthcheck(self, account: AccountConfig) -> Health:
        return Health(True, "沙箱渠道只记录消息，不会真正发送。")
