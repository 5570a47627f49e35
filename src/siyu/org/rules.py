"""Who sees what: pure rules from a role to a data scope. No database here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from siyu.org.models import Role

ScopeKind = Literal["all", "units", "staff"]

# Roles that see the whole workspace (HQ); the others see a slice.
WORKSPACE_WIDE_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.OPERATOR, Role.ANALYST})
# Roles that always see phone numbers and emails unmasked.
PII_ROLES = frozenset({Role.OWNER, Role.ADMIN})
# Roles that may manage the org tree, staff and API keys.
ADMIN_ROLES = frozenset({Role.OWNER, Role.ADMIN})


@dataclass(frozen=True)
class Scope:
    """The slice of a workspace an actor may see.

    ``all``: everyone (HQ roles, API keys); ``units``: customers of stores at or
    below ``unit_path``; ``staff``: the customers one staff member owns or is friends with.
    """

    workspace_id: int
    kind: ScopeKind
    role: str
    can_view_pii: bool
    unit_path: str = ""
    staff_id: int | None = None
    can_admin: bool = False


def scope_for(
    *,
    workspace_id: int,
    role: str,
    can_view_pii: bool,
    unit_path: str | None,
    staff_id: int | None,
    is_superuser: bool = False,
) -> Scope:
    pii = can_view_pii or role in PII_ROLES or is_superuser
    admin = role in ADMIN_ROLES or is_superuser
    if role in WORKSPACE_WIDE_ROLES or is_superuser:
        return Scope(workspace_id, "all", role, pii, can_admin=admin)
    if role == Role.STORE_MANAGER and unit_path:
        return Scope(workspace_id, "units", role, pii, unit_path=unit_path, can_admin=admin)
    if role == Role.STAFF and staff_id is not None:
        return Scope(workspace_id, "staff", role, pii, staff_id=staff_id, can_admin=admin)
    # A misconfigured membership (manager without a unit, clerk without a staff
    # record) sees nothing rather than everything.
    return Scope(workspace_id, "staff", role, pii, staff_id=-1, can_admin=admin)


def api_key_scope(workspace_id: int) -> Scope:
    return Scope(workspace_id, "all", "api", can_view_pii=True, can_admin=False)


def mask_phone(value: str) -> str:
    """138****5678: keep the carrier prefix and last four digits."""
    digits = value.strip()
    if len(digits) >= 7:
        return f"{digits[:3]}****{digits[-4:]}"
    return "****"


def mask_email(value: str) -> str:
    local, _, domain = value.partition("@")
    if not domain:
        return "****"
    return f"{local[:1]}***@{domain}"


def mask_identity(identity_type: str, value: str) -> str:
    if identity_type == "phone":
        return mask_phone(value)
    if identity_type == "email":
        return mask_email(value)
    return value
