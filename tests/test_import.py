"""CSV import: good rows land, bad rows are reported by line and column, encodings, the CLI."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner

from siyu.cli import main
from siyu.core.errors import InvalidInput, NotFound
from siyu.customers.models import Customer, Identity
from siyu.tags.models import CustomerTag
from siyu.tracking.imports import import_csv
from siyu.tracking.models import Event, Order


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


CUSTOMERS = """phone,name,gender,birthday,store_code,tags,attr.skin,member_no
13800138000,林黛玉,女,1995-02-12,SH01,肤质/敏感肌|VIP,dry,M001
12345,薛宝钗,女,,,,,
13800138002,贾宝玉,男,1994-13-40,,,,
13800138003,史湘云,不详,,,,,
13800138004,王熙凤,f,,NOPE,,,
,妙玉,,,,,,
"""


def test_customers_good_rows_stored_bad_rows_reported(brand, tmp_path):
    report = import_csv(kind="customers", path=write(tmp_path / "c.csv", CUSTOMERS), workspace_slug="acme")
    assert report.accepted == 1
    assert [(e.index, e.field) for e in report.errors] == [
        (3, "phone"),
        (4, "birthday"),
        (5, "gender"),
        (6, "store_code"),
        (7, "identities"),
    ]
    customer = Customer.objects.get(workspace=brand.workspace, name="林黛玉")
    assert customer.gender == "f" and str(customer.birthday) == "1995-02-12" and customer.store_id == brand.store_a.pk
    assert customer.attributes == {"skin": "dry"}
    assert set(Identity.objects.filter(customer=customer).values_list("type", "value")) == {
        ("phone", "13800138000"),
        ("member_no", "M001"),
    }
    assert CustomerTag.objects.filter(customer=customer, source="import").count() == 2
    out = tmp_path / "errors.csv"
    report.write_errors(out)
    rows = list(csv.reader(out.open(encoding="utf-8")))
    assert rows[0] == ["row", "field", "message"] and rows[1][:2] == ["3", "phone"]


def test_gbk_and_bom_files(brand, tmp_path):
    gbk = write(tmp_path / "gbk.csv", "phone,name\n13900139000,张三丰\n", "gbk")
    assert import_csv(kind="customers", path=gbk, workspace_slug="acme").accepted == 1
    bom = write(tmp_path / "bom.csv", "\ufeffphone,name\n13900139001,李四\n")
    assert import_csv(kind="customers", path=bom, workspace_slug="acme").accepted == 1
    assert set(Customer.objects.filter(workspace=brand.workspace).values_list("name", flat=True)) == {"张三丰", "李四"}


def test_orders_in_yuan_are_exact_fen(brand, tmp_path):
    text = """order_no,phone,total,discount,paid_at,status,sku,product_name,price
SO1,13800138000,199.90,10,2026-11-01 10:00:00,已支付,SK1,精华,199.90
SO2,13800138000,19.999,,2026-11-01 10:00:00,,,,
SO3,13800138000,abc,,2026-11-01 10:00:00,,,,
SO4,,100,,2026-11-01 10:00:00,,,,
"""
    report = import_csv(kind="orders", path=write(tmp_path / "o.csv", text), workspace_slug="acme")
    assert report.accepted == 1
    assert [(e.index, e.field) for e in report.errors] == [(3, "total"), (4, "total"), (5, "customer_id")]
    order = Order.objects.get(order_no="SO1")
    assert (order.total_fen, order.discount_fen, order.paid_fen) == (19990, 1000, 18990)
    assert order.items == [{"sku": "SK1", "name": "精华", "category": "", "quantity": 1, "price_fen": 19990}]
    again = import_csv(kind="orders", path=write(tmp_path / "o2.csv", text), workspace_slug="acme")
    assert again.duplicates == 1 and Order.objects.filter(workspace=brand.workspace).count() == 1


def test_events_with_properties_and_ids(brand, tmp_path):
    text = "name,timestamp,event_id,member_no,prop.sku\nview,2026-11-01T10:00:00,e1,M9,SK1\nview,bad,e2,M9,\n"
    report = import_csv(kind="events", path=write(tmp_path / "e.csv", text), workspace_slug="acme")
    assert report.accepted == 1 and [(e.index, e.field) for e in report.errors] == [(3, "timestamp")]
    assert Event.objects.get(event_id="e1").properties == {"sku": "SK1"}


def test_unknown_columns_and_workspace_are_refused_up_front(brand, tmp_path):
    with pytest.raises(InvalidInput, match="unknown column"):
        import_csv(kind="customers", path=write(tmp_path / "x.csv", "phone,nickname\n1,2\n"), workspace_slug="acme")
    with pytest.raises(NotFound):
        import_csv(kind="customers", path=write(tmp_path / "y.csv", "phone\n13800138000\n"), workspace_slug="nope")
    with pytest.raises(InvalidInput, match="no header"):
        import_csv(kind="customers", path=write(tmp_path / "z.csv", ""), workspace_slug="acme")
    assert not Customer.objects.exists()


def test_cli_import_reports_and_writes_error_file(brand, tmp_path):
    path = write(tmp_path / "c.csv", CUSTOMERS)
    errors = tmp_path / "report.csv"
    result = CliRunner().invoke(
        main, ["import", "customers", str(path), "--workspace", "acme", "--errors", str(errors)]
    )
    assert result.exit_code == 0, result.output
    assert "1 rows imported, 5 rows rejected" in result.output
    assert "row 3: phone" in result.output
    assert errors.exists()
