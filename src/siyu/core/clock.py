"""The one clock. Domain code takes ``now`` as an argument; callers get it here."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone


def now() -> datetime:
    return timezone.now()
