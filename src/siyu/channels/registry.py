"""The one list of channel providers. Adding a channel means adding a line here."""

from __future__ import annotations

from siyu.channels.base import Channel
from siyu.channels.email.channel import EmailChannel
from siyu.channels.sandbox.channel import SandboxChannel
from siyu.channels.sms.aliyun import AliyunSmsChannel
from siyu.channels.sms.tencent import TencentSmsChannel
from siyu.channels.webhook.channel import WebhookChannel
from siyu.channels.wecom.channel import WecomMassChannel

CHANNELS: dict[str, Channel] = {
    channel.provider: channel
    for channel in (
        SandboxChannel(),
        EmailChannel(),
        WebhookChannel(),
        AliyunSmsChannel(),
        TencentSmsChannel(),
        WecomMassChannel(),
    )
}


def get_channel(provider: str) -> Channel:
    try:
        return CHANNELS[provider]
    except KeyError:
        raise LookupError(f"unknown channel provider '{provider}' (known: {', '.join(sorted(CHANNELS))})") from None
