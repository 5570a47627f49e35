"""The shape of customer input, shared by the JSON API and the CSV importer.

Items are validated one by one (see ``siyu.core.batch.validate_items``) so a bad
item is reported with its field and the rest of the batch still lands.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from siyu.core.limits import MAX_ID

IdentityTypeName = Literal[
    "phone",
    "email",
    "wecom_external_userid",
    "wechat_unionid",
    "wechat_openid",
    "app_user_id",
    "member_no",
    "anonymous_id",
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class IdentityIn(Strict):
    type: IdentityTypeName
    value: StrictStr = Field(min_length=1, max_length=200)
    app_id: StrictStr = Field(
        default="", max_length=64, description="Only for wechat_openid: the OA / mini program app id."
    )


class CustomerItem(Strict):
    identities: list[IdentityIn] = Field(min_length=1, max_length=20)
    name: StrictStr | None = Field(default=None, max_length=100)
    gender: Literal["", "m", "f"] | None = None
    birthday: dt.date | None = None
    province: StrictStr | None = Field(default=None, max_length=32)
    city: StrictStr | None = Field(default=None, max_length=32)
    attributes: dict[str, Any] | None = None
    source_channel: StrictStr | None = Field(default=None, max_length=32)
    source_detail: StrictStr | None = Field(default=None, max_length=200)
    store_code: StrictStr | None = Field(default=None, max_length=64, description="Code of the owning store.")
    owner_wecom_userid: StrictStr | None = Field(default=None, max_length=64, description="Owning staff member.")
    tags: list[StrictStr] | None = Field(
        default=None, max_length=50, description='Tag names, "group/tag" or just "tag" (group 默认).'
    )


class IdentifyRequest(Strict):
    """Link identities: all of them belong to one person."""

    identities: list[IdentityIn] = Field(min_length=1, max_length=20)
    customer_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="Optionally, a known customer id to link them to."
    )
