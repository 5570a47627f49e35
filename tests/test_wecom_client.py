"""The WeCom server-API client and the setup check, against the local fake WeCom server."""

from __future__ import annotations

import datetime as dt
import threading

import httpx
import pytest
from click.testing import CliRunner

from siyu.wecom.client import (
    CHINA,
    ConfigError,
    Limits,
    NetworkError,
    RateLimited,
    WecomClient,
    WecomError,
    reset_shared_state,
)
from siyu.wecom.models import ApiCallLog, WecomApp
from tests.fakes.wecom import FakeWecom, Follow

START = dt.datetime(2026, 11, 23, 10, 0, 30, tzinfo=CHINA).timestamp()


@pytest.fixture(autouse=True)
def fresh_client_state():
    reset_shared_state()
    yield
    reset_shared_state()


class FakeTime:
    """A clock the client sleeps on: sleeping advances it, so back-off is observable and instant."""

    def __init__(self) -> None:
        self.now = START
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.now += seconds


@pytest.fixture
def fake():
    with FakeWecom(corp_id="ww_fake_corp", secret="fake-app-secret-0123456789") as server:
        server.add_contact("wmEXT1", "张三", [Follow("wangxm", state="store-SH01", tag_ids=["etTAG1"])])
        server.add_contact("wmEXT2", "李四", [Follow("wangxm"), Follow("lina")])
        server.tag_groups = [
            {"group_id": "etGROUP1", "group_name": "会员", "create_time": 1, "order": 1, "deleted": False,
             "tag": [{"id": "etTAG1", "name": "金卡", "create_time": 1, "order": 1, "deleted": False},
                     {"id": "etTAG2", "name": "银卡", "create_time": 1, "order": 2, "deleted": False}]},
        ]  # fmt: skip
        yield server


@pytest.fixture
def time_():
    return FakeTime()


def make_client(fake, time_=None, **options) -> WecomClient:
    if time_ is not None:
        options.update(clock=time_.clock, sleep=time_.sleep)
    options.setdefault("backoff", 0.01)
    return WecomClient(fake.corp_id, options.pop("secret", fake.secret), base_url=fake.url, **options)


def test_one_token_is_fetched_and_shared_by_every_client(fake):
    with make_client(fake) as a, make_client(fake) as b:
        assert a.get("externalcontact/get", external_userid="wmEXT1")["external_contact"]["name"] == "张三"
        assert b.get("/cgi-bin/externalcontact/list", userid="wangxm")["external_userid"] == ["wmEXT1", "wmEXT2"]
    assert len(fake.api_calls("gettoken")) == 1
    # The token travels in the query string, never in the body.
    assert all(c.query.get("access_token") for c in fake.calls if c.api != "gettoken")


def test_a_token_in_the_django_cache_serves_another_process(fake):
    from django.core.cache import cache

    with make_client(fake, cache=cache) as client:
        client.get("externalcontact/get_follow_user_list")
    reset_shared_state()  # what a second worker process starts with
    with make_client(fake, cache=cache) as client:
        client.get("externalcontact/get_follow_user_list")
    assert len(fake.api_calls("gettoken")) == 1


def test_token_expiry_mid_run_refetches_once_and_succeeds(fake):
    with make_client(fake) as client:
        client.get("externalcontact/get_follow_user_list")
        fake.expire_tokens()  # revoked early: the next call with the old token gets 42001
        assert client.get("externalcontact/get", external_userid="wmEXT2")["external_contact"]["name"] == "李四"
    assert [c.errcode for c in fake.calls] == [0, 0, 42001, 0, 0]
    assert len(fake.api_calls("gettoken")) == 2


