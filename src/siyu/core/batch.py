"""Partially successful batches: what was accepted, and why each bad item was not.

API batches and CSV imports share this shape; the API answers it as JSON, the CLI
prints it and can write it as a CSV report.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError


@dataclass(frozen=True)
class ItemError:
    index: int  # 0-based position in the batch (the CSV importer reports 1-based data rows as ``row``)
    field: str  # dotted path, e.g. "identities.0.value"; "" for the whole item
    message: str

    @property
    def row(self) -> int:
        return self.index


@dataclass
class BatchResult:
    accepted: int = 0
    errors: list[ItemError] = field(default_factory=list)
    # Per accepted item: the id of the customer it landed on (customers/identify) or
    # of the stored row; None where an item was rejected.
    ids: list[int | None] = field(default_factory=list)
    # Items that were already stored (event_id / order_no seen before): accepted, not duplicated.
    duplicates: int = 0

    def reject(self, index: int, field_name: str, message: str) -> None:
        self.errors.append(ItemError(index, field_name, message))

    def write_errors(self, path: Path) -> None:
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["row", "field", "message"])
            for error in self.errors:
                writer.writerow([error.row, error.field, error.message])


def validation_errors(exc: ValidationError) -> list[tuple[str, str]]:
    """(field path, message) pairs from a pydantic error, readable by an operator."""
    out = []
    for err in exc.errors():
        loc = ".".join(str(part) for part in err["loc"])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "missing":
            msg = "field required"
        out.append((loc, msg))
    return out


def validate_items(model: type[BaseModel], items: list[Any], result: BatchResult) -> list[tuple[int, BaseModel]]:
    """Validate each raw item on its own; bad ones become ItemErrors, good ones are returned with their index."""
    valid: list[tuple[int, BaseModel]] = []
    for index, raw in enumerate(items):
        if not isinstance(raw, dict):
            result.reject(index, "", "each item must be a JSON object")
            continue
        nul = find_nul(raw)
        if nul is not None:
            # PostgreSQL text and JSON cannot hold NUL; no real name or id contains one.
            result.reject(index, nul, "contains a NUL (\\u0000) character")
            continue
        try:
            valid.append((index, model.model_validate(raw)))
        except ValidationError as exc:
            for loc, msg in validation_errors(exc):
                result.reject(index, loc, msg)
    return valid


def find_nul(value: Any, path: str = "") -> str | None:
    """The dotted path of the first string (or key) containing a NUL character, if any."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return where
            found = find_nul(item, where)
            if found is not None:
                return found
    elif isinstance(value, list):
        for n, item in enumerate(value):
            found = find_nul(item, f"{path}.{n}" if path else str(n))
            if found is not None:
                return found
    return None
