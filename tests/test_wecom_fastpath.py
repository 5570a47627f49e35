"""Callback pushes answered in front of Django (``siyu.wecom.fastpath``): the same checks and the
same one INSERT as the views, and everything else left to Django."""

from __future__ import annotations

import io
from urllib.parse import urlencode

import pytest

from siyu.customers.models import Customer
from siyu.wecom import endpoints, fastpath, inbox, receipts, services
from siyu.wecom.crypto import MsgCrypt
from siyu.wecom.models import CallbackReceipt
from tests.fakes import official_account as oa_fake
from tests.fakes.wecom import encrypted_callback
from tests.test_wecom_callbacks import AES_KEY, CORP, OA_APP, OA_KEY, OA_TOKEN, TOKEN, add_event


@pytest.fixture(autouse=True)
def setup(brand, monkeypatch):
    endpoints.invalidate()
    monkeypatch.setattr(fastpath, "close_old_connections", lambda: None)  # keep the test's connection
    services.configure_wecom(
        brand.workspace,
        corp_id=CORP,
        agent_id="1000002",
        secret="app-secret-abcdef123456",
        token=TOKEN,
        aes_key=AES_KEY,
    )
    services.configure_oa(brand.workspace, app_id=OA_APP, secret="oa-secret-1234567890", token=OA_TOKEN, aes_key=OA_KEY)
    yield
    endpoints.invalidate()


class Django:
    """Stands in for Django's application: records what falls through."""

    def __init__(self):
        self.seen = []

    def __call__(self, environ, start_response):
        self.seen.append((environ["REQUEST_METHOD"], environ["PATH_INFO"]))
        start_response("200 OK", [("Content-Type", "text/html")])
        return [b"django"]


class Unreadable(io.BytesIO):
    def read(self, *args):
        raise AssertionError("the body must not be read")


def call(app, method, path, query=None, body=b"", *, length=None, stream=None):
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": urlencode(query or {}),
        "CONTENT_TYPE": "text/xml",
        "CONTENT_LENGTH": str(len(body) if length is None else length),
        "wsgi.input": stream or io.BytesIO(body),
        "REMOTE_ADDR": "203.0.113.9",
    }
    answer = {}

    def start_response(status, headers):
        answer["status"], answer["headers"] = status, dict(headers)

    content = b"".join(app(environ, start_response))
    return int(answer["status"].split()[0]), content


def test_a_push_is_stored_and_answered_without_django():
    django = Django()
    app = fastpath.wrap(django)
    query, body = encrypted_callback(MsgCrypt(TOKEN, AES_KEY, CORP), add_event())
    assert call(app, "POST", "/callbacks/wecom/acme/", query, body) == (200, b"")
    assert call(app, "POST", "/callbacks/wecom/acme/", query, body) == (200, b"")  # a retry
    assert django.seen == []
    receipt = CallbackReceipt.objects.get()
    assert receipt.change_type == "add_external_contact" and receipt.processed_at is None
    assert inbox.process_all().processed == 1 and Customer.objects.count() == 1


def test_an_official_account_push_is_answered_success():
    oa = oa_fake.FakeOfficialAccount(app_id=OA_APP)
    query, body = oa.scan(oa.create_qr("s1"), "oOPENID1", token=OA_TOKEN, crypt=MsgCrypt(OA_TOKEN, OA_KEY, OA_APP))
    assert call(fastpath.wrap(Django()), "POST", "/callbacks/oa/acme/", query, body) == (200, b"success")
    assert CallbackReceipt.objects.get().source == "oa"


@pytest.mark.parametrize(
    ("crypt", "status"),
    [(MsgCrypt("GuessedToken", AES_KEY, CORP), 403), (MsgCrypt(TOKEN, AES_KEY, "ww_someone_else"), 403)],
    ids=["forged", "wrong-corp"],
)
def test_bad_pushes_are_refused_and_logged(crypt, status, caplog):
    query, body = encrypted_callback(crypt, add_event())
    with caplog.at_level("WARNING", logger="siyu.wecom.callbacks"):
        assert call(fastpath.wrap(Django()), "POST", "/callbacks/wecom/acme/", query, body) == (status, b"")
    assert CallbackReceipt.objects.count() == 0
    assert any("rejected wecom callback POST acme from 203.0.113.9" in r.getMessage() for r in caplog.records)


def test_an_oversized_body_is_refused_unread_and_unknown_workspaces_are_403():
    app = fastpath.wrap(Django())
    status, _ = call(app, "POST", "/callbacks/wecom/acme/", length=70_000, stream=Unreadable())
    assert status == 413
    query, body = encrypted_callback(MsgCrypt(TOKEN, AES_KEY, CORP), add_event())
    assert call(app, "POST", "/callbacks/wecom/nobody/", query, body)[0] == 403
    assert CallbackReceipt.objects.count() == 0


def test_everything_else_goes_to_django():
    django = Django()
    app = fastpath.wrap(django)
    assert call(app, "GET", "/callbacks/wecom/acme/", {"echostr": "x"}) == (200, b"django")  # URL verification
    assert call(app, "POST", "/callbacks/wecom/acme/extra/") == (200, b"django")
    assert call(app, "POST", "/api/v1/events") == (200, b"django")
    assert django.seen == [("GET", "/callbacks/wecom/acme/"), ("POST", "/callbacks/wecom/acme/extra/"),
                           ("POST", "/api/v1/events")]  # fmt: skip


def test_a_database_failure_answers_500_so_the_platform_retries(monkeypatch):
    def broken(*args):
        raise RuntimeError("database away")

    monkeypatch.setattr(receipts, "store", broken)
    query, body = encrypted_callback(MsgCrypt(TOKEN, AES_KEY, CORP), add_event())
    assert call(fastpath.wrap(Django()), "POST", "/callbacks/wecom/acme/", query, body) == (500, b"")


def test_the_served_application_has_the_fast_path_in_front():
    from siyu.wsgi import application

    assert application.__name__ == "callbacks_first"
