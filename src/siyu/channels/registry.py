"""The one list of channel providers. Adding a channel means adding a line here."""

from __future__ import annotations

from siyu.channels.base import Channel
from siyu.channels.sandbox.channel import SandboxChannel

CHANNELS: dict[str, Channel] = {channel.provider: channel for channel in (SandboxChannel(),)}


def get_channel(provider: str) -> Channel:
    try:
        return CHANNELS[provider]
    except KeyError:
        raise LookupError(f"unknown channel provider '{provider}' (known: {', '.join(sorted(CHANNELS))})") from None