def test_45009_blocks_the_minute_then_escalates_to_the_hour_and_the_day(fake, time_):
    with make_client(fake, time_) as client:
        fake.storm(1)
        with pytest.raises(RateLimited) as minute:
            client.get("externalcontact/get_follow_user_list")
        assert (minute.value.window, minute.value.retry_after) == ("minute", 60)
        calls = len(fake.calls)
        with pytest.raises(RateLimited) as still:  # refused locally: WeCom is not asked again
            client.get("externalcontact/get_follow_user_list")
        assert len(fake.calls) == calls and still.value.retry_after == 60
        # Another API is not blocked.
        assert client.get("externalcontact/list", userid="wangxm")["external_userid"]

        time_.now += 61
        fake.storm(1)  # blocked again right after the minute: it was the hour limit
        with pytest.raises(RateLimited) as hour:
            client.get("externalcontact/get_follow_user_list")
        assert (hour.value.window, hour.value.retry_after) == ("hour", 3600)

        time_.now += 3601
        fake.storm(1)
        with pytest.raises(RateLimited) as day:
            client.get("externalcontact/get_follow_user_list")
        midnight = dt.datetime(2026, 11, 24, tzinfo=CHINA).timestamp()
        assert day.value.window == "day" and day.value.retry_after == pytest.approx(midnight - time_.now)

        time_.now = midnight + 1  # the natural day is over
        assert client.get("externalcontact/get_follow_user_list")["follow_user"] == ["wangxm", "lina"]


def test_a_short_45009_block_is_waited_out_when_allowed(fake, time_):
    with make_client(fake, time_, max_wait=120) as client:
        fake.storm(1)
        assert client.get("externalcontact/get_follow_user_list")["errcode"] == 0
    assert 60 in time_.slept


def test_busy_is_retried_three_times_then_reported(fake, time_):
    with make_client(fake, time_) as client:
        client.token()
        fake.busy(3)
        assert client.get("externalcontact/get_follow_user_list")["errcode"] == 0
        fake.busy(4)
        with pytest.raises(WecomError) as busy:
            client.get("externalcontact/get_follow_user_list")
    assert busy.value.errcode == -1
    assert [c.errcode for c in fake.calls[-4:]] == [-1, -1, -1, -1]


@pytest.mark.parametrize(
    ("setup", "errcode", "words"),
    [
        (lambda f: None, 40001, "Secret"),
        (lambda f: setattr(f, "corp_id", "ww_other"), 40013, "企业 ID"),
        (lambda f: setattr(f, "untrusted_ip", True), 60020, "可信 IP"),
        (lambda f: setattr(f, "forbidden", 48002), 48002, "可调用接口的应用"),
        (lambda f: setattr(f, "forbidden", 84074), 84074, "客户联系权限"),
    ],
    ids=["bad-secret", "bad-corp", "untrusted-ip", "api-forbidden", "no-customer-contact"],
)
def test_configuration_errors_name_the_fix(fake, setup, errcode, words):
    setup(fake)
    secret = "wrong-secret" if errcode == 40001 else fake.secret
    corp = "ww_fake_corp"
    with WecomClient(corp, secret, base_url=fake.url) as client, pytest.raises(ConfigError) as error:
        client.get("externalcontact/get_follow_user_list")
    assert error.value.errcode == errcode
    assert words in error.value.message_zh and error.value.message_en


def test_token_buckets_pace_calls_per_api(fake, time_):
    with make_client(fake, time_, limits=Limits(api_per_minute=2, api_per_hour=1000, corp_per_minute=1000)) as client:
        for _ in range(3):
            client.get("externalcontact/get", external_userid="wmEXT1")
        client.get("externalcontact/list", userid="wangxm")  # another API has its own bucket
    assert time_.slept == [30.0]  # the third call waited for one token (2 per minute)


