"""Inputs a finance user would get wrong: codes that are not money, digits that are not
ASCII, billed item objects TeamUp does not document. Each is a 422 naming the field, and a
read-back shows nothing was written."""

from __future__ import annotations

from typing import Any

import pytest

from ledgerline.accounts import AccountInputError, create_account
from ledgerline.db import transaction
from tests.conftest import Api, Backend, assert_problem
from tests.factories import TEAMUP_BILLED_OBJECTS, add_line_item, create_invoice
from tests.invoices.expected import as_decimal, exact_json

# ISO 4217 X-codes that are not a currency: none, testing, metals, units of account.
NOT_MONEY = ["XXX", "XTS", "XAU", "XAG", "XPT", "XPD", "XDR", "XBA", "XBB", "XBC", "XBD", "XSU"]
NOT_MONEY += ["XUA", "xau", " xts "]
# Fund codes and withdrawn currencies: listed by ISO (or once were), not legal tender now.
NOT_TENDER = ["USN", "BOV", "CLF", "DEM", "FRF", "HRK", "ZWL", "uſd"]
# X-codes that are currencies (CFA francs, CFP franc, East Caribbean dollar), and others.
LEGAL = {"XAF": 0, "XOF": 0, "XPF": 0, "XCD": 2, "KWD": 3, "JPY": 0, "eur": 2}


def state(api: Api) -> dict[str, Any]:
    """Everything the account holds that these tests could have written."""
    invoices = api.get("/invoices", params={"limit": 100, "expand": "line_items"}).json()
    return {"invoices": invoices, "customers": api.get("/customers").json()}


@pytest.mark.parametrize("code", NOT_MONEY + NOT_TENDER)
def test_codes_that_are_not_legal_tender_are_refused(api: Api, code: str) -> None:
    invoice = create_invoice(api)
    before = state(api)
    assert_problem(api.post("/invoices", json={"currency": code}), 422, "currency")
    assert_problem(
        api.patch(f"/invoices/{invoice['id']}", json={"currency": code}), 422, "currency"
    )
    assert state(api) == before
    assert api.get(f"/invoices/{invoice['id']}").json()["currency"] == "GBP"


@pytest.mark.parametrize("code", [*NOT_MONEY[:3], "HRK"])
def test_accounts_refuse_them_too(backend: Backend, code: str) -> None:
    with (
        pytest.raises(AccountInputError, match="legal tender"),
        transaction(backend.database_url, writes=True) as session,
    ):
        create_account(session, "Refused", code, "Europe/London")


@pytest.mark.parametrize(("code", "digits"), sorted(LEGAL.items()))
def test_legal_tender_x_codes_keep_working(api: Api, code: str, digits: int) -> None:
    invoice = create_invoice(api, currency=code)
    assert invoice["currency"] == code.upper()
    amount = "1234" if digits == 0 else "12." + "3" * digits
    line = add_line_item(api, invoice["id"], type="flat_fee", amount=amount)
    assert line["amount"]["iso_currency_code"] == code.lower()
    too_fine = amount + "5" if digits else amount + ".5"
    response = api.post(
        f"/invoices/{invoice['id']}/line_items", json={"type": "flat_fee", "amount": too_fine}
    )
    assert_problem(response, 422, "amount")
    body = exact_json(api.get(f"/invoices/{invoice['id']}"))
    assert str(as_decimal(body["gross_total"])) == amount


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("amount", "４５.00"),  # fullwidth digits
        ("amount", "٤٥"),  # Arabic-Indic
        ("amount", "4５"),
        ("amount", "45.0０"),
        ("quantity", "１"),
        ("unit_price", "0.００35"),
        ("tax_rate", "０.20"),
        ("discount_amount", "١"),
        ("credit_amount", "𝟏.00"),  # mathematical bold digit one
        ("refund_amount", "۱"),  # extended Arabic-Indic
    ],
)
def test_amounts_take_ascii_digits_only(api: Api, field: str, text: str) -> None:
    invoice = create_invoice(api)
    line = add_line_item(api, invoice["id"], type="flat_fee", amount="10.00")
    before = state(api)
    body: dict[str, Any] = {"type": "flat_fee", "amount": "10.00"}
    if field in ("quantity", "unit_price"):
        body = {"type": "flat_fee", "quantity": "1", "unit_price": "10.00"}
    body[field] = text
    url = f"/invoices/{invoice['id']}/line_items"
    assert_problem(api.post(url, json=body), 422, field)
    assert_problem(api.post(url, json={"items": [body]}), 422, field)
    patch = {field: text} if field not in ("quantity", "unit_price") else body
    patch.pop("type", None)
    assert_problem(api.patch(f"{url}/{line['id']}", json=patch), 422, field)
    assert state(api) == before


def test_every_documented_billed_item_object_is_accepted(api: Api) -> None:
    invoice = create_invoice(api)
    items = [
        {"type": "flat_fee", "amount": "1", "billed_item": {"object": name, "id": index}}
        for index, name in enumerate(TEAMUP_BILLED_OBJECTS)
    ]
    created = api.post(f"/invoices/{invoice['id']}/line_items", json={"items": items})
    assert created.status_code == 201, created.text
    assert [line["billed_item"] for line in created.json()["items"]] == [
        item["billed_item"] for item in items
    ]


@pytest.mark.parametrize("name", ["pack", "membership", "Event", "gift_card", "", "store_order"])
def test_other_billed_item_objects_are_refused(api: Api, name: str) -> None:
    invoice = create_invoice(api)
    line = add_line_item(api, invoice["id"], type="flat_fee", amount="1")
    before = state(api)
    url = f"/invoices/{invoice['id']}/line_items"
    bad = {"type": "flat_fee", "amount": "1", "billed_item": {"object": name, "id": 1}}
    assert_problem(api.post(url, json=bad), 422, "billed_item.object")
    batch = api.post(url, json={"items": [{"type": "flat_fee", "amount": "1"}, bad]})
    assert_problem(batch, 422, "items.1.billed_item.object")
    patch = api.patch(f"{url}/{line['id']}", json={"billed_item": {"object": name, "id": 1}})
    assert_problem(patch, 422, "billed_item.object")
    assert state(api) == before
