"""The SQL compliance gate decides every candidate exactly as the plain-Python reference
(``siyu.channels.reference``) does, on random customers, history, policies, clocks and
batches (SQLite and PostgreSQL); and the pure time rules agree with brute force."""

from __future__ import annotations

import datetime as dt
import os
from zoneinfo import ZoneInfo

from django.db import transaction
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from siyu.channels import gate, reference
from siyu.channels.models import OptOut
from siyu.channels.reference import Audience, Candidate, PriorMessage
from siyu.channels.services import create_account
from siyu.core.sql import id_list_condition
from siyu.customers.models import Consent, Customer, Identity
from siyu.messaging.models import OutboundMessage

EXAMPLES = int(os.environ.get("SIYU_GATE_EXAMPLES", "120"))
# Set SIYU_GATE_SHRINK=0 while debugging a failure that takes long to shrink.
PHASES = [p for p in Phase if p != Phase.shrink or os.environ.get("SIYU_GATE_SHRINK", "1") == "1"]
BASE = settings(
    phases=PHASES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
UTC = dt.UTC
# Shanghai has no DST; New York's local day is 4-5 hours behind UTC (and has DST); Kolkata
# is off by half an hour; Chatham by 45 minutes.
ZONES = ["Asia/Shanghai", "America/New_York", "Asia/Kolkata", "Pacific/Chatham", "UTC"]
MEDIA = ["sms", "email", "app", "wecom"]
IDENTITY_TYPES = ["phone", "email", "app_user_id", "wecom_external_userid"]
STATES = ["sending", "sent", "delivered", "unknown", "failed", "bounced", "suppressed", "queued", "held"]

# ---- strategies ------------------------------------------------------------------------------

minute_times = st.builds(lambda m: dt.time(m // 60, m % 60), st.integers(0, 24 * 60 - 1))
second_times = st.builds(lambda s: dt.time(s // 3600, s // 60 % 60, s % 60), st.integers(0, 24 * 3600 - 1))
# Local wall times, with extra weight just around midnight (the local-day boundary).
near_midnight = st.sampled_from(
    [dt.time(0, 0), dt.time(0, 0, 0, 1), dt.time(0, 0, 30), dt.time(23, 59, 59, 999_999), dt.time(23, 59, 30)]
)
local_times = st.one_of(near_midnight, minute_times, st.times())
dates = st.dates(dt.date(2026, 1, 1), dt.date(2027, 12, 31))


def _shifted(start, seconds):
    """``start`` plus ``seconds`` on the clock face (a window's end; never equal to its start)."""
    total = (start.hour * 3600 + start.minute * 60 + start.second + seconds) % 86400
    return dt.time(total // 3600, total // 60 % 60, total % 60)


@st.composite
def windows(draw, times=minute_times):
    kind = draw(st.sampled_from(["default", "wraps", "wide", "wide", "any"]))
    if kind == "default":
        return dt.time(8, 0), dt.time(21, 0)
    if kind == "wraps":
        return dt.time(20, 0), dt.time(2, 0)
    if kind == "wide":  # open nearly all day, so marketing reaches the caps
        return dt.time(0, 0), dt.time(23, 59)
    start = draw(times)
    # Settings refuse a window that starts when it ends.
    return start, _shifted(start, draw(st.integers(1, 1439)) * 60 + (start.second and draw(st.integers(0, 59))))


@st.composite
def policies(draw, times=minute_times):
    start, end = draw(windows(times))
    caps = draw(
        st.dictionaries(
            st.sampled_from(MEDIA),
            st.one_of(
                st.fixed_dictionaries({"day": st.integers(0, 2), "week": st.integers(0, 3)}),
                st.dictionaries(st.sampled_from(["day", "week"]), st.integers(0, 3), max_size=2),
            ),
            max_size=3,
        )
    )
    return gate.GatePolicy(
        time_zone=draw(st.sampled_from(ZONES)),
        daily_cap=draw(st.integers(0, 3)),
        weekly_cap=draw(st.integers(0, 5)),
        channel_caps=caps,
        window_start=start,
        window_end=end,
        # "day" (1 a day) is the WeCom cap random data reaches; the others test the period bounds.
        wecom_cap_mode=draw(st.sampled_from(["day", "day", "week", "month"])),
    )


def local_moment(time_zone, day, time):
    """A wall-clock time in ``time_zone`` as a UTC instant."""
    return dt.datetime.combine(day, time, tzinfo=ZoneInfo(time_zone)).astimezone(UTC)


# Mostly granted for marketing (else few messages reach the caps), mostly absent for service.
consent_status = {
    "marketing": st.sampled_from([None, "granted", "granted", "granted", "granted", "revoked"]),
    "service": st.sampled_from([None, None, "granted", "revoked"]),
}
customer_st = st.fixed_dictionaries(
    {
        "identities": st.lists(st.sampled_from(IDENTITY_TYPES), max_size=3),
        "consents": st.fixed_dictionaries(
            {(channel, purpose): consent_status[purpose] for channel in MEDIA for purpose in ("marketing", "service")}
        ),
        "opted_out": st.sampled_from([False, False, False, False, True]),
    }
)
# Reachable everywhere for marketing: only the caps (and quiet hours) stand in the way, so
# in-batch ranking across channels gets exercised.
reachable_st = st.just(
    {
        "identities": IDENTITY_TYPES,
        "consents": {(channel, "marketing"): "granted" for channel in MEDIA},
        "opted_out": False,
    }
)
customers_st = st.lists(st.one_of(reachable_st, customer_st), min_size=1, max_size=4)
# How long before ``now`` a prior message passed the gate: hours ago, or exactly at / just
# before the start of the local day, of the 7-day week or of the calendar month (WeCom's cap).
gated_st = st.one_of(
    st.none(),
    st.floats(0, 40 * 24, allow_nan=False),
    st.sampled_from(["day_start", "before_day", "week_start", "before_week", "month_start", "before_month"]),
)
prior_st = st.fixed_dictionaries(
    {
        "customer": st.integers(0, 3),
        "medium": st.sampled_from(MEDIA),
        "purpose": st.sampled_from(["marketing", "marketing", "marketing", "service"]),
        "state": st.sampled_from([*STATES, "delivered", "sent"]),
        "gated": gated_st,
    }
)
candidate_st = st.fixed_dictionaries(
    {
        "customer": st.sampled_from([None, 0, 0, 0, 0, 1, 1, 2]),
        "medium": st.sampled_from(MEDIA),
        "purpose": st.sampled_from(["marketing", "marketing", "marketing", "marketing", "service", "system"]),
        "to_address": st.sampled_from(["", "", "", "", "explicit@example.com"]),
        "state": st.sampled_from(["queued", "held"]),
        "retry": st.booleans(),  # passed the gate once before (a retry): must not count twice
    }
)
world_st = st.fixed_dictionaries(
    {
        "customers": customers_st,
        "prior": st.lists(prior_st, max_size=12),
        "candidates": st.lists(candidate_st, min_size=1, max_size=10),
        "policy": policies(),
        "day": dates,
        "time": local_times,
    }
)

# ---- building the rows --------------------------------------------------------------------------


def _gated_at(spec, now, time_zone):
    if spec is None or isinstance(spec, float):
        return None if spec is None else now - dt.timedelta(hours=spec)
    today = now.astimezone(ZoneInfo(time_zone)).date()
    if "month" in spec:
        first = today.replace(day=1)
    else:
        first = today - dt.timedelta(days=0 if "day" in spec else 6)
    start = local_moment(time_zone, first, dt.time(0))
    return start - dt.timedelta(microseconds=1) if spec.startswith("before") else start


def build(ws, world, now):
    """Insert the world; return what the reference sees and the candidates' ids."""
    policy = world["policy"]
    accounts = {m: create_account(ws, name=m, provider="sandbox", medium=m, rate_per_second=10_000) for m in MEDIA}
    customers = Customer.objects.bulk_create(
        [
            Customer(workspace=ws, name=f"客户{n}", created_at=now, updated_at=now)
            for n in range(len(world["customers"]))
        ]
    )
    ids = [c.pk for c in customers]
    audience = Audience()
    identities, consents, opt_outs = [], [], []
    for n, spec in enumerate(world["customers"]):
        for k, kind in enumerate(spec["identities"]):
            identities.append(
                Identity(workspace=ws, customer_id=ids[n], type=kind, value=f"{kind}-{n}-{k}", created_at=now)
            )
        for (channel, purpose), status in spec["consents"].items():
            if status:
                consents.append(
                    Consent(
                        workspace=ws,
                        customer_id=ids[n],
                        channel=channel,
                        purpose=purpose,
                        status=status,
                        updated_at=now,
                    )
                )
                audience.consents[ids[n], channel, purpose] = status
        if spec["opted_out"]:
            opt_outs.append(OptOut(workspace=ws, customer_id=ids[n], source="console", created_at=now))
            audience.opted_out.add(ids[n])
    # Shuffle nothing: identities get ascending ids in list order, so the last one is the newest.
    audience.identities = [(i.pk, i.customer_id, i.type, i.value) for i in Identity.objects.bulk_create(identities)]
    Consent.objects.bulk_create(consents)
    OptOut.objects.bulk_create(opt_outs)

    def customer_id(index):
        return None if index is None else ids[index % len(ids)]

    prior = []
    rows = []
    for n, spec in enumerate(world["prior"]):
        gated_at = _gated_at(spec["gated"], now, policy.time_zone)
        prior.append(
            PriorMessage(customer_id(spec["customer"]), spec["medium"], spec["purpose"], spec["state"], gated_at)
        )
        rows.append(
            OutboundMessage(
                workspace=ws, customer_id=prior[-1].customer_id, account=accounts[spec["medium"]], medium=spec["medium"],
                purpose=spec["purpose"], idempotency_key=f"p{n}", state=spec["state"], gated_at=gated_at,
                created_at=now, updated_at=now,
            )
        )  # fmt: skip
    for n, spec in enumerate(world["candidates"]):
        rows.append(
            OutboundMessage(
                workspace=ws, customer_id=customer_id(spec["customer"]), account=accounts[spec["medium"]],
                medium=spec["medium"], purpose=spec["purpose"], idempotency_key=f"c{n}", state=spec["state"],
                to_address=spec["to_address"], gated_at=now - dt.timedelta(hours=1) if spec["retry"] else None,
                created_at=now, updated_at=now,
            )
        )  # fmt: skip
    saved = OutboundMessage.objects.bulk_create(rows)
    candidates = [
        Candidate(m.pk, m.customer_id, m.medium, m.purpose, m.to_address) for m in saved[len(world["prior"]) :]
    ]
    return audience, prior, candidates


def sql_gate(policy, workspace_id, ids, now):
    """The gate exactly as ``dispatch.claim`` runs it on claimed rows."""
    cond_o, params_o = id_list_condition("o.id", ids)
    cond_g, params_g = id_list_condition("g.id", ids)
    return gate.evaluate(
        policy,
        workspace_id=workspace_id,
        candidates_sql=(
            "SELECT o.id, o.customer_id, o.medium, o.purpose, o.to_address "
            f"FROM messaging_outboundmessage o WHERE {cond_o}"
        ),
        candidates_params=params_o,
        exclude_sql=cond_g,
        exclude_params=params_g,
        now=now,
    )


def decide_both(ws, audience, prior, candidates, policy, now):
    got = sorted(
        (mid, address, reason)
        for mid, _cid, address, reason in sql_gate(policy, ws.pk, [c.id for c in candidates], now)
    )
    expected = reference.decide(policy, audience=audience, prior=prior, candidates=candidates, now=now)
    return got, expected


# ---- the properties -------------------------------------------------------------------------------


@settings(BASE, max_examples=EXAMPLES)
@given(world=world_st)
def test_sql_gate_matches_the_reference(brand, world):
    policy = world["policy"]
    now = local_moment(policy.time_zone, world["day"], world["time"])
    with transaction.atomic():
        audience, prior, candidates = build(brand.workspace, world, now)
        got, expected = decide_both(brand.workspace, audience, prior, candidates, policy, now)
        assert got == expected, (policy, now, prior, candidates)
        for reason in sorted({r for _i, _a, r in expected}):
            event(reason or "passed")
        transaction.set_rollback(True)


@settings(BASE, max_examples=4 * EXAMPLES)
@given(policy=policies(st.one_of(minute_times, second_times)), day=dates, time=local_times)
def test_in_window_matches_the_reference(policy, day, time):
    now = local_moment(policy.time_zone, day, time)
    assert gate.in_window(policy, now) == reference.in_window(policy, now)


def first_open_moment(policy, now):
    """Brute force: walk minute by minute to the first open moment, then bisect to the microsecond."""
    if reference.in_window(policy, now):
        return now
    step = dt.timedelta(minutes=1)
    closed = now
    for _ in range(3 * 24 * 60):
        probe = closed + step
        if reference.in_window(policy, probe):
            break
        closed = probe
    else:
        raise AssertionError("the window never opens")
    while probe - closed > dt.timedelta(microseconds=1):
        middle = closed + (probe - closed) / 2
        if reference.in_window(policy, middle):
            probe = middle
        else:
            closed = middle
    return probe


@settings(BASE, max_examples=2 * EXAMPLES)
@given(policy=policies(st.one_of(minute_times, second_times)), day=dates, time=local_times)
def test_next_window_start_is_the_first_open_moment(policy, day, time):
    now = local_moment(policy.time_zone, day, time)
    assert gate.next_window_start(policy, now) == first_open_moment(policy, now)


@settings(BASE, max_examples=4 * EXAMPLES)
@given(time_zone=st.sampled_from(ZONES), day=dates, time=local_times)
def test_cap_bounds_are_local_midnights(time_zone, day, time):
    policy = gate.GatePolicy(time_zone=time_zone, daily_cap=0, weekly_cap=0)
    now = local_moment(time_zone, day, time)
    day_start, week_start = gate.cap_bounds(policy, now)
    tz = ZoneInfo(time_zone)
    tick = dt.timedelta(microseconds=1)
    today = now.astimezone(tz).date()
    # Each bound is the first instant of its local day: the instant before is the day before.
    for bound, first_day in ((day_start, today), (week_start, today - dt.timedelta(days=6))):
        assert bound <= now
        assert bound.astimezone(tz).date() == first_day
        assert bound.astimezone(tz).time() == dt.time(0)
        assert (bound - tick).astimezone(tz).date() == first_day - dt.timedelta(days=1)


# ---- regressions found by the properties ----------------------------------------------------------

REACHABLE = {
    "identities": IDENTITY_TYPES,
    "consents": {(channel, "marketing"): "granted" for channel in MEDIA},
    "opted_out": False,
}
SH_NOON = dt.datetime(2026, 11, 23, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def gate_reasons(brand, policy, prior, candidates, now=SH_NOON):
    """The SQL gate's reasons for ``candidates`` (medium, purpose) of one reachable customer."""
    world = {
        "customers": [REACHABLE],
        "prior": [{"customer": 0, "purpose": "marketing", **p} for p in prior],
        "candidates": [
            {"customer": 0, "medium": m, "purpose": "marketing", "to_address": "", "state": "queued", "retry": False}
            for m in candidates
        ],
        "policy": policy,
    }
    with transaction.atomic():
        audience, prior_rows, batch = build(brand.workspace, world, now)
        got, expected = decide_both(brand.workspace, audience, prior_rows, batch, policy, now)
        transaction.set_rollback(True)
    assert got == expected
    return [reason for _id, _address, reason in got]


def test_message_stopped_by_its_channel_cap_leaves_the_daily_cap_to_the_next(brand):
    # One email went today; the email cap (1 a day) stops the second, so the SMS after it is
    # only the customer's second message today and fits the cross-channel cap of 2. The gate
    # used to count the refused email and suppress the SMS as 'cap_day'.
    policy = gate.GatePolicy(time_zone="Asia/Shanghai", daily_cap=2, weekly_cap=0, channel_caps={"email": {"day": 1}})
    prior = [{"medium": "email", "state": "delivered", "gated": 2.0}]
    assert gate_reasons(brand, policy, prior, ["email", "sms", "sms"]) == ["channel_cap_day", "", "cap_day"]


def test_cap_reason_names_the_cap_that_was_reached(brand):
    # Two messages went yesterday: the 7-day cap of 3 leaves room for one today, and the daily
    # cap of 2 is never reached (one goes today). The third used to be reported as 'cap_day'.
    policy = gate.GatePolicy(time_zone="Asia/Shanghai", daily_cap=2, weekly_cap=3)
    prior = [{"medium": "sms", "state": "delivered", "gated": 24.0}] * 2
    assert gate_reasons(brand, policy, prior, ["sms", "sms", "sms"]) == ["", "cap_week", "cap_week"]


def test_held_message_waits_for_the_window_start_to_the_second(brand):
    # A window set to open at 08:00:30 (the settings accept seconds). The hold used to end at
    # 08:00:00; claimed then, the window was still shut and the message waited another day.
    policy = gate.GatePolicy(time_zone="Asia/Shanghai", daily_cap=0, weekly_cap=0, window_start=dt.time(8, 0, 30))
    sh = ZoneInfo("Asia/Shanghai")
    opens = dt.datetime(2026, 11, 24, 8, 0, 30, tzinfo=sh)
    assert gate.next_window_start(policy, dt.datetime(2026, 11, 23, 22, 0, tzinfo=sh)) == opens
    assert gate.next_window_start(policy, dt.datetime(2026, 11, 24, 8, 0, 10, tzinfo=sh)) == opens


def test_wecom_cap_counts_the_calendar_month_and_the_batch(brand):
    # November has 30 days: 29 WeCom messages this month (one on the 1st at local midnight) leave
    # room for one; one from October does not count. The second in the batch is over the cap.
    policy = gate.GatePolicy(time_zone="Asia/Shanghai", daily_cap=0, weekly_cap=0)
    prior = [{"medium": "wecom", "state": "sent", "gated": "month_start"}]
    prior += [{"medium": "wecom", "state": "delivered", "gated": float(h)} for h in range(1, 29)]
    prior += [{"medium": "wecom", "state": "delivered", "gated": "before_month"}]
    prior += [{"medium": "wecom", "state": "failed", "gated": 1.5}]  # WeCom refused it: not counted
    assert gate_reasons(brand, policy, prior, ["wecom", "wecom", "sms"]) == ["", "wecom_cap", ""]


def test_wecom_cap_day_and_week_modes(brand):
    prior = [{"medium": "wecom", "state": "sent", "gated": 30.0}]  # yesterday
    day = gate.GatePolicy(time_zone="Asia/Shanghai", daily_cap=0, weekly_cap=0, wecom_cap_mode="day")
    assert gate_reasons(brand, day, prior, ["wecom", "wecom"]) == ["", "wecom_cap"]
    week = gate.GatePolicy(time_zone="Asia/Shanghai", daily_cap=0, weekly_cap=0, wecom_cap_mode="week")
    six = prior * 6
    assert gate_reasons(brand, week, six, ["wecom", "wecom"]) == ["", "wecom_cap"]


def test_a_message_stopped_by_the_wecom_cap_leaves_the_channel_week_cap_alone(brand):
    # One WeCom message today: WeCom's 1-a-day cap stops the whole batch. The third used to be
    # named 'channel_cap_week' (3 a week), counting the two ahead that never went.
    policy = gate.GatePolicy(
        time_zone="Asia/Shanghai", daily_cap=0, weekly_cap=0, channel_caps={"wecom": {"week": 3}}, wecom_cap_mode="day"
    )
    prior = [{"medium": "wecom", "state": "sent", "gated": 1.0}]
    assert gate_reasons(brand, policy, prior, ["wecom", "wecom", "wecom"]) == ["wecom_cap"] * 3
