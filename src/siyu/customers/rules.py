"""OneID rules: identity normalisation, which identity types a person holds only one of,
and how to pick a survivor when profiles merge. Pure functions, no database."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from siyu.core.errors import InvalidInput

IDENTITY_TYPES = (
    "phone",
    "email",
    "wecom_external_userid",
    "wechat_unionid",
    "wechat_openid",
    "app_user_id",
    "member_no",
    "anonymous_id",
)
# A person has at most one value of these (per app for openids). Two profiles
# holding different values of one of them are never merged automatically.
UNIQUE_TYPES = frozenset({"wecom_external_userid", "wechat_unionid", "wechat_openid", "app_user_id", "member_no"})
# Only these ever need an app id.
APP_SCOPED_TYPES = frozenset({"wechat_openid"})

_PHONE_CN = re.compile(r"^1[3-9]\d{9}$")
_PHONE_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SEPARATORS = re.compile(r"[\s\-()]")
MAX_VALUE_LENGTH = 200


@dataclass(frozen=True, order=True)
class IdentityKey:
    type: str
    app_id: str
    value: str

    @property
    def slot(self) -> tuple[str, str]:
        """The "one value per person" slot this identity fills, if its type is unique."""
        return (self.type, self.app_id)

    @property
    def is_unique_type(self) -> bool:
        return self.type in UNIQUE_TYPES


def normalize_phone(raw: str) -> str:
    """Mainland numbers become 11 digits (``+86``/``0086`` dropped); others stay E.164."""
    value = _SEPARATORS.sub("", raw)
    if value.startswith("0086"):
        value = value[4:]
    elif value.startswith("+86"):
        value = value[3:]
    elif value.startswith("86") and len(value) == 13:
        value = value[2:]
    if _PHONE_CN.match(value) or _PHONE_E164.match(value):
        return value
    raise InvalidInput(f"'{raw}' is not a valid phone number (11-digit mainland number or +E.164)")


def normalize_identity(type_: str, value: object, app_id: object = "") -> IdentityKey:
    """Validate and canonicalise one identity; raises InvalidInput naming the bad part."""
    if type_ not in IDENTITY_TYPES:
        raise InvalidInput(
            f"unknown identity type '{type_}'; expected one of {', '.join(IDENTITY_TYPES)}", field="type"
        )
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("identity value must be a non-empty string", field="value")
    text = value.strip()
    if len(text) > MAX_VALUE_LENGTH:
        raise InvalidInput(f"identity value is longer than {MAX_VALUE_LENGTH} characters", field="value")
    app = (app_id or "").strip() if isinstance(app_id, str) else ""
    if type_ in APP_SCOPED_TYPES:
        if not app:
            raise InvalidInput("wechat_openid needs the app_id of its Official Account or mini program", field="app_id")
    elif app:
        raise InvalidInput(f"app_id is only allowed for wechat_openid, not {type_}", field="app_id")
    if type_ == "phone":
        try:
            text = normalize_phone(text)
        except InvalidInput as exc:
            raise InvalidInput(exc.message, field="value") from None
    elif type_ == "email":
        text = text.lower()
        if not _EMAIL.match(text):
            raise InvalidInput(f"'{value}' is not a valid email address", field="value")
    return IdentityKey(type_, app, text)


def is_anonymous_only(keys: Iterable[IdentityKey]) -> bool:
    """A profile known only by anonymous/device ids always folds into an identified one."""
    return all(key.type == "anonymous_id" for key in keys)


def unique_clashes(a: Iterable[IdentityKey], b: Iterable[IdentityKey]) -> list[tuple[IdentityKey, IdentityKey]]:
    """Pairs of identities in the same unique slot with different values: why a and b may not merge."""
    slots: dict[tuple[str, str], set[IdentityKey]] = {}
    for key in a:
        if key.is_unique_type:
            slots.setdefault(key.slot, set()).add(key)
    clashes = []
    for key in b:
        if key.is_unique_type:
            for mine in slots.get(key.slot, ()):
                if mine.value != key.value:
                    clashes.append((mine, key))
    return clashes


def survivor_rank(customer_id: int, keys: Iterable[IdentityKey]) -> tuple[int, int]:
    """Sort key: identified profiles before anonymous-only ones, then the oldest (lowest id).

    Pending (not yet stored) profiles carry negative ids and so rank after stored ones
    of the same kind: ``abs`` would reorder them, so stored ids get a 0 prefix.
    """
    return (1 if is_anonymous_only(keys) else 0, customer_id if customer_id > 0 else 10**18 - customer_id)
