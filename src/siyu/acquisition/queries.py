"""Read side of channel codes: who sees and manages which code, and the per-code report."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import connection
from django.db.models import Q, QuerySet

from siyu.acquisition.models import ChannelCode
from siyu.core import clock
from siyu.core.errors import NotFound, PermissionDenied
from siyu.org.models import Role, Workspace
from siyu.org.rules import Scope

# HQ roles that create and change codes everywhere; analysts only read.
HQ_MANAGERS = frozenset({Role.OWNER, Role.ADMIN, Role.OPERATOR})
RETENTION_DAYS = (7, 30)


def visible_codes(workspace: Workspace, scope: Scope) -> QuerySet[ChannelCode]:
    """HQ sees every code; a store manager the codes of stores in their unit (or staffed by
    their people); a clerk the codes they are on."""
    codes = ChannelCode.objects.filter(workspace=workspace)
    if scope.kind == "all":
        return codes
    if scope.kind == "units":
        mine = Q(store__path__startswith=scope.unit_path) | Q(
            staff_entries__staff__org_unit__path__startswith=scope.unit_path
        )
        return codes.filter(pk__in=codes.filter(mine).values("pk"))
    return codes.filter(pk__in=codes.filter(staff_entries__staff_id=scope.staff_id).values("pk"))


def can_manage(scope: Scope, code: ChannelCode | None = None) -> bool:
    """May this actor create codes (``code`` None) or change this one?"""
    if scope.kind == "all":
        return scope.role in HQ_MANAGERS or scope.can_admin
    if scope.kind == "units" and scope.role == Role.STORE_MANAGER:
        return code is None or (code.store is not None and code.store.path.startswith(scope.unit_path))
    return False


def access_code(workspace: Workspace, scope: Scope, code_id: int, *, manage: bool = False) -> ChannelCode:
    code = visible_codes(workspace, scope).filter(pk=code_id).select_related("store", "workspace").first()
    if code is None:
        raise NotFound("活码不存在 / no such channel code", field="code_id")
    if manage and not can_manage(scope, code):
        raise PermissionDenied("无权修改此活码 / you may not change this code")
    return code


@dataclass(frozen=True)
class CodeReport:
    code_id: int
    adds: int
    customers: int
    customers_total: int  # all time: what the cost is spread over
    retained: dict[int, int | None]  # days -> customers still friends N days after the add
    eligible: dict[int, int]  # days -> customers whose add is at least N days old
    converted: int  # customers with a paid order after their add
    cost_fen: int

    def retention(self, days: int) -> float | None:
        eligible = self.eligible[days]
        return None if not eligible else (self.retained[days] or 0) / eligible

    @property
    def cost_per_customer_fen(self) -> int | None:
        return None if not self.customers_total else round(self.cost_fen / self.customers_total)

    @property
    def conversion(self) -> float | None:
        return None if not self.customers else self.converted / self.customers


def _plus_days(column: str, days: int) -> str:
    if connection.vendor == "postgresql":
        return f"{column} + interval '{int(days)} days'"
    return f"datetime({column}, '+{int(days)} days')"


def _after(left: str, right: str) -> str:
    # SQLite keeps datetimes as text: compare them as Julian days, not as strings.
    if connection.vendor == "postgresql":
        return f"{left} >= {right}"
    return f"julianday({left}) >= julianday({right})"


def _retained(days: int) -> str:
    """The add's customer was still there ``days`` after the add: the WeCom friendship with the
    adding staff member (or, for an OA code, the follow) was active then."""
    due = _plus_days("a.at", days)
    return (
        "(EXISTS (SELECT 1 FROM customers_staffrelation r WHERE r.customer_id = a.customer_id "
        f"AND r.staff_id = a.staff_id AND (r.status = 'active' OR {_after('r.status_changed_at', due)}))"
        " OR (a.staff_id IS NULL AND EXISTS (SELECT 1 FROM customers_officialaccountfollow f "
        f"WHERE f.customer_id = a.customer_id AND (f.subscribed = %s OR {_after('f.unsubscribed_at', due)}))))"
    )


def report(
    workspace: Workspace,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    now: dt.datetime | None = None,
    code_ids: list[int] | None = None,
) -> dict[int, CodeReport]:
    """Per code, in one grouped query: adds and unique customers in ``[start, end)``,
    retention after 7 and 30 days (among those adds at least that old at ``now``), paid
    first-order conversion after the add, and cost per customer (the code's cost over all the
    customers it ever brought)."""
    now = now or clock.now()
    adapt = connection.ops.adapt_datetimefield_value
    join = ""
    params: list = []
    if start is not None:
        join += " AND a.at >= %s"
        params.append(adapt(start))
    if end is not None:
        join += " AND a.at < %s"
        params.append(adapt(end))
    columns = []
    select_params: list = []
    for days in RETENTION_DAYS:
        cut = adapt(now - dt.timedelta(days=days))
        columns.append(f"COUNT(DISTINCT CASE WHEN a.at <= %s THEN a.customer_id END) AS eligible_{days}")
        columns.append(
            f"COUNT(DISTINCT CASE WHEN a.at <= %s AND {_retained(days)} THEN a.customer_id END) AS retained_{days}"
        )
        select_params += [cut, cut, True]
    where = "c.workspace_id = %s"
    where_params: list = [workspace.pk]
    if code_ids is not None:
        if not code_ids:
            return {}
        where += f" AND c.id IN ({', '.join(['%s'] * len(code_ids))})"
        where_params += list(code_ids)
    sql = f"""
        SELECT c.id, c.cost_fen, COUNT(a.id) AS adds, COUNT(DISTINCT a.customer_id) AS customers,
               (SELECT COUNT(DISTINCT t.customer_id) FROM acquisition_channelcodeadd t WHERE t.code_id = c.id),
               {", ".join(columns)},
               COUNT(DISTINCT CASE WHEN EXISTS (
                   SELECT 1 FROM tracking_order o WHERE o.workspace_id = c.workspace_id
                   AND o.customer_id = a.customer_id AND o.paid_at >= a.at
               ) THEN a.customer_id END) AS converted
        FROM acquisition_channelcode c
        LEFT JOIN acquisition_channelcodeadd a ON a.code_id = c.id{join}
        WHERE {where}
        GROUP BY c.id, c.cost_fen
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [*select_params, *params, *where_params])
        rows = cursor.fetchall()
    out = {}
    for row in rows:
        code_id, cost, adds, customers, total = row[:5]
        figures = row[5:]
        eligible = {d: int(figures[2 * i]) for i, d in enumerate(RETENTION_DAYS)}
        retained = {d: int(figures[2 * i + 1]) for i, d in enumerate(RETENTION_DAYS)}
        out[code_id] = CodeReport(
            code_id, int(adds), int(customers), int(total), retained, eligible, int(figures[-1]), int(cost)
        )
    return out