def test_network_errors_are_retried_for_reads_only():
    attempts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(request.url.path)
        if request.url.path.endswith("gettoken"):
            return httpx.Response(200, json={"errcode": 0, "access_token": "t", "expires_in": 7200})
        raise httpx.ConnectError("connection refused", request=request)

    logged: list[tuple] = []
    client = WecomClient(
        "ww", "s", base_url="http://wecom.invalid", transport=httpx.MockTransport(handler), backoff=0,
        recorder=lambda *row: logged.append(row),
    )  # fmt: skip
    with client:
        with pytest.raises(NetworkError):
            client.get("externalcontact/get_follow_user_list")
        assert attempts.count("/cgi-bin/externalcontact/get_follow_user_list") == 4
        attempts.clear()
        with pytest.raises(NetworkError):
            client.post("externalcontact/add_contact_way", {"type": 1, "scene": 2, "user": ["wangxm"]})
    assert attempts == ["/cgi-bin/externalcontact/add_contact_way"]
    assert logged[0][:2] == ("gettoken", 0) and logged[-1][:2] == ("externalcontact/add_contact_way", None)


def test_batch_get_by_user_pages_with_the_cursor(fake):
    for n in range(5):
        fake.add_contact(f"wmBULK{n}", f"客户{n}", [Follow("zhaomin")])
    seen, cursor, pages = [], "", 0
    with make_client(fake) as client:
        while True:
            page = client.post(
                "externalcontact/batch/get_by_user",
                {"userid_list": ["zhaomin"], "cursor": cursor, "limit": 2},
                idempotent=True,
            )
            seen += [row["external_contact"]["external_userid"] for row in page["external_contact_list"]]
            pages += 1
            cursor = page["next_cursor"]
            if not cursor:
                break
        with pytest.raises(WecomError) as too_many:
            client.post("externalcontact/batch/get_by_user", {"userid_list": ["u"] * 101}, idempotent=True)
    assert seen == [f"wmBULK{n}" for n in range(5)] and pages == 3
    assert too_many.value.errcode == 40058


def test_welcome_code_is_valid_20_seconds_and_once(fake):
    code = fake.issue_welcome_code("wangxm", "wmEXT1")
    late = fake.issue_welcome_code("wangxm", "wmEXT2")
    fake.welcome_codes[late]["at"] -= 21
    with make_client(fake) as client:
        assert client.post("externalcontact/send_welcome_msg", {"welcome_code": code, "text": {"content": "欢迎"}})
        with pytest.raises(WecomError) as again:
            client.post("externalcontact/send_welcome_msg", {"welcome_code": code, "text": {"content": "欢迎"}})
        with pytest.raises(WecomError) as expired:
            client.post("externalcontact/send_welcome_msg", {"welcome_code": late, "text": {"content": "欢迎"}})
    assert (again.value.errcode, expired.value.errcode) == (41051, 41050)
    assert [w["external_userid"] for w in fake.welcomes] == ["wmEXT1"]


