"""The shape of message and risk-rule input, shared by the API and the console."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator, model_validator

from siyu.core.limits import MAX_ID, clean_words, no_nul
from siyu.tracking.schemas import CustomerRef

MAX_TEXT = 10_000


class MessageItem(CustomerRef):
    """One archived chat message. ``external_msgid`` (WeCom msgaudit msgid) makes replays harmless."""

    staff_id: StrictInt | None = Field(default=None, ge=1, le=MAX_ID)
    staff_wecom_userid: StrictStr | None = Field(default=None, min_length=1, max_length=64)
    direction: Literal["in", "out"] = Field(description="`in`: the customer wrote it; `out`: staff wrote it")
    msg_type: Literal["text", "image", "voice", "link", "miniprogram", "file"] = "text"
    text: StrictStr = Field(default="", max_length=MAX_TEXT)
    sent_at: StrictStr = Field(max_length=40, description="ISO 8601; without an offset, the workspace's time zone")
    external_msgid: StrictStr | None = Field(default=None, min_length=1, max_length=100)

    @model_validator(mode="after")
    def one_staff(self) -> MessageItem:
        if self.staff_id is not None and self.staff_wecom_userid is not None:
            raise ValueError("name the staff member by staff_id or staff_wecom_userid, not both")
        return self


class RiskRuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: StrictStr = Field(min_length=1, max_length=100)
    category: Literal["private_payment", "competitor", "abuse", "other"] = "other"
    words: list[StrictStr] = Field(min_length=1, max_length=500)
    active: StrictBool = True

    @field_validator("name")
    @classmethod
    def name_ok(cls, value: str) -> str:
        return no_nul(value)

    @field_validator("words")
    @classmethod
    def words_ok(cls, value: list[str]) -> list[str]:
        return clean_words(value, "words")
