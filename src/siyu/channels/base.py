"""The one small protocol every channel implements, and the values that cross it.

A channel turns rendered messages into provider calls and provider answers into
``SendResult``s. It never touches the outbox: the dispatcher (``messaging.dispatch``)
claims rows, runs the compliance gate, renders, calls ``send`` and records the results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Protocol


class Outcome(StrEnum):
    SENT = "sent"  # accepted by the provider; a receipt may follow
    DELIVERED = "delivered"  # the provider confirmed delivery in its answer
    TRANSIENT = "transient"  # try again later (5xx, timeout, throttled)
    REJECTED = "rejected"  # this message can never go (bad number, content refused): failed
    BOUNCED = "bounced"  # the mailbox / number does not exist: bounced
    BLOCKED = "blocked"  # the recipient refused (provider blacklist / unsubscribed): failed + opt-out
    ACCOUNT = "account"  # the account is broken (bad credentials, unapproved template): stop it
    # The request may have reached the provider and the answer was lost (timeout after
    # sending): never resent automatically, shown to the operator as "result unknown".
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class AccountConfig:
    """What a channel needs of its account: decrypted only for the duration of a send."""

    id: int
    workspace_id: int
    provider: str
    medium: str
    settings: dict[str, Any]
    secrets: dict[str, Any]
    callback_token: str


@dataclass(frozen=True)
class OutMessage:
    id: int
    to_address: str
    subject: str
    body: str
    purpose: str
    idempotency_key: str
    # Provider template params (SMS), headers (email unsubscribe URL), event payload (webhook).
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SendResult:
    message_id: int
    outcome: Outcome
    provider_ref: str = ""
    error_code: str = ""
    error_message: str = ""
    # Seconds the provider asked us to wait (rate limit); None lets the dispatcher back off.
    retry_after: float | None = None


@dataclass(frozen=True)
class Receipt:
    """A provider's later word on one message (delivery report / status callback).

    Name the message by ``message_id`` when the provider echoes ours back (Aliyun OutId,
    Tencent SessionContext), else by ``provider_ref`` plus ``to_address`` (a batch id covers
    many numbers).
    """

    status: str  # "delivered" | "failed" | "bounced"
    message_id: int | None = None
    provider_ref: str = ""
    to_address: str = ""
    error_code: str = ""
    error_message: str = ""
    at: Any = None  # aware datetime of the report; None: now


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str


class SettingsError(Exception):
    """Account settings or credentials are unusable; ``field`` names which."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Channel(Protocol):
    provider: ClassVar[str]
    label: ClassVar[str]
    # Which media an account of this provider may serve (the sandbox stands in for any).
    media: ClassVar[tuple[str, ...]]
    # Field names of ``settings`` and of the secret credentials, for forms and validation.
    setting_fields: ClassVar[tuple[str, ...]]
    secret_fields: ClassVar[tuple[str, ...]]
    # The most recipients one ``send`` call should carry.
    batch_size: ClassVar[int]

    def validate(self, settings: dict[str, Any], secrets: dict[str, Any]) -> None:
        """Raise SettingsError for a missing or malformed field; no network."""

    def send(self, account: AccountConfig, messages: Sequence[OutMessage]) -> list[SendResult]:
        """Deliver; one result per message, in any order. Must not raise for provider errors."""

    def recover(self, account: AccountConfig, messages: Sequence[OutMessage]) -> dict[int, SendResult | None]:
        """For messages a dead worker left in flight: what the provider has.

        Map each id to a result when the provider knows the message (it was sent) or to
        None when it certainly does not (safe to send again). Leave an id out when the
        provider cannot tell: that message becomes ``unknown`` and is never resent
        automatically.
        """

    def healthcheck(self, account: AccountConfig) -> Health:
        """Check credentials and reachability with the cheapest real call."""
