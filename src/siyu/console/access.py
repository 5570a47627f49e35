"""Who is looking: the signed-in user's workspace, membership and data scope.

Every console view goes through ``console_view``: it requires a login, finds the
workspace the user works in (chosen in the session when they have several) and attaches
``request.access``. A user with no membership gets a clear page, not someone else's data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from siyu.org.models import Membership, Role, Workspace
from siyu.org.rules import Scope, scope_for

SESSION_KEY = "siyu_workspace_id"
# Set by the WeCom sidebar sign-in (``workbench.views.wecom_auth``): the workspace the OAuth
# code came through. Such a session had no password, so it sees that workspace only, never in
# an owner / admin role and never with superuser powers.
OAUTH_WORKSPACE_KEY = "siyu_oauth_workspace"


@dataclass(frozen=True)
class Access:
    workspace: Workspace
    role: str
    scope: Scope
    memberships: tuple[Membership, ...]

    @property
    def can_admin(self) -> bool:
        return self.scope.can_admin

    @property
    def can_review_conflicts(self) -> bool:
        return self.scope.kind == "all" and self.role in (Role.OWNER, Role.ADMIN, Role.OPERATOR)

    @property
    def role_label(self) -> str:
        return Role(self.role).label if self.role in Role.values else self.role


def resolve_access(request: HttpRequest) -> Access | None:
    user = request.user
    rows = Membership.objects.filter(user=user)
    oauth_workspace = request.session.get(OAUTH_WORKSPACE_KEY)
    if oauth_workspace is not None:
        rows = rows.filter(workspace_id=oauth_workspace).exclude(role__in=(Role.OWNER, Role.ADMIN))
    memberships = tuple(rows.select_related("workspace", "org_unit", "staff").order_by("workspace_id"))
    wanted = request.session.get(SESSION_KEY)
    chosen = next((m for m in memberships if m.workspace_id == wanted), memberships[0] if memberships else None)
    if chosen is None:
        if not user.is_superuser or oauth_workspace is not None:
            return None
        workspace = Workspace.objects.filter(pk=wanted).first() or Workspace.objects.order_by("pk").first()
        if workspace is None:
            return None
        scope = scope_for(
            workspace_id=workspace.pk,
            role=Role.OWNER,
            can_view_pii=True,
            unit_path=None,
            staff_id=None,
            is_superuser=True,
        )
        return Access(workspace, Role.OWNER, scope, memberships)
    scope = scope_for(
        workspace_id=chosen.workspace_id,
        role=chosen.role,
        can_view_pii=chosen.can_view_pii,
        unit_path=chosen.org_unit.path if chosen.org_unit_id else None,
        staff_id=chosen.staff_id,
        is_superuser=user.is_superuser and oauth_workspace is None,
    )
    return Access(chosen.workspace, chosen.role, scope, memberships)


def console_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        access = resolve_access(request)
        if access is None:
            return render(request, "console/no_workspace.html", status=403)
        request.access = access
        return view(request, *args, **kwargs)

    return wrapper


def admin_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Org tree, staff and API keys: owners and admins only."""

    @console_view
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.access.can_admin:
            return render(request, "console/forbidden.html", status=403)
        return view(request, *args, **kwargs)

    return wrapper
