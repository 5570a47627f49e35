"""CSV import of customers, orders and events (``siyu import``).

The file is streamed in chunks; each row becomes the same item the JSON API takes and
goes through the same services, so validation and OneID behave identically. Good rows
are stored even when others are bad; every bad row is reported with its line number in
the file (the header is line 1) and the column at fault. Column reference: docs/import.md.

Encodings: UTF-8 (with or without the BOM Excel writes) and GB18030/GBK, which Chinese
Excel uses when saving "CSV".
"""

from __future__ import annotations

import codecs
import csv
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import click

from siyu.core.batch import BatchResult, ItemError
from siyu.core.errors import InvalidInput
from siyu.customers.services import upsert_customers
from siyu.org.services import get_workspace
from siyu.tracking.services import ingest_events, ingest_orders

CHUNK_ROWS = 5000
IDENTITY_COLUMNS = (
    "phone",
    "email",
    "wecom_external_userid",
    "wechat_unionid",
    "wechat_openid",
    "app_user_id",
    "member_no",
    "anonymous_id",
)
CUSTOMER_COLUMNS = {
    *IDENTITY_COLUMNS,
    "wechat_app_id",
    "name",
    "gender",
    "birthday",
    "province",
    "city",
    "source_channel",
    "source_detail",
    "store_code",
    "owner_wecom_userid",
    "tags",
}
REF_COLUMNS = {"customer_id", *IDENTITY_COLUMNS, "wechat_app_id"}
ORDER_COLUMNS = REF_COLUMNS | {
    "order_no",
    "status",
    "total",
    "total_fen",
    "discount",
    "discount_fen",
    "paid",
    "paid_fen",
    "refund",
    "refund_fen",
    "currency",
    "paid_at",
    "refunded_at",
    "store_code",
    "channel",
    "items",
    "sku",
    "product_name",
    "category",
    "quantity",
    "price",
}
EVENT_COLUMNS = REF_COLUMNS | {"name", "timestamp", "event_id"}
PREFIXES = {"customers": "attr.", "events": "prop.", "orders": None}
KNOWN = {"customers": CUSTOMER_COLUMNS, "orders": ORDER_COLUMNS, "events": EVENT_COLUMNS}
GENDERS = {"男": "m", "女": "f", "m": "m", "f": "f", "male": "m", "female": "f", "": ""}
STATUSES = {"paid": "paid", "已支付": "paid", "refunded": "refunded", "已退款": "refunded"}
TAG_SEPARATORS = re.compile(r"[|;；]")


@dataclass
class ImportReport:
    kind: str
    accepted: int = 0
    duplicates: int = 0
    errors: list[ItemError] = field(default_factory=list)  # ``index`` is the line number in the file
    rows: int = 0

    def write_errors(self, path: Path) -> None:
        BatchResult(errors=self.errors).write_errors(path)


