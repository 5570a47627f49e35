"""Layers: RFM scores and cells, value tier, lifecycle stage and the 1-9-90 community tier,
recomputed for a whole workspace in SQL (no Python loop over customers).

``recompute_layers`` runs in one transaction:

1. lock the workspace's ``LayerSettings`` row, so two recomputes of one workspace queue up;
2. compute every live customer's new layer row into a temporary table (one statement:
   aggregates of paid orders, events and incoming messages, ranked with window functions);
3. record the customers whose layer values differ from the stored ones (or who had none)
   and mark them for segment re-evaluation (``customers_customerchange``);
4. update the stored rows, insert the missing ones, and delete rows of merged customers;
5. count each layer value for the report.

Days are whole local days in the workspace's time zone. "Today" and the window starts are
computed here in Python and passed in as UTC instants; SQL only subtracts timestamps in
seconds, which SQLite and PostgreSQL do alike. ``days since`` a timestamp is
``(seconds until the next local midnight - 1) // 86400``: exact for zones without daylight
saving time (Asia/Shanghai); around a DST change it can be one day off for events within an
hour of midnight.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field, fields
from zoneinfo import ZoneInfo

from django.db import connection, transaction

from siyu.core import clock
from siyu.core.sql import adapt
from siyu.customers.services import mark_changed_where
from siyu.org.models import Workspace
from siyu.org.services import audit
from siyu.segments import layer_rules as lr
from siyu.segments.models import LayerSettings

LAYER_COLUMNS = (
    "customer_id",
    "workspace_id",
    "recency_days",
    "frequency",
    "monetary_fen",
    "r_score",
    "f_score",
    "m_score",
    "rfm_cell",
    "lifecycle",
    "value_tier",
    "community_score",
    "community_tier",
    "computed_at",
)
# What segment rules can test: a change in any of these re-evaluates the customer.
RULE_COLUMNS = (
    "r_score",
    "f_score",
    "m_score",
    "rfm_cell",
    "lifecycle",
    "value_tier",
    "community_score",
    "community_tier",
)
NEW_TABLE = "siyu_layer_new"
# A first recompute of a big workspace fills the table: refresh the planner's statistics.
ANALYZE_AFTER_INSERTS = 10_000
CHANGED_TABLE = "siyu_layer_changed"


@dataclass(frozen=True)
class LayerReport:
    workspace_id: int
    computed_at: dt.datetime
    customers: int
    changed: int
    seconds: float
    rfm_cells: dict[str, int] = field(default_factory=dict)
    lifecycles: dict[str, int] = field(default_factory=dict)
    value_tiers: dict[str, int] = field(default_factory=dict)
    community_tiers: dict[str, int] = field(default_factory=dict)


def layer_settings(workspace: Workspace) -> LayerSettings:
    settings, _ = LayerSettings.objects.get_or_create(workspace=workspace)
    return settings


def current_thresholds(workspace: Workspace) -> lr.Thresholds:
    """The workspace's thresholds, or the defaults when none were saved (reads only)."""
    return thresholds_of(LayerSettings.objects.filter(workspace=workspace).first() or LayerSettings())


def thresholds_of(settings: LayerSettings) -> lr.Thresholds:
    return lr.Thresholds(**{f.name: getattr(settings, f.name) for f in fields(lr.Thresholds)})


@transaction.atomic
def update_layer_settings(workspace: Workspace, values: lr.Thresholds, *, user=None) -> LayerSettings:
    """Store new thresholds (validated); they take effect at the next recompute."""
    lr.check_thresholds(values)
    settings = layer_settings(workspace)
    for f in fields(lr.Thresholds):
        setattr(settings, f.name, getattr(values, f.name))
    settings.save()
    audit(workspace=workspace, action="layers.settings", user=user, details=values.__dict__)
    return settings


def local_midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(dt.UTC)


