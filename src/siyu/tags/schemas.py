"""The shape of keyword-rule input, shared by the API and the console form."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator

from siyu.core.limits import MAX_ID, clean_words, no_nul


class KeywordRuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: StrictStr = Field(min_length=1, max_length=100)
    keywords: list[StrictStr] = Field(min_length=1, max_length=500, description="Chinese or Latin words, 1-50 chars")
    match_mode: Literal["contains", "exact"] = Field(
        default="contains", description="`contains`: the word occurs in the message; `exact`: the whole message"
    )
    min_matches: StrictInt = Field(default=1, ge=1, le=1000, description="matching messages needed within the window")
    window_days: StrictInt | None = Field(default=None, ge=1, le=3650, description="null: any time")
    tag_ids: list[StrictInt] = Field(min_length=1, max_length=20)
    active: StrictBool = True

    @field_validator("name")
    @classmethod
    def name_ok(cls, value: str) -> str:
        return no_nul(value)

    @field_validator("keywords")
    @classmethod
    def clean_keywords(cls, value: list[str]) -> list[str]:
        return clean_words(value, "keywords")

    @field_validator("tag_ids")
    @classmethod
    def valid_ids(cls, value: list[int]) -> list[int]:
        if any(not 1 <= v <= MAX_ID for v in value):
            raise ValueError("tag ids are positive 64-bit integers")
        return sorted(set(value))