def import_csv(*, kind: str, path: Path, workspace_slug: str, progress: bool = False) -> ImportReport:
    if kind not in KNOWN:
        raise InvalidInput(f"unknown import kind '{kind}'; expected customers, orders or events", field="kind")
    workspace = get_workspace(workspace_slug)
    if not path.is_file():
        raise InvalidInput(f"{path} is not a file", field="file")
    encoding = detect_encoding(path)
    store = {"customers": upsert_customers, "orders": ingest_orders, "events": ingest_events}[kind]
    report = ImportReport(kind=kind)
    with path.open("r", encoding=encoding, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise InvalidInput(f"{path.name} has no header row", field="file")
        columns = [h.strip().lstrip("\ufeff") for h in header]
        check_columns(kind, columns)
        convert = {"customers": customer_item, "orders": order_item, "events": event_item}[kind]
        size = path.stat().st_size
        bar = click.progressbar(length=size, label=f"导入 {kind}", file=sys.stderr) if progress else None
        try:
            for chunk in chunks(reader, CHUNK_ROWS):
                items, lines, column_maps = [], [], []
                for line, values in chunk:
                    report.rows += 1
                    row = dict(zip(columns, (v.strip() for v in values), strict=False))
                    if len(values) > len(columns):
                        report.errors.append(ItemError(line, "", f"{len(values)} values for {len(columns)} columns"))
                        continue
                    try:
                        item, column_map = convert(row)
                    except InvalidInput as exc:
                        report.errors.append(ItemError(line, exc.field or "", exc.message))
                        continue
                    items.append(item)
                    lines.append(line)
                    column_maps.append(column_map)
                if items:
                    result = store(workspace, items, source="import")
                    report.accepted += result.accepted
                    report.duplicates += result.duplicates
                    for error in result.errors:
                        report.errors.append(
                            ItemError(
                                lines[error.index], to_column(error.field, column_maps[error.index]), error.message
                            )
                        )
                if bar is not None:
                    bar.update(fh.buffer.tell() - bar.pos)
        finally:
            if bar is not None:
                bar.render_finish()
    report.errors.sort(key=lambda e: e.index)
    return report


def detect_encoding(path: Path) -> str:
    """UTF-8 (BOM or not) if the whole file decodes as UTF-8, else GB18030 (a superset of GBK)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as fh:
        try:
            while block := fh.read(1 << 20):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "gb18030"
    return "utf-8-sig"


def check_columns(kind: str, columns: list[str]) -> None:
    prefix = PREFIXES[kind]
    unknown = [
        c for c in columns if c not in KNOWN[kind] and not (prefix and c.startswith(prefix) and len(c) > len(prefix))
    ]
    if unknown:
        extra = f", and {prefix}<key> columns" if prefix else ""
        raise InvalidInput(
            f"unknown column(s) {', '.join(unknown)} for a {kind} import; known columns: "
            f"{', '.join(sorted(KNOWN[kind]))}{extra}",
            field="header",
        )
    if len(set(columns)) != len(columns):
        raise InvalidInput("the header repeats a column name", field="header")


def chunks(reader: Iterator[list[str]], size: int) -> Iterator[list[tuple[int, list[str]]]]:
    batch: list[tuple[int, list[str]]] = []
    for values in reader:
        line = reader.line_num  # physical line where the row ends; equals the row's line without embedded newlines
        if not any(v.strip() for v in values):
            continue
        batch.append((line, values))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def to_column(field_path: str, column_map: dict[str, str]) -> str:
    """Map an item field path (e.g. ``identities.1.value``) back to the CSV column it came from."""
    for prefix, column in sorted(column_map.items(), key=lambda kv: -len(kv[0])):
        if field_path == prefix or field_path.startswith(prefix + "."):
            return column
    return field_path


def identities_of(row: dict[str, str]) -> tuple[list[dict[str, str]], dict[str, str]]:
    identities, column_map = [], {}
    for column in IDENTITY_COLUMNS:
        value = row.get(column, "")
        if not value:
            continue
        identity = {"type": column, "value": value}
        if column == "wechat_openid":
            identity["app_id"] = row.get("wechat_app_id", "")
        column_map[f"identities.{len(identities)}"] = column
        identities.append(identity)
    return identities, column_map


def customer_item(row: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    identities, column_map = identities_of(row)
    if not identities:
        raise InvalidInput(f"a customer needs at least one of {', '.join(IDENTITY_COLUMNS)}", field="identities")
    item: dict[str, Any] = {"identities": identities}
    for column in ("name", "province", "city", "source_channel", "source_detail", "store_code", "owner_wecom_userid"):
        if row.get(column):
            item[column] = row[column]
    gender = row.get("gender", "").lower()
    if gender:
        if gender not in GENDERS:
            raise InvalidInput(f"gender '{row['gender']}' is not 男/女/m/f", field="gender")
        item["gender"] = GENDERS[gender]
    if row.get("birthday"):
        item["birthday"] = row["birthday"]
    if row.get("tags"):
        item["tags"] = [t.strip() for t in TAG_SEPARATORS.split(row["tags"]) if t.strip()]
    attributes = {key[5:]: value for key, value in row.items() if key.startswith("attr.") and value != ""}
    if attributes:
        item["attributes"] = attributes
    column_map.update({name: name for name in item if name != "identities"})
    return item, column_map


def customer_ref(row: dict[str, str], item: dict[str, Any], column_map: dict[str, str]) -> None:
    if row.get("customer_id"):
        item["customer_id"] = parse_int(row["customer_id"], "customer_id")
        column_map["customer_id"] = "customer_id"
        return
    identities, identity_columns = identities_of(row)
    if not identities:
        raise InvalidInput(
            f"name the customer with customer_id or one of {', '.join(IDENTITY_COLUMNS)}", field="customer_id"
        )
    item["identity"] = identities[0]
    column_map["identity"] = identity_columns["identities.0"]


def event_item(row: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    item: dict[str, Any] = {"name": row.get("name", ""), "timestamp": row.get("timestamp", "")}
    column_map = {"name": "name", "timestamp": "timestamp"}
    if row.get("event_id"):
        item["event_id"] = row["event_id"]
        column_map["event_id"] = "event_id"
    properties = {key[5:]: value for key, value in row.items() if key.startswith("prop.") and value != ""}
    if properties:
        item["properties"] = properties
    customer_ref(row, item, column_map)
    return item, column_map


def order_item(row: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    item: dict[str, Any] = {"order_no": row.get("order_no", ""), "paid_at": row.get("paid_at", "")}
    column_map = {"order_no": "order_no", "paid_at": "paid_at"}
    status = row.get("status", "").lower()
    if status:
        if status not in STATUSES:
            raise InvalidInput(f"status '{row['status']}' is not paid/refunded (已支付/已退款)", field="status")
        item["status"] = STATUSES[status]
    for name in ("total", "discount", "paid", "refund"):
        if row.get(f"{name}_fen"):
            item[f"{name}_fen"] = parse_int(row[f"{name}_fen"], f"{name}_fen")
            column_map[f"{name}_fen"] = f"{name}_fen"
        elif row.get(name):
            item[f"{name}_fen"] = yuan_to_fen(row[name], name)
            column_map[f"{name}_fen"] = name
    if "total_fen" not in item:
        raise InvalidInput("an order needs total (yuan) or total_fen", field="total")
    for column in ("currency", "refunded_at", "store_code", "channel"):
        if row.get(column):
            item[column] = row[column]
            column_map[column] = column
    if row.get("items"):
        try:
            item["items"] = json.loads(row["items"])
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"items is not JSON: {exc.msg}", field="items") from None
        column_map["items"] = "items"
    elif row.get("sku") or row.get("product_name"):
        line: dict[str, Any] = {
            "sku": row.get("sku", ""),
            "name": row.get("product_name", ""),
            "category": row.get("category", ""),
        }
        if row.get("quantity"):
            line["quantity"] = parse_int(row["quantity"], "quantity")
        if row.get("price"):
            line["price_fen"] = yuan_to_fen(row["price"], "price")
        item["items"] = [line]
        column_map["items"] = "sku"
    customer_ref(row, item, column_map)
    return item, column_map


def parse_int(text: str, column: str) -> int:
    try:
        return int(text.replace(",", ""))
    except ValueError:
        raise InvalidInput(f"'{text}' is not a whole number", field=column) from None


def yuan_to_fen(text: str, column: str) -> int:
    """'199.90' → 19990, exactly (no float rounding); more than two decimals is an error."""
    try:
        amount = Decimal(text.replace(",", "").replace("¥", "").replace("￥", ""))
    except InvalidOperation:
        raise InvalidInput(f"'{text}' is not an amount in yuan", field=column) from None
    fen = amount * 100
    if fen != fen.to_integral_value() or not amount.is_finite():
        raise InvalidInput(f"'{text}' has more than two decimals", field=column)
    return int(fen)
