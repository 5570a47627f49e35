"""The set-based SQL helpers behave the same on SQLite and PostgreSQL, odd values included."""

from __future__ import annotations

import datetime as dt

from django.db import connection

from siyu.core.sql import id_list_condition, insert_rows, text_list_condition, update_from_values
from siyu.customers.models import Customer

ODD = ['a"b', "c\\d", "e,f", "{g}", "中文", "h'i", "NULL", ""]


def test_text_and_id_lists_match_exactly(brand):
    from siyu.customers.services import upsert_customers

    items = [{"identities": [{"type": "member_no", "value": v or "-"}]} for v in ODD]
    ids = upsert_customers(brand.workspace, items, source="t").ids
    condition, params = text_list_condition("value", ODD)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT value FROM customers_identity WHERE {condition}", params)
        assert sorted(r[0] for r in cursor.fetchall()) == sorted(v for v in ODD if v)
        condition, params = id_list_condition("id", ids[:3])
        cursor.execute(f"SELECT id FROM customers_customer WHERE {condition}", params)
        assert sorted(r[0] for r in cursor.fetchall()) == sorted(ids[:3])


def test_insert_returning_and_update_from_values(brand):
    when = dt.datetime(2026, 11, 1, 8, 30, tzinfo=dt.UTC)
    columns = {
        "workspace_id": "int", "name": "text", "gender": "text", "birthday": "date", "province": "text",
        "city": "text", "attributes": "json", "source_channel": "text", "source_detail": "text",
        "created_at": "datetime", "updated_at": "datetime",
    }  # fmt: skip
    rows = [
        (brand.workspace.pk, name, "f", dt.date(1990, 1, 2), "", "上海", {"k": name}, "api", "", when, when)
        for name in ODD
    ]
    ids = insert_rows("customers_customer", columns, rows, returning_id=True)
    assert [Customer.objects.get(pk=i).name for i in ids] == ODD
    later = when + dt.timedelta(days=1)
    updated = update_from_values(
        "customers_customer",
        {"id": "int", "city": "text", "updated_at": "datetime"},
        [(i, f"杭州{n}", later) for n, i in enumerate(ids)],
        where="{t}.city <> v.city",
    )
    assert updated == len(ids)
    first = Customer.objects.get(pk=ids[0])
    assert first.city == "杭州0" and first.updated_at == later and first.attributes == {"k": ODD[0]}
    assert str(first.birthday) == "1990-01-02"
