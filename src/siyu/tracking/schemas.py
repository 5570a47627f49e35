"""The shape of event and order input, shared by the JSON API and the CSV importer."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, model_validator

from siyu.core.limits import MAX_FEN, MAX_ID
from siyu.customers.schemas import IdentityIn


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CustomerRef(Strict):
    """An item names its customer by ``customer_id`` or by exactly one ``identity``."""

    customer_id: StrictInt | None = Field(default=None, ge=1, le=MAX_ID)
    identity: IdentityIn | None = None

    @model_validator(mode="after")
    def one_customer(self) -> CustomerRef:
        if (self.customer_id is None) == (self.identity is None):
            raise ValueError("name the customer by exactly one of customer_id or identity")
        return self


class EventItem(CustomerRef):
    name: StrictStr = Field(min_length=1, max_length=100)
    timestamp: StrictStr = Field(
        description="ISO 8601; without an offset it is read in the workspace's time zone.", max_length=40
    )
    properties: dict[str, Any] = Field(default_factory=dict)
    event_id: StrictStr | None = Field(default=None, min_length=1, max_length=100)


class OrderLine(Strict):
    sku: StrictStr = Field(default="", max_length=64)
    name: StrictStr = Field(default="", max_length=200)
    category: StrictStr = Field(default="", max_length=64)
    quantity: StrictInt = Field(default=1, ge=1, le=1_000_000)
    price_fen: StrictInt = Field(default=0, ge=0, le=MAX_FEN)


class OrderItem(CustomerRef):
    order_no: StrictStr = Field(min_length=1, max_length=64)
    status: Literal["paid", "refunded"] = "paid"
    total_fen: StrictInt = Field(ge=0, le=MAX_FEN, description="Amounts are integer fen (分).")
    discount_fen: StrictInt = Field(default=0, ge=0, le=MAX_FEN)
    paid_fen: StrictInt | None = Field(
        default=None, ge=0, le=MAX_FEN, description="Defaults to total_fen - discount_fen."
    )
    refund_fen: StrictInt = Field(default=0, ge=0, le=MAX_FEN)
    currency: StrictStr = Field(default="CNY", min_length=3, max_length=3)
    items: list[OrderLine] = Field(default_factory=list, max_length=200)
    store_code: StrictStr | None = Field(default=None, max_length=64)
    channel: StrictStr = Field(default="", max_length=32)
    paid_at: StrictStr = Field(max_length=40, description="ISO 8601, read like event timestamps.")
    refunded_at: StrictStr | None = Field(default=None, max_length=40)