def test_mark_tag_serialised_per_customer_never_meets_45033(fake):
    fake.mark_tag_hold = 0.05
    barrier = threading.Barrier(2)
    errors: list[Exception] = []

    def mark(tag: str) -> None:
        with make_client(fake) as client:
            client.token()
            barrier.wait()
            try:
                with client.serialized("wmEXT1"):
                    client.post(
                        "externalcontact/mark_tag", {"userid": "wangxm", "external_userid": "wmEXT1", "add_tag": [tag]}
                    )
            except Exception as exc:  # collected for the assertion below
                errors.append(exc)

    threads = [threading.Thread(target=mark, args=(t,)) for t in ("etTAG1", "etTAG2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [c.errcode for c in fake.api_calls("externalcontact/mark_tag")] == [0, 0]
    assert sorted(fake.contacts["wmEXT1"].follows[0].tag_ids) == ["etTAG1", "etTAG2"]


# ---- with the database: call log and setup check -------------------------------------------


@pytest.fixture
def configured(brand, fake):
    from siyu.wecom.services import configure_wecom

    configure_wecom(
        brand.workspace, corp_id=fake.corp_id, agent_id="1000002", secret=fake.secret, token="AcmeToken",
        aes_key="jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", base_url=fake.url,
    )  # fmt: skip
    return brand.workspace


def test_every_call_and_its_errcode_is_logged_for_the_operator(configured, fake):
    from siyu.wecom.services import client_for, prune_api_logs

    with client_for(configured, backoff=0) as client:
        client.get("externalcontact/get", external_userid="wmEXT1")
        with pytest.raises(WecomError):
            client.get("externalcontact/get", external_userid="wmNOBODY")
    rows = list(ApiCallLog.objects.order_by("pk").values_list("api", "errcode"))
    assert rows == [("gettoken", 0), ("externalcontact/get", 0), ("externalcontact/get", 40096)]
    assert "access_token" not in "".join(ApiCallLog.objects.values_list("api", flat=True))
    ApiCallLog.objects.filter(api="gettoken").update(at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    assert prune_api_logs(days=30) == 1 and ApiCallLog.objects.count() == 2


def _verify_url(workspace) -> None:
    from siyu.core import clock

    WecomApp.objects.filter(workspace=workspace).update(callback_verified_at=clock.now())


@pytest.mark.parametrize(
    ("setup", "failing", "errcode"),
    [
        (lambda f, ws: _verify_url(ws), [], None),
        (lambda f, ws: (_verify_url(ws), setattr(f, "secret", "rotated")), ["token", "customer_contact"], 40001),
        (lambda f, ws: (_verify_url(ws), setattr(f, "corp_id", "ww_x")), ["token", "customer_contact"], 40013),
        (lambda f, ws: (_verify_url(ws), setattr(f, "forbidden", 48002)), ["customer_contact"], 48002),
        (lambda f, ws: (_verify_url(ws), setattr(f, "forbidden", 84074)), ["customer_contact"], 84074),
        (lambda f, ws: (_verify_url(ws), setattr(f, "untrusted_ip", True)), ["customer_contact"], 60020),
        (lambda f, ws: (_verify_url(ws), f.invisible_users.add("lina")), ["customer_contact"], 60011),
        (lambda f, ws: None, ["callback"], None),
    ],
    ids=["ok", "bad-secret", "bad-corp", "not-authorised", "no-permission", "untrusted-ip", "invisible", "unverified"],
)
def test_setup_check_reports_each_failure_mode(configured, fake, setup, failing, errcode):
    from siyu.wecom.services import check

    setup(fake, configured)
    report = check(configured, backoff=0)
    assert [item.key for item in report.failed()] == failing
    assert report.ok is (not failing)
    if errcode is not None:
        assert report.failed()[0].errcode == errcode
    app = WecomApp.objects.get(workspace=configured)
    assert app.last_check_ok is report.ok and app.status == ("ok" if report.ok else "failing")
    if failing == ["callback"]:
        assert "/callbacks/wecom/acme/" in report.failed()[0].message_zh


def test_cli_check_prints_the_problem_in_chinese_and_english(configured, fake):
    from siyu.cli import main

    fake.untrusted_ip = True
    result = CliRunner().invoke(main, ["wecom", "check", "--workspace", "acme"])
    assert result.exit_code == 1
    assert "✗ customer_contact [errcode 60020]: 本服务器的出口 IP 不在企业可信 IP 中" in result.output
    assert "This server's outgoing IP is not trusted" in result.output
    assert "from ip: 127.0.0.1" in result.output
    assert "✗ callback" in result.output


def test_cli_configure_validates_and_prints_the_callback_url(brand):
    from siyu.cli import main

    runner = CliRunner()
    args = ["wecom", "configure", "--workspace", "acme", "--corp-id", "ww_acme", "--agent-id", "1000002"]
    bad = runner.invoke(main, [*args, "--secret", "s", "--token", "tok", "--aes-key", "short"])
    assert bad.exit_code != 0 and "EncodingAESKey" in bad.output
    good = runner.invoke(
        main,
        [*args, "--secret", "s3cret", "--token", "tok", "--aes-key", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"],
    )
    assert good.exit_code == 0, good.output
    assert "/callbacks/wecom/acme/" in good.output
    oa = runner.invoke(
        main, ["oa", "configure", "--workspace", "acme", "--app-id", "wxacme", "--secret", "x", "--token", "t"]
    )
    assert oa.exit_code == 0 and "/callbacks/oa/acme/" in oa.output and "明文模式" in oa.output
