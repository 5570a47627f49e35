"""Shapes shared by the batch endpoints of the API."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from ninja import Schema
from ninja.errors import HttpError
from pydantic import ConfigDict

from siyu.core.batch import BatchResult


class BatchIn(Schema):
    """``{"items": [...]}``; each item is validated on its own so one bad item rejects only itself."""

    model_config = ConfigDict(extra="forbid")
    items: list[Any]


class Rejected(Schema):
    index: int
    field: str
    message: str


class BatchOut(Schema):
    accepted: int
    duplicates: int
    rejected: list[Rejected]
    ids: list[int | None] | None = None


def check_batch_size(body: BatchIn) -> None:
    if len(body.items) > settings.API_MAX_BATCH:
        raise HttpError(413, f"a batch holds at most {settings.API_MAX_BATCH} items; this one has {len(body.items)}")
    if not body.items:
        raise HttpError(422, "items is empty")


def batch_answer(result: BatchResult, *, with_ids: bool) -> dict[str, Any]:
    return {
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "rejected": [{"index": e.index, "field": e.field, "message": e.message} for e in result.errors],
        "ids": result.ids if with_ids else None,
    }


def inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    """Replace local ``$ref``s by their definitions (our item models are not recursive)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return inline_refs(defs[ref.removeprefix("#/$defs/")], defs)
        return {key: inline_refs(value, defs) for key, value in node.items()}
    if isinstance(node, list):
        return [inline_refs(value, defs) for value in node]
    return node


def item_schema_extra(model) -> dict[str, Any]:
    """OpenAPI for a batch body whose items have ``model``'s shape (validated per item at run time)."""
    schema = model.model_json_schema()
    item = inline_refs(schema, schema.pop("$defs", {}))
    return {
        "requestBody": {
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["items"],
                        "additionalProperties": False,
                        "properties": {"items": {"type": "array", "maxItems": settings.API_MAX_BATCH, "items": item}},
                    }
                }
            },
            "required": True,
        }
    }
