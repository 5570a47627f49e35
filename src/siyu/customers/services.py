"""OneID: upsert customers by any identity, link identities, merge profiles."""

from __future__ import annotations

from typing import Any

from siyu.core.batch import BatchResult
from siyu.org.models import Workspace


def upsert_customers(workspace: Workspace, items: list[Any], *, source: str) -> BatchResult:
    """Validate raw customer items (``CustomerItem`` dicts) one by one and upsert the good ones.

    Returns a BatchResult whose ``ids[i]`` is the live customer id item i landed on.
    """
    raise NotImplementedError


def link_identities(workspace: Workspace, raw: dict[str, Any], *, source: str) -> dict[str, Any]:
    """``IdentifyRequest``: all identities are one person. Returns
    ``{"customer_id", "merged_ids", "conflicts": [conflict ids]}``."""
    raise NotImplementedError


def live_customer_id(workspace_id: int, customer_id: int) -> int | None:
    """The id a (possibly merged) customer id resolves to now, or None if unknown in this workspace."""
    raise NotImplementedError