def recompute_layers(workspace: Workspace, *, now: dt.datetime | None = None) -> LayerReport:
    """Recompute every live customer's layers in the workspace (see the module docstring)."""
    started = time.perf_counter()
    now = now or clock.now()
    with transaction.atomic():
        settings = layer_settings(workspace)
        settings = LayerSettings.objects.select_for_update().get(pk=settings.pk)
        thresholds = thresholds_of(settings)
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # The planner's row estimates for these CTEs are far off, which makes JIT compile the
                # query for seconds; the work itself is a few sorts and hash joins that need no JIT.
                cursor.execute("SET LOCAL jit = off")
                # Three rank sorts and several aggregates over every customer: with the default
                # 4 MB they spill to disk (measured: the main query takes half as long with this).
                cursor.execute("SET LOCAL work_mem = '256MB'")
            for table in (NEW_TABLE, CHANGED_TABLE):
                cursor.execute(f"DROP TABLE IF EXISTS {table}")
            sql, params = new_layers_sql(workspace, thresholds, now)
            cursor.execute(f"CREATE TEMPORARY TABLE {NEW_TABLE} AS {sql}", params)
            if connection.vendor == "postgresql":
                # Fresh temp tables have no statistics; the joins below need the row count.
                cursor.execute(f"ANALYZE {NEW_TABLE}")
            differs = " OR ".join(f"l.{col} <> n.{col}" for col in RULE_COLUMNS)
            cursor.execute(
                f"CREATE TEMPORARY TABLE {CHANGED_TABLE} AS SELECT n.customer_id, l.customer_id IS NULL AS missing "
                f"FROM {NEW_TABLE} n "
                f"LEFT JOIN segments_customerlayer l ON l.customer_id = n.customer_id "
                f"WHERE l.customer_id IS NULL OR {differs}"
            )
            if connection.vendor == "postgresql":
                cursor.execute(f"ANALYZE {CHANGED_TABLE}")
            cursor.execute(f"SELECT COUNT(*) FROM {CHANGED_TABLE}")
            changed = cursor.fetchone()[0]
            if changed:
                mark_changed_where(workspace.pk, f"c.id IN (SELECT customer_id FROM {CHANGED_TABLE})", [])
            # An UPDATE joined to the new rows, then a plain INSERT of the missing ones: both are
            # set-based joins, where INSERT ... ON CONFLICT DO UPDATE probes the key row by row
            # (three times slower on PostgreSQL). Concurrent recomputes are serialised above.
            sets = ", ".join(f"{col} = n.{col}" for col in LAYER_COLUMNS if col != "customer_id")
            cursor.execute(
                f"UPDATE segments_customerlayer SET {sets} FROM {NEW_TABLE} n "
                "WHERE segments_customerlayer.customer_id = n.customer_id"
            )
            # The missing rows were found above; a NOT EXISTS against the table being filled would
            # let PostgreSQL re-scan a heap it still believes empty for every row.
            columns = ", ".join(f"n.{col}" for col in LAYER_COLUMNS)
            cursor.execute(
                f"INSERT INTO segments_customerlayer ({', '.join(LAYER_COLUMNS)}) SELECT {columns} "
                f"FROM {NEW_TABLE} n JOIN {CHANGED_TABLE} ch ON ch.customer_id = n.customer_id WHERE ch.missing"
            )
            if connection.vendor == "postgresql" and cursor.rowcount > ANALYZE_AFTER_INSERTS:
                cursor.execute("ANALYZE segments_customerlayer")
            cursor.execute(
                "DELETE FROM segments_customerlayer WHERE workspace_id = %s AND customer_id IN "
                "(SELECT id FROM customers_customer WHERE workspace_id = %s AND merged_into_id IS NOT NULL)",
                [workspace.pk, workspace.pk],
            )
            cursor.execute(
                " UNION ALL ".join(
                    f"SELECT '{col}', {col}, COUNT(*) FROM {NEW_TABLE} GROUP BY {col}"
                    for col in ("rfm_cell", "lifecycle", "value_tier", "community_tier")
                )
            )
            counts: dict[str, dict[str, int]] = {}
            for column, value, count in cursor.fetchall():
                counts.setdefault(column, {})[value] = count
            for table in (NEW_TABLE, CHANGED_TABLE):
                cursor.execute(f"DROP TABLE {table}")
    lifecycles = counts.get("lifecycle", {})
    return LayerReport(
        workspace_id=workspace.pk,
        computed_at=now,
        customers=sum(lifecycles.values()),
        changed=changed,
        seconds=time.perf_counter() - started,
        rfm_cells={k: v for k, v in counts.get("rfm_cell", {}).items() if k},
        lifecycles=lifecycles,
        value_tiers={k: v for k, v in counts.get("value_tier", {}).items() if k},
        community_tiers=counts.get("community_tier", {}),
    )


