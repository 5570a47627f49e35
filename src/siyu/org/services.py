"""Writes for workspaces, org units, staff, memberships and API keys."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from siyu.core import clock
from siyu.core.errors import InvalidInput, NotFound
from siyu.org.models import ApiKey, AuditEntry, Membership, OrgUnit, Role, Workspace

API_KEY_PREFIX = "siyu_"


def get_workspace(slug: str) -> Workspace:
    try:
        return Workspace.objects.get(slug=slug)
    except Workspace.DoesNotExist:
        raise NotFound(f"workspace '{slug}' does not exist", field="workspace") from None


@transaction.atomic
def create_workspace(*, slug: str, name: str, time_zone: str = "Asia/Shanghai") -> Workspace:
    """Create a workspace with its HQ org unit."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,63}", slug):
        raise InvalidInput("slug must be lower-case letters, digits and '-' (up to 64)", field="slug")
    if Workspace.objects.filter(slug=slug).exists():
        raise InvalidInput(f"workspace '{slug}' already exists", field="slug")
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone '{time_zone}'", field="time_zone") from None
    workspace = Workspace.objects.create(slug=slug, name=name, time_zone=time_zone)
    create_org_unit(workspace=workspace, parent=None, kind=OrgUnit.Kind.HQ, name=name)
    return workspace


def create_org_unit(
    *, workspace: Workspace, parent: OrgUnit | None, kind: str, name: str, code: str = "", city: str = ""
) -> OrgUnit:
    if parent is not None and parent.workspace_id != workspace.pk:
        raise InvalidInput("parent belongs to another workspace", field="parent")
    unit = OrgUnit.objects.create(workspace=workspace, parent=parent, kind=kind, name=name, code=code, city=city)
    unit.path = f"{parent.path if parent else '/'}{unit.pk}/"
    unit.save(update_fields=["path"])
    return unit


def hash_api_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


@transaction.atomic
def create_api_key(*, workspace_slug: str, name: str, user: AbstractBaseUser | None = None) -> tuple[ApiKey, str]:
    """Create a key and return it with the raw secret, which is never stored or shown again."""
    workspace = get_workspace(workspace_slug)
    prefix = secrets.token_hex(4)
    raw_key = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        workspace=workspace, name=name or "key", prefix=prefix, key_hash=hash_api_key(raw_key), created_by=user
    )
    AuditEntry.objects.create(
        workspace=workspace, user=user, action="api_key.create", target=f"api_key:{key.pk}", details={"name": name}
    )
    return key, raw_key


def authenticate_api_key(raw_key: str) -> ApiKey | None:
    """The live key for this bearer token, or None. Constant-time compare of the hash."""
    if not raw_key.startswith(API_KEY_PREFIX):
        return None
    prefix = raw_key[len(API_KEY_PREFIX) :].split("_", 1)[0]
    key = ApiKey.objects.select_related("workspace").filter(prefix=prefix, revoked_at__isnull=True).first()
    if key is None or not hmac.compare_digest(key.key_hash, hash_api_key(raw_key)):
        return None
    now = clock.now()
    # Touch at most once a minute: a write per request would serialise the ingestion path.
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key


@transaction.atomic
def revoke_api_key(*, workspace: Workspace, key_id: int, user: AbstractBaseUser | None = None) -> None:
    updated = ApiKey.objects.filter(workspace=workspace, pk=key_id, revoked_at__isnull=True).update(
        revoked_at=clock.now()
    )
    if not updated:
        raise NotFound("API key not found", field="key_id")
    AuditEntry.objects.create(workspace=workspace, user=user, action="api_key.revoke", target=f"api_key:{key_id}")


@dataclass(frozen=True)
class Login:
    username: str
    password: str
    others: tuple[str, ...] = ()


@transaction.atomic
def create_admin(*, username: str, email: str, password: str, workspace_slug: str | None = None) -> None:
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        raise InvalidInput(f"user '{username}' already exists", field="username")
    user = User.objects.create_superuser(username=username, email=email, password=password)
    if workspace_slug:
        workspace = get_workspace(workspace_slug)
        Membership.objects.create(user=user, workspace=workspace, role=Role.OWNER, can_view_pii=True)


def audit(*, workspace: Workspace, action: str, target: str = "", user=None, api_key=None, details=None) -> None:
    AuditEntry.objects.create(
        workspace=workspace, user=user, api_key=api_key, action=action, target=target, details=details or {}
    )
