"""Ingesting events and orders: validated item by item, stored set-based."""

from __future__ import annotations

from typing import Any

from siyu.core.batch import BatchResult
from siyu.org.models import Workspace


def ingest_events(workspace: Workspace, items: list[Any], *, source: str) -> BatchResult:
    """Validate raw ``EventItem`` dicts and store the good ones; retried event_ids are not duplicated."""
    raise NotImplementedError


def ingest_orders(workspace: Workspace, items: list[Any], *, source: str) -> BatchResult:
    """Validate raw ``OrderItem`` dicts and upsert the good ones by order_no (idempotent)."""
    raise NotImplementedError