def new_layers_sql(workspace: Workspace, t: lr.Thresholds, now: dt.datetime) -> tuple[str, dict]:
    """One SELECT producing a full ``segments_customerlayer`` row per live customer."""
    pg = connection.vendor == "postgresql"
    zone = ZoneInfo(workspace.time_zone)
    today = now.astimezone(zone).date()

    def instant(name: str) -> str:
        return f"%({name})s::timestamptz" if pg else f"%({name})s"

    def days_since(column: str) -> str:
        # Whole local days before today; future times count as today.
        if pg:
            seconds = f"CEIL(EXTRACT(EPOCH FROM ({instant('midnight')} - {column})))::bigint"
            return f"GREATEST(({seconds} - 1) / 86400, 0)"
        seconds = (
            f"(CAST(strftime('%%s', {instant('midnight')}) AS INTEGER) - CAST(strftime('%%s', {column}) AS INTEGER))"
        )
        return f"MAX(({seconds} - 1) / 86400, 0)"

    group_role = "c.attributes ->> 'group_role'" if pg else "json_extract(c.attributes, '$.group_role')"
    invites = ", ".join(f"'{name}'" for name in lr.INVITE_EVENTS)
    shares = ", ".join(f"'{name}'" for name in lr.SHARE_EVENTS)
    seeds, top = lr.pyramid_cuts_sql("(SELECT COUNT(*) FROM live)")
    sql = f"""
    WITH live AS (
        SELECT c.id,
            {days_since("COALESCE(c.first_seen_at, c.created_at)")} AS seen_first_days,
            {days_since("COALESCE(c.last_seen_at, c.first_seen_at, c.created_at)")} AS seen_last_days,
            {group_role} AS group_role
        FROM customers_customer c WHERE c.workspace_id = %(ws)s AND c.merged_into_id IS NULL
    ),
    paid AS (
        SELECT o.customer_id, MIN(o.paid_at) AS first_paid, MAX(o.paid_at) AS last_paid,
            SUM(CASE WHEN o.paid_at >= {instant("rfm_start")} THEN 1 ELSE 0 END) AS frequency,
            SUM(CASE WHEN o.paid_at >= {instant("rfm_start")} THEN o.paid_fen - o.refund_fen ELSE 0 END) AS monetary
        FROM tracking_order o WHERE o.workspace_id = %(ws)s AND o.status = 'paid'
        GROUP BY o.customer_id
    ),
    bought AS (
        SELECT p.customer_id, p.frequency, p.monetary,
            {days_since("p.first_paid")} AS first_days, {days_since("p.last_paid")} AS recency_days
        FROM paid p JOIN live ON live.id = p.customer_id
    ),
    scored AS (
        SELECT customer_id,
            {lr.quintile_sql("RANK() OVER (ORDER BY recency_days DESC)", "COUNT(*) OVER ()")} AS r_score,
            {lr.quintile_sql("RANK() OVER (ORDER BY frequency)", "COUNT(*) OVER ()")} AS f_score,
            {lr.quintile_sql("RANK() OVER (ORDER BY monetary)", "COUNT(*) OVER ()")} AS m_score
        FROM bought WHERE frequency > 0
    ),
    acts AS (
        SELECT e.customer_id,
            SUM(CASE WHEN e.name IN ({invites}) THEN 1 ELSE 0 END) AS invites,
            SUM(CASE WHEN e.name IN ({shares}) THEN 1 ELSE 0 END) AS shares,
            0 AS messages
        FROM tracking_event e
        WHERE e.workspace_id = %(ws)s AND e.name IN ({invites}, {shares}) AND e.occurred_at >= {instant("community_start")}
        GROUP BY e.customer_id
        UNION ALL
        SELECT m.customer_id, 0, 0, COUNT(*) FROM conversations_message m
        WHERE m.workspace_id = %(ws)s AND m.direction = 'in' AND m.sent_at >= {instant("community_start")}
        GROUP BY m.customer_id
    ),
    community AS (
        SELECT live.id AS customer_id,
            {lr.community_score_sql("COALESCE(a.invites, 0)", "COALESCE(a.shares, 0)", "COALESCE(a.messages, 0)", "live.group_role")} AS score
        FROM live LEFT JOIN (
            SELECT customer_id, SUM(invites) AS invites, SUM(shares) AS shares, SUM(messages) AS messages
            FROM acts GROUP BY customer_id
        ) a ON a.customer_id = live.id
        WHERE a.customer_id IS NOT NULL OR live.group_role IS NOT NULL
    ),
    placed AS (
        SELECT customer_id, score, ROW_NUMBER() OVER (ORDER BY score DESC, customer_id) AS position
        FROM community WHERE score > 0
    )
    SELECT live.id AS customer_id, %(ws)s AS workspace_id, b.recency_days,
        COALESCE(b.frequency, 0) AS frequency, COALESCE(b.monetary, 0) AS monetary_fen,
        COALESCE(s.r_score, 0) AS r_score, COALESCE(s.f_score, 0) AS f_score, COALESCE(s.m_score, 0) AS m_score,
        {lr.rfm_cell_sql("COALESCE(s.r_score, 0)", "COALESCE(s.f_score, 0)", "COALESCE(s.m_score, 0)")} AS rfm_cell,
        {lifecycle_sql("COALESCE(b.first_days, live.seen_first_days)", "COALESCE(b.recency_days, live.seen_last_days)")}
            AS lifecycle,
        {lr.value_tier_sql("COALESCE(s.m_score, 0)")} AS value_tier,
        COALESCE(p.score, 0) AS community_score,
        CASE WHEN p.position <= {seeds} THEN 'seed' WHEN p.position <= {top} THEN 'koc' ELSE 'ordinary' END
            AS community_tier,
        {instant("now")} AS computed_at
    FROM live
    LEFT JOIN bought b ON b.customer_id = live.id
    LEFT JOIN scored s ON s.customer_id = live.id
    LEFT JOIN placed p ON p.customer_id = live.id
    """
    params = {
        "ws": workspace.pk,
        "midnight": adapt(local_midnight(today + dt.timedelta(days=1), zone), "datetime"),
        # Windows of N calendar days, today included.
        "rfm_start": adapt(local_midnight(today - dt.timedelta(days=t.rfm_window_days - 1), zone), "datetime"),
        "community_start": adapt(
            local_midnight(today - dt.timedelta(days=t.community_window_days - 1), zone), "datetime"
        ),
        "now": adapt(now, "datetime"),
        "new_days": t.new_days,
        "active_days": t.active_days,
        "at_risk_days": t.at_risk_days,
        "dormant_days": t.dormant_days,
    }
    return sql, params


def lifecycle_sql(first_days: str, last_days: str) -> str:
    return (
        f"CASE WHEN {first_days} <= %(new_days)s THEN 'new' WHEN {last_days} <= %(active_days)s THEN 'active' "
        f"WHEN {last_days} <= %(at_risk_days)s THEN 'at_risk' WHEN {last_days} <= %(dormant_days)s THEN 'dormant' "
        "ELSE 'churned' END"
    )
