"""parse_report_params from JSON bodies and forms, the jobs round trip, and the snapshot."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledgerline.db import engine_for
from ledgerline.errors import ValidationFailed
from ledgerline.exports.writers import open_snapshot, write_export
from ledgerline.reports.filters import Filters
from ledgerline.reports.query import ReportParams, count_rows, parse_report_params
from tests.conftest import Api, assert_problem
from tests.factories import add_line_items, create_customer, create_invoice
from tests.reports.conftest import Data
from tests.reports.test_data import fetch

FLAT = "invoice_line_items"
GROUPED = "invoice_line_items.grouped"


def test_json_body_values_and_round_trip() -> None:
    raw = {
        "id_gt": 0,
        "sort": ["-amount", "due_date"],
        "format": "json",
        "columns": ["id", "amount", "customer"],
        "invoice_status": "paid,open",
        "invoice_due_date_gte": "2024-07-29",
        "invoice_due_date_lte": "2024-07-30",
        "invoice_paid_at_gte": "2024-07-29T15:51:28.071Z",
        "invoice_paid_at_lte": "2024-07-29T17:00:00",
        "invoice_updated_at_gte": "2024-07-29",
        "invoice_updated_at_lte": "2024-07-29",
        "invoice_confirmed_at_gte": "2024-07-29T15:51:28+02:00",
    }
    params = parse_report_params(FLAT, raw, timezone="Europe/London", for_export=True)
    assert params.columns == ("id", "amount", "customer.id")
    assert params.sort == (("amount", True), ("invoice.due_date", False))
    assert params.format == "json"
    filters = params.filters
    assert isinstance(filters, Filters)
    assert filters.id_gt == 0
    assert filters.invoice_status == ("paid", "open")
    utc = dt.UTC
    assert filters.invoice_paid_at_gte == dt.datetime(2024, 7, 29, 15, 51, 28, 71000, tzinfo=utc)
    assert filters.invoice_paid_at_lte == dt.datetime(2024, 7, 29, 16, 0, tzinfo=utc)  # BST
    assert filters.invoice_updated_at_gte == dt.datetime(2024, 7, 28, 23, 0, tzinfo=utc)
    assert filters.invoice_updated_at_lte == dt.datetime(
        2024, 7, 29, 22, 59, 59, 999999, tzinfo=utc
    )
    assert filters.invoice_confirmed_at_gte == dt.datetime(2024, 7, 29, 13, 51, 28, tzinfo=utc)
    stored = json.loads(json.dumps(params.to_json()))  # as kept in jobs.params
    assert ReportParams.from_json(stored) == params
    assert stored["filters"]["invoice_paid_at_lte"] == "2024-07-29T16:00:00+00:00"


def test_defaults() -> None:
    flat = parse_report_params(FLAT, {}, timezone="UTC", for_export=True)
    assert flat.format == "csv"
    assert flat.sort == (("id", False),)
    assert len(flat.columns) == 24
    grouped = parse_report_params(GROUPED, {}, timezone="UTC", for_export=True)
    assert grouped.columns == ("type", "total_amount")
    assert grouped.sort == (("type", False),)
    assert ReportParams.from_json(grouped.to_json()) == grouped


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ({"limit": 5}, "limit"),  # paging keys are not export parameters
        ({"colums": ["id"]}, "colums"),
        ({"id_gt": True}, "id_gt"),
        ({"id_gt": 1.5}, "id_gt"),
        ({"columns": [1, 2]}, "columns"),
        ({"sort": {"id": "asc"}}, "sort"),
        ({"invoice_status": ["paid", 3]}, "invoice_status"),
        ({"invoice_due_date_gte": 20240729}, "invoice_due_date_gte"),
        ({"invoice_paid_at_gte": ["2024-07-29", "2024-07-30"]}, "invoice_paid_at_gte"),
        ({"format": ["csv", "json"]}, "format"),
    ],
)
def test_export_params_refused_naming_the_key(raw: dict[str, object], name: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_report_params(FLAT, raw, timezone="UTC", for_export=True)
    assert caught.value.errors
    assert caught.value.errors[0]["loc"] == [name]


def test_data_accepts_and_ignores_paging_keys() -> None:
    params = parse_report_params(
        FLAT, {"limit": "5", "page": "2"}, timezone="UTC", for_export=False
    )
    assert params == parse_report_params(FLAT, {}, timezone="UTC", for_export=True)


def test_export_is_one_snapshot(sample: Data) -> None:
    """Rows committed after the count are not in the file: count and rows agree."""
    engine = engine_for(sample.backend.database_url)
    params = parse_report_params(FLAT, {"columns": "id"}, timezone="UTC", for_export=True)
    out = io.BytesIO()
    with open_snapshot(engine) as conn:
        total = count_rows(conn, sample.api.account_id, params)
        sample.invoice([{"amount": 1}, {"amount": 2}])  # committed by another connection
        written = write_export(conn, sample.api.account_id, params, out, lambda _: None)
    assert total == written == len(sample.lines) - 2
    rows = list(csv.reader(io.StringIO(out.getvalue().decode(), newline="")))[1:]
    assert len(rows) == written
    with open_snapshot(engine) as conn:
        assert count_rows(conn, sample.api.account_id, params) == len(sample.lines)


def test_report_of_line_items_made_through_the_api(api: Api) -> None:
    """End to end: amounts the invoice API computed (quantity × unit price, rounded half away
    from zero once) are what the report shows and sums."""
    customer = create_customer(api, name="Ada")
    invoice = create_invoice(api, customer=customer["id"], status="open", currency="GBP")
    bodies = [
        {"type": "service_fee", "quantity": "3", "unit_price": "0.0035", "tax_rate": "0"},
        {"type": "service_fee", "quantity": "1.5", "unit_price": "2.25", "tax_rate": "0.20"},
        {"type": "flat_fee", "amount": "-3.50", "tax_rate": "0"},
    ]
    created = add_line_items(api, invoice["id"], bodies)
    cent = Decimal("0.01")
    expected = [
        (Decimal(b["quantity"]) * Decimal(b["unit_price"])).quantize(cent, ROUND_HALF_UP)
        if "quantity" in b
        else Decimal(b["amount"])
        for b in bodies
    ]
    body = fetch(api, columns="id,amount,customer.name,invoice.status")
    assert [row["id"] for row in body["rows"]] == [item["id"] for item in created]
    assert [row["amount"]["decimal"] for row in body["rows"]] == expected
    assert {row["customer"]["name"] for row in body["rows"]} == {"Ada"}
    grouped = fetch(api, "/reports/invoice_line_items.grouped/data")
    totals = {row["type"]: row["total_amount"]["decimal"] for row in grouped["rows"]}
    assert totals == {"service_fee": expected[0] + expected[1], "flat_fee": expected[2]}


KEYS = [
    "id_gt",
    "invoice_status",
    "invoice_due_date_gte",
    "invoice_paid_at_lte",
    "invoice_updated_at_gte",
    "columns",
    "sort",
    "format",
]
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(KEYS), value=JSONISH, report=st.sampled_from([FLAT, GROUPED]))
def test_any_value_is_parsed_or_refused_as_422(key: str, value: object, report: str) -> None:
    """No client value makes parsing fail with anything but a 422 naming the key."""
    refused: ValidationFailed | None = None
    try:
        params = parse_report_params(
            report, {key: value}, timezone="Pacific/Kiritimati", for_export=True
        )
    except ValidationFailed as error:
        refused = error
    if refused is not None:
        assert refused.errors
        assert refused.errors[0]["loc"] == [key]
    else:
        assert ReportParams.from_json(json.loads(json.dumps(params.to_json()))) == params


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"invoice_status": "paid\x00"}, "invoice_status"),
        ({"invoice_paid_at_gte": "２０２４-07-29"}, "invoice_paid_at_gte"),
        ({"id_gt": "１２"}, "id_gt"),
        ({"columns": "id\x00"}, "columns"),
    ],
)
def test_nul_bytes_and_unicode_digits_over_http(
    sample: Data, params: dict[str, str], named: str
) -> None:
    response = sample.api.get("/reports/invoice_line_items/data", params=params)
    assert_problem(response, 422, named)


def test_the_widest_bounds_over_http_keep_every_row(sample: Data) -> None:
    params = {"invoice_due_date_gte": "0001-01-01", "invoice_updated_at_lte": "9999-12-31"}
    response = sample.api.get("/reports/invoice_line_items/data", params=params)
    assert response.status_code == 200, response.text
    with_due_date = [line for line in sample.lines if line.invoice["due_date"] is not None]
    assert response.json()["total"] == len(with_due_date)
