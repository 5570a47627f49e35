"""Layers: RFM scores and cells, value tier, lifecycle stage and the 1-9-90 community tier,
recomputed for a whole workspace in SQL (no Python loop over customers).

``recompute_layers`` runs in one transaction:

1. lock the workspace's ``LayerSettings`` row, so two recomputes of one workspace queue up;
2. compute every live customer's new layer row into a temporary table (one statement over
   the day counters ``tracking_orderdaily`` and ``tracking_eventdaily``, which ingestion
   keeps up to date, plus incoming messages; ranked with window functions);
3. record the customers whose rule-visible layer values differ from the stored ones (or who
   had none) and mark them for segment re-evaluation (``customers_customerchange``);
4. update the stored rows whose values differ (a daily recompute changes few), insert the
   missing ones, and delete rows of merged customers;
5. count each layer value for the report and stamp ``LayerSettings.computed_at``.

Days are whole local days in the workspace's time zone. The day counters are already keyed
by local day, so order recency and first order are plain date comparisons; customer times
(first and last seen) and message times are compared with the local midnights of the cut-off
days, computed here in Python. No per-row date arithmetic, and exact across DST changes.
Nothing stored moves by itself from one day to the next: a customer's recency is stored as
the day of their last paid order (``last_order_day``) and read as days before today.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
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
    "last_order_day",
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
# Everything stored that a recompute can change; a row is rewritten only if one of them differs.
VALUE_COLUMNS = ("last_order_day", "frequency", "monetary_fen", *RULE_COLUMNS)
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
    # Stored rows written (updated or inserted): the changed ones plus those whose frequency,
    # amount or last order day moved without changing a score or stage.
    written: int = 0
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
    pg = connection.vendor == "postgresql"
    with transaction.atomic():
        settings = layer_settings(workspace)
        settings = LayerSettings.objects.select_for_update().get(pk=settings.pk)
        thresholds = thresholds_of(settings)
        with connection.cursor() as cursor:
            if pg:
                # The planner's row estimates for these CTEs are far off, which makes JIT compile the
                # query for seconds; the work itself is a few sorts and hash joins that need no JIT.
                cursor.execute("SET LOCAL jit = off")
                # Three rank sorts and several aggregates over every customer: with the default
                # 4 MB they spill to disk.
                cursor.execute("SET LOCAL work_mem = '256MB'")
            for table in (NEW_TABLE, CHANGED_TABLE):
                cursor.execute(f"DROP TABLE IF EXISTS {table}")
            sql, params = new_layers_sql(workspace, thresholds, now)
            cursor.execute(f"CREATE TEMPORARY TABLE {NEW_TABLE} AS {sql}", params)
            if pg:
                # Fresh temp tables have no statistics; the joins below need the row count.
                cursor.execute(f"ANALYZE {NEW_TABLE}")
            differs = " OR ".join(f"l.{col} <> n.{col}" for col in RULE_COLUMNS)
            distinct = "IS DISTINCT FROM" if pg else "IS NOT"  # last_order_day may be NULL
            moved = " OR ".join(f"l.{col} {distinct} n.{col}" for col in VALUE_COLUMNS)
            # Rows to write: missing or with any stored value moved; ``marked`` when a value segment
            # rules can test changed. On a daily recompute that is a small fraction: an unwritten
            # row costs no new tuple, no index entries, no WAL.
            cursor.execute(
                f"CREATE TEMPORARY TABLE {CHANGED_TABLE} AS SELECT n.customer_id, l.customer_id IS NULL AS missing, "
                f"(l.customer_id IS NULL OR {differs}) AS marked "
                f"FROM {NEW_TABLE} n "
                f"LEFT JOIN segments_customerlayer l ON l.customer_id = n.customer_id "
                f"WHERE l.customer_id IS NULL OR {moved}"
            )
            if pg:
                cursor.execute(f"ANALYZE {CHANGED_TABLE}")
            cursor.execute(f"SELECT COUNT(*) FROM {CHANGED_TABLE} WHERE marked")
            changed = cursor.fetchone()[0]
            if changed:
                mark_changed_where(workspace.pk, f"c.id IN (SELECT customer_id FROM {CHANGED_TABLE} WHERE marked)", [])
            # An UPDATE joined to the new rows, then a plain INSERT of the missing ones: both are
            # set-based joins, where INSERT ... ON CONFLICT DO UPDATE probes the key row by row
            # (three times slower on PostgreSQL). Concurrent recomputes are serialised above.
            sets = ", ".join(f"{col} = n.{col}" for col in VALUE_COLUMNS)
            cursor.execute(
                f"UPDATE segments_customerlayer AS l SET {sets}, computed_at = %s "
                f"FROM {NEW_TABLE} n JOIN {CHANGED_TABLE} ch ON ch.customer_id = n.customer_id "
                "WHERE l.customer_id = n.customer_id AND NOT ch.missing",
                [adapt(now, "datetime")],
            )
            written = cursor.rowcount
            # The missing rows were found above; a NOT EXISTS against the table being filled would
            # let PostgreSQL re-scan a heap it still believes empty for every row.
            columns = ", ".join(f"n.{col}" for col in LAYER_COLUMNS)
            cursor.execute(
                f"INSERT INTO segments_customerlayer ({', '.join(LAYER_COLUMNS)}, computed_at) "
                f"SELECT {columns}, %s FROM {NEW_TABLE} n JOIN {CHANGED_TABLE} ch ON ch.customer_id = n.customer_id "
                "WHERE ch.missing",
                [adapt(now, "datetime")],
            )
            written += cursor.rowcount
            if pg and cursor.rowcount > ANALYZE_AFTER_INSERTS:
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
        LayerSettings.objects.filter(pk=settings.pk).update(computed_at=now)
    lifecycles = counts.get("lifecycle", {})
    return LayerReport(
        workspace_id=workspace.pk,
        computed_at=now,
        customers=sum(lifecycles.values()),
        changed=changed,
        seconds=time.perf_counter() - started,
        written=written,
        rfm_cells={k: v for k, v in counts.get("rfm_cell", {}).items() if k},
        lifecycles=lifecycles,
        value_tiers={k: v for k, v in counts.get("value_tier", {}).items() if k},
        community_tiers=counts.get("community_tier", {}),
    )


def new_layers_sql(workspace: Workspace, t: lr.Thresholds, now: dt.datetime) -> tuple[str, dict]:
    """One SELECT producing a ``segments_customerlayer`` row (without ``computed_at``) per live customer."""
    pg = connection.vendor == "postgresql"
    zone = ZoneInfo(workspace.time_zone)
    today = now.astimezone(zone).date()

    def instant(name: str) -> str:
        return f"%({name})s::timestamptz" if pg else f"%({name})s"

    def day(name: str) -> str:
        return f"%({name})s::date" if pg else f"%({name})s"

    def null(kind: str) -> str:
        return f"CAST(NULL AS {kind})" if pg else "NULL"

    group_role = "c.attributes ->> 'group_role'" if pg else "json_extract(c.attributes, '$.group_role')"
    least = "LEAST" if pg else "MIN"
    invites = ", ".join(f"'{name}'" for name in lr.INVITE_EVENTS)
    shares = ", ".join(f"'{name}'" for name in lr.SHARE_EVENTS)
    in_window = f"d.day >= {day('rfm_start')}"
    no_days = f"{null('date')}, {null('date')}"
    seeds, top = lr.pyramid_cuts_sql("live_count")
    # A never-buyer's stage by first and last seen, as its index in LIFECYCLES: known per
    # customer row, so it travels through the aggregate as a small number.
    seen_stage = lifecycle_sql(
        "COALESCE(c.first_seen_at, c.created_at)",
        "COALESCE(c.last_seen_at, c.first_seen_at, c.created_at)",
        lambda stage: instant(f"{stage}_at"),
        codes=True,
    )

    def quintile(value: str, among: str) -> str:
        rank = f"RANK() OVER (PARTITION BY {among} ORDER BY {value})"
        return f"CASE WHEN {among} THEN {lr.quintile_sql(rank, f'COUNT(*) OVER (PARTITION BY {among})')} ELSE 0 END"

    # One pass: every source contributes rows keyed by customer, one GROUP BY folds them into a
    # row of facts per customer, and window functions rank those rows. No joins between the
    # sources (each would build a hash table or sort), nothing for the planner to misjudge.
    sql = f"""
    WITH facts AS (
        SELECT customer_id, MAX(live) AS live, MAX(seen_stage) AS seen_stage, MAX(bonus) AS bonus,
            MIN(first_day) AS first_day, MAX(last_day) AS last_day,
            SUM(orders) AS frequency, CAST(SUM(amount) AS BIGINT) AS monetary,
            SUM(invites) AS invites, SUM(shares) AS shares, SUM(messages) AS messages
        FROM (
            SELECT c.id AS customer_id, 1 AS live,
                {seen_stage} AS seen_stage, {lr.group_role_bonus_sql(group_role)} AS bonus,
                {null("date")} AS first_day, {null("date")} AS last_day,
                0 AS orders, 0 AS amount, 0 AS invites, 0 AS shares, 0 AS messages
            FROM customers_customer c WHERE c.workspace_id = %(ws)s AND c.merged_into_id IS NULL
            UNION ALL
            SELECT d.customer_id, 0, NULL, NULL, d.day, d.day,
                CASE WHEN {in_window} THEN d.orders ELSE 0 END, CASE WHEN {in_window} THEN d.amount_fen ELSE 0 END,
                0, 0, 0
            FROM tracking_orderdaily d WHERE d.workspace_id = %(ws)s
            UNION ALL
            SELECT d.customer_id, 0, NULL, NULL, {no_days}, 0, 0,
                CASE WHEN d.name IN ({invites}) THEN d.count ELSE 0 END,
                CASE WHEN d.name IN ({shares}) THEN d.count ELSE 0 END, 0
            FROM tracking_eventdaily d
            WHERE d.workspace_id = %(ws)s AND d.name IN ({invites}, {shares}) AND d.day >= {day("community_start")}
            UNION ALL
            SELECT m.customer_id, 0, NULL, NULL, {no_days}, 0, 0, 0, 0, 1
            FROM conversations_message m
            WHERE m.workspace_id = %(ws)s AND m.direction = 'in' AND m.sent_at >= {instant("community_start_at")}
        ) x
        GROUP BY customer_id
    ),
    scored AS (
        SELECT customer_id, seen_stage, first_day, last_day, frequency, monetary,
            {quintile(f"{least}(last_day, {day('today')})", "frequency > 0")} AS r_score,
            {quintile("frequency", "frequency > 0")} AS f_score,
            {quintile("monetary", "frequency > 0")} AS m_score,
            {lr.community_score_sql("invites", "shares", "messages", "bonus")} AS community_score
        FROM facts WHERE live = 1
    ),
    placed AS (
        SELECT scored.*, COUNT(*) OVER () AS live_count,
            ROW_NUMBER() OVER (PARTITION BY community_score > 0 ORDER BY community_score DESC, customer_id) AS position
        FROM scored
    )
    SELECT customer_id, %(ws)s AS workspace_id, last_day AS last_order_day, frequency, monetary AS monetary_fen,
        r_score, f_score, m_score, {lr.rfm_cell_sql("r_score", "f_score", "m_score")} AS rfm_cell,
        CASE WHEN last_day IS NOT NULL THEN {lifecycle_sql("first_day", "last_day", lambda s: day(f"{s}_day"))}
            {" ".join(f"WHEN seen_stage = {n} THEN '{stage}'" for n, stage in enumerate(lr.LIFECYCLES))} END
            AS lifecycle,
        {lr.value_tier_sql("m_score")} AS value_tier, community_score,
        CASE WHEN community_score <= 0 THEN 'ordinary' WHEN position <= {seeds} THEN 'seed'
            WHEN position <= {top} THEN 'koc' ELSE 'ordinary' END AS community_tier
    FROM placed
    """

    def days_ago(n: int) -> dt.date:
        return today - dt.timedelta(days=n)

    params: dict = {"ws": workspace.pk, "today": adapt(today, "date")}
    # Windows of N calendar days, today included.
    params["rfm_start"] = adapt(days_ago(t.rfm_window_days - 1), "date")
    params["community_start"] = adapt(days_ago(t.community_window_days - 1), "date")
    params["community_start_at"] = adapt(local_midnight(days_ago(t.community_window_days - 1), zone), "datetime")
    # "At most N days before today" is "on or after the day N days ago", or after its local midnight.
    for stage in LIFECYCLE_LIMITS:
        limit = getattr(t, stage)
        params[f"{stage}_day"] = adapt(days_ago(limit), "date")
        params[f"{stage}_at"] = adapt(local_midnight(days_ago(limit), zone), "datetime")
    return sql, params


LIFECYCLE_LIMITS = ("new_days", "active_days", "at_risk_days", "dormant_days")


def lifecycle_sql(first: str, last: str, cut: Callable[[str], str], *, codes: bool = False) -> str:
    """The lifecycle CASE over a first and a last day (or time); ``cut(stage)`` renders the
    cut-off of a stage limit ("at most N days ago" is "on or after the cut"). With ``codes``
    it yields the stage's index in ``LIFECYCLES`` instead of its name."""
    name = {stage: str(n) if codes else f"'{stage}'" for n, stage in enumerate(lr.LIFECYCLES)}
    return (
        f"CASE WHEN {first} >= {cut('new_days')} THEN {name['new']} "
        f"WHEN {last} >= {cut('active_days')} THEN {name['active']} "
        f"WHEN {last} >= {cut('at_risk_days')} THEN {name['at_risk']} "
        f"WHEN {last} >= {cut('dormant_days')} THEN {name['dormant']} ELSE {name['churned']} END"
    )
