"""The `timezone` parameter: every date-time of a `/data` answer and of an export file is
written at its instant in that IANA zone, with the zone's offset then; local periods keep
the account's zone; an unknown name is a 422 that writes nothing.

Expected cells are computed here from the instants the test stored (zoneinfo's conversion,
and for the daylight-saving edges the wall clock and offset written out by hand). On a real
migrated SQLite and PostgreSQL database; exports run by the real queue's consumer.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from ledgerline.db import engine_for
from ledgerline.exports.writers import open_snapshot, write_export
from ledgerline.jobs.queue import JobQueue
from ledgerline.models import Job
from ledgerline.reports.columns import CATALOGS, FLAT, GROUPED, INVOICES, INVOICES_GROUPED
from ledgerline.reports.kinds import offset_text
from ledgerline.reports.query import ReportParams, count_rows, parse_report_params
from tests.conftest import Api, assert_problem
from tests.jobs.conftest import consumer as consumer  # the fixture
from tests.jobs.conftest import download, wait_for_job
from tests.reports.conftest import Data, at
from tests.reports.test_csv_fast_path import nasty as nasty  # the fixture

NEW_YORK, LONDON = "America/New_York", "Europe/London"
# Both sides of each 2026 daylight-saving change in New York (8 March, 1 November) and
# London (29 March, 25 October), a fraction of a second, and each side of a year's end.
EDGES = [
    at("2026-03-08T06:59:59"),
    at("2026-03-08T07:00:00"),
    at("2026-03-29T00:59:59.999999"),
    at("2026-03-29T01:00:00"),
    at("2026-03-29T01:30:00"),
    at("2026-10-25T00:30:00"),
    at("2026-10-25T01:30:00"),
    at("2026-11-01T05:30:00"),
    at("2026-11-01T06:30:00"),
    at("2026-06-15T12:34:56.123456"),
    at("2026-12-31T23:30:00.5"),
    at("2027-01-01T04:59:59"),
]
# The same instants' text, written out by hand (not by zoneinfo).
BY_HAND = {
    NEW_YORK: {
        "2026-03-08T06:59:59": "2026-03-08T01:59:59-05:00",
        "2026-03-08T07:00:00": "2026-03-08T03:00:00-04:00",
        "2026-11-01T05:30:00": "2026-11-01T01:30:00-04:00",
        "2026-11-01T06:30:00": "2026-11-01T01:30:00-05:00",
        "2026-12-31T23:30:00.500000": "2026-12-31T18:30:00.500000-05:00",
        "2027-01-01T04:59:59": "2026-12-31T23:59:59-05:00",
    },
    LONDON: {
        "2026-03-29T00:59:59.999999": "2026-03-29T00:59:59.999999+00:00",
        "2026-03-29T01:00:00": "2026-03-29T02:00:00+01:00",
        "2026-03-29T01:30:00": "2026-03-29T02:30:00+01:00",
        "2026-10-25T00:30:00": "2026-10-25T01:30:00+01:00",
        "2026-10-25T01:30:00": "2026-10-25T01:30:00+00:00",
        "2026-06-15T12:34:56.123456": "2026-06-15T13:34:56.123456+01:00",
    },
}
DATETIME_KEYS = ("invoice.paid_at", "invoice.confirmed_at", "invoice.updated_at")
INVALID = ("Mars/Olympus", "", "../../etc/passwd", "UTC+5", "europe/london", "localtime")


def in_zone(moment: dt.datetime | None, zone: str | None) -> str | None:
    """The independent conversion: the stored instant at that zone, ISO 8601."""
    if moment is None:
        return None
    return moment.astimezone(ZoneInfo(zone or "UTC")).isoformat()


@pytest.fixture
def edges(data: Data) -> Data:
    """One invoice (one line) per instant of EDGES: paid at it, confirmed and updated at the
    next ones; one invoice never paid nor confirmed."""
    count = len(EDGES)
    for index, moment in enumerate(EDGES):
        data.invoice(
            [{"amount": 100 + index}],
            status="paid",
            paid_at=moment,
            confirmed_at=EDGES[(index + 1) % count],
            updated_at=EDGES[(index + 2) % count],
        )
    data.invoice([{"amount": 1}], status="draft", updated_at=EDGES[0])
    return data


def _data(api: Api, report: str, **query: Any) -> Any:
    response = api.get(f"/reports/{report}/data", params={"limit": 100, **query})
    assert response.status_code == 200, response.text
    return response.json()


def _flat_rows(api: Api, **query: Any) -> list[dict[str, Any]]:
    columns = ",".join(("id", *DATETIME_KEYS))
    rows: list[dict[str, Any]] = _data(api, FLAT, columns=columns, **query)["rows"]
    return rows


@pytest.mark.parametrize("zone", [NEW_YORK, LONDON])
def test_data_writes_every_instant_in_the_zone(edges: Data, zone: str) -> None:
    rows = _flat_rows(edges.api, timezone=zone)
    lines = sorted(edges.lines, key=lambda line: line.id)
    assert [row["id"] for row in rows] == [line.id for line in lines]
    written: dict[str, str] = {}
    for row, line in zip(rows, lines, strict=True):
        for key in DATETIME_KEYS:
            name = key.split(".")[1]
            moment = line.invoice[name]
            assert row["invoice"][name] == in_zone(moment, zone), (key, moment)
            if moment is not None:
                written[moment.replace(tzinfo=None).isoformat()] = row["invoice"][name]
    for stored, text in BY_HAND[zone].items():
        assert written[stored] == text


def test_without_the_parameter_or_in_utc_instants_are_written_as_before(edges: Data) -> None:
    api = edges.api
    plain = _data(api, FLAT, columns=",".join(("id", *DATETIME_KEYS)))
    assert _data(api, FLAT, columns=",".join(("id", *DATETIME_KEYS)), timezone="UTC") == plain
    lines = sorted(edges.lines, key=lambda line: line.id)
    for row, line in zip(plain["rows"], lines, strict=True):
        paid = row["invoice"]["paid_at"]
        assert paid == in_zone(line.invoice["paid_at"], "UTC")
        assert paid is None or paid.endswith("+00:00")
    assert {"2026-06-15T12:34:56.123456+00:00", "2026-12-31T23:30:00.500000+00:00"} <= {
        row["invoice"]["paid_at"] for row in plain["rows"]
    }


def test_the_invoices_reports_and_a_grouped_date_time_key(edges: Data) -> None:
    api = edges.api
    invoices = sorted(edges.invoices, key=lambda invoice: invoice["id"])
    body = _data(api, INVOICES, columns="id,paid_at,updated_at", timezone=NEW_YORK)
    assert [row["id"] for row in body["rows"]] == [invoice["id"] for invoice in invoices]
    for row, invoice in zip(body["rows"], invoices, strict=True):
        assert row["paid_at"] == in_zone(invoice["paid_at"], NEW_YORK)
        assert row["updated_at"] == in_zone(invoice["updated_at"], NEW_YORK)
    # A date-time as a grouping key: the same groups, each instant written in the zone.
    grouped = _data(api, GROUPED, columns="invoice.paid_at,count", timezone=LONDON)
    paid = [invoice["paid_at"] for invoice in invoices]
    instants = sorted({moment for moment in paid if moment is not None})
    expected = [in_zone(moment, LONDON) for moment in instants]
    keys = [row["invoice"]["paid_at"] for row in grouped["rows"]]
    assert keys == [*expected, None]
    # The invoices report grouped: its keys are periods and ids, never an instant; the
    # parameter is accepted and changes nothing.
    assert _data(api, INVOICES_GROUPED, timezone=NEW_YORK) == _data(api, INVOICES_GROUPED)


def test_local_periods_keep_the_accounts_zone(data: Data) -> None:
    # 23:30 UTC on 31 March 2026 is 00:30 on 1 April in London (the account's zone) and
    # 19:30 on 31 March in New York: the month stays the account's.
    data.invoice([{"amount": 5}], status="paid", paid_at=at("2026-03-31T23:30:00"))
    assert data.api.timezone == LONDON
    columns = "invoice.paid_at,invoice.paid_at_month,count"
    body = _data(data.api, GROUPED, columns=columns, timezone=NEW_YORK)
    assert body["rows"] == [
        {
            "invoice": {"paid_at": "2026-03-31T19:30:00-04:00", "paid_at_month": "2026-04"},
            "count": "1",
        }
    ]


# --- the export writers: the database's rendering equals the generic writer's -----------------


def _params(report: str, zone: str, output: str, **raw: Any) -> ReportParams:
    return parse_report_params(
        report, {**raw, "format": output, "timezone": zone}, timezone=LONDON, for_export=True
    )


def _write(data: Data, params: ReportParams, *, fast: bool) -> bytes:
    out = io.BytesIO()
    engine = engine_for(data.backend.database_url)
    with open_snapshot(engine) as conn:
        total = count_rows(conn, data.api.account_id, params)
        written = write_export(
            conn, data.api.account_id, params, out, lambda _done: None, fast=fast
        )
    assert written == total
    return out.getvalue()


def _every_column(report: str) -> str:
    catalog = CATALOGS[report]
    return ",".join(column.key for column in (*catalog.columns, *catalog.extensions))


@pytest.mark.parametrize("output", ["csv", "json"])
@pytest.mark.parametrize(
    "zone", [NEW_YORK, LONDON, "Asia/Kolkata", "America/St_Johns", "Australia/Lord_Howe"]
)
def test_the_database_rendered_file_equals_the_generic_writers(
    nasty: Data, output: str, zone: str
) -> None:
    """PostgreSQL renders the zone in SQL; SQLite leaves such a file to the generic writer.
    Either way the bytes are the generic writer's, for every column of every report."""
    for moment in EDGES:
        nasty.invoice([{"amount": 7}], paid_at=moment, confirmed_at=moment, updated_at=moment)
    # A local mean time of the 1800s: an offset with seconds (London's was -00:01:15).
    old = at("1800-01-01T00:00:00")
    nasty.invoice([{"amount": 8}], paid_at=old, confirmed_at=old, updated_at=old)
    for report in (FLAT, GROUPED, INVOICES, INVOICES_GROUPED):
        params = _params(report, zone, output, columns=_every_column(report))
        assert params.output_timezone == zone
        fast = _write(nasty, params, fast=True)
        assert fast == _write(nasty, params, fast=False), report
    params = _params(FLAT, zone, output, columns="id,invoice.paid_at,invoice.updated_at")
    body = _write(nasty, params, fast=True)
    lines = sorted(nasty.lines, key=lambda line: line.id)
    cells: list[tuple[Any, ...]]
    expected: list[tuple[Any, ...]]
    if output == "json":
        cells = [
            (row["id"], row["invoice"]["paid_at"], row["invoice"]["updated_at"])
            for row in json.loads(body)
        ]
        expected = [
            (
                line.id,
                in_zone(line.invoice["paid_at"], zone),
                in_zone(line.invoice["updated_at"], zone),
            )
            for line in lines
        ]
    else:
        table = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
        cells = [tuple(row) for row in table[1:]]
        expected = [
            (
                str(line.id),
                in_zone(line.invoice["paid_at"], zone) or "",
                in_zone(line.invoice["updated_at"], zone) or "",
            )
            for line in lines
        ]
    assert cells == expected


def test_the_job_parameters_keep_the_output_zone_apart_from_the_accounts() -> None:
    plain = parse_report_params(GROUPED, {}, timezone=LONDON, for_export=True)
    assert "output_timezone" not in plain.to_json()
    assert plain.output_timezone is None
    utc = parse_report_params(GROUPED, {"timezone": "UTC"}, timezone=LONDON, for_export=True)
    assert utc == plain
    zoned = parse_report_params(
        GROUPED,
        {"timezone": NEW_YORK, "columns": "paid_at_month"},
        timezone=LONDON,
        for_export=True,
    )
    recorded = zoned.to_json()
    assert recorded["timezone"] == LONDON
    assert recorded["output_timezone"] == NEW_YORK
    assert ReportParams.from_json(recorded) == zoned


# --- refused names -------------------------------------------------------------------------------


def _jobs_of(data: Data) -> int:
    with engine_for(data.backend.database_url).connect() as conn:
        statement = select(func.count()).where(Job.account_id == data.api.account_id)
        return int(conn.execute(statement.select_from(Job)).scalar_one())


@pytest.mark.parametrize("name", INVALID)
def test_an_unknown_zone_is_a_422_naming_timezone_and_writes_nothing(
    edges: Data, name: str
) -> None:
    api = edges.api
    for report in (FLAT, GROUPED, INVOICES, INVOICES_GROUPED):
        response = api.get(f"/reports/{report}/data", params={"timezone": name})
        body = assert_problem(response, 422, "timezone")
        assert body["errors"][0]["loc"] == ["timezone"]
        for request in (
            {"json": {"timezone": name}},
            {"params": {"timezone": name}},
            {"data": {"timezone": name}},
        ):
            exported = api.post(f"/reports/{report}/export", **request)
            assert_problem(exported, 422, "timezone")
    # A JSON value that is not a name at all.
    for value in (5, ["Europe/London", "UTC"], {"zone": "UTC"}, None):
        if value is None:
            continue
        response = api.post(f"/reports/{FLAT}/export", json={"timezone": value})
        assert_problem(response, 422, "timezone")
    assert _jobs_of(edges) == 0


def test_the_parameter_is_documented_on_every_report_endpoint(edges: Data) -> None:
    document = edges.api.client.get("/openapi.json").json()
    for report in (FLAT, GROUPED, INVOICES, INVOICES_GROUPED):
        for path, method in (
            (f"/api/v2/reports/{report}/data", "get"),
            (f"/api/v2/reports/{report}/export", "post"),
        ):
            operation = document["paths"][path][method]
            names = {parameter["name"] for parameter in operation["parameters"]}
            assert "timezone" in names, path
        body = document["paths"][f"/api/v2/reports/{report}/export"]["post"]["requestBody"]
        schema = body["content"]["application/json"]["schema"]
        assert "timezone" in schema["properties"]


# --- exports run by the consumer -----------------------------------------------------------------


@pytest.mark.parametrize("output", ["csv", "json"])
def test_an_export_writes_every_instant_in_the_zone(
    edges: Data, consumer: JobQueue, output: str
) -> None:
    api = edges.api
    columns = ["id", *DATETIME_KEYS]
    response = api.post(
        f"/reports/{FLAT}/export",
        json={"format": output, "columns": columns, "timezone": NEW_YORK},
    )
    assert response.status_code == 200, response.text
    job = wait_for_job(api, response.json()["job"])
    assert job["status"] == "succeeded", job
    assert job["params"]["output_timezone"] == NEW_YORK
    # The account's zone is recorded only for local periods, none of which is requested.
    assert "timezone" not in job["params"]
    content = download(api, job)
    lines = sorted(edges.lines, key=lambda line: line.id)
    names = [key.split(".")[1] for key in DATETIME_KEYS]
    expected = [
        [line.id, *(in_zone(line.invoice[name], NEW_YORK) for name in names)] for line in lines
    ]
    if output == "json":
        rows = json.loads(content)
        cells = [[row["id"], *(row["invoice"][name] for name in names)] for row in rows]
    else:
        table = list(csv.reader(io.StringIO(content.decode("utf-8"), newline="")))
        cells = [[int(row[0]), *(cell or None for cell in row[1:])] for row in table[1:]]
    assert cells == expected
    # The same export without the parameter is written in UTC, as before.
    again = api.post(
        f"/reports/{FLAT}/export", params={"format": output, "columns": ",".join(columns)}
    )
    plain = wait_for_job(api, again.json()["job"])
    assert plain["status"] == "succeeded", plain
    assert "output_timezone" not in plain["params"]
    assert b"+00:00" in download(api, plain)
    assert b"-05:00" not in download(api, plain)


def test_offset_text_is_pythons() -> None:
    """The offsets PostgreSQL's CASE writes as literals are written as `isoformat` writes
    them, for every whole-second offset a zone can have (within ±24 h)."""
    moment = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for seconds in (*range(-86399, 86400, 997), -75, 0, 19800, -12600, 37800, 3600, -18000):
        zone = dt.timezone(dt.timedelta(seconds=seconds))
        assert offset_text(seconds) == moment.replace(tzinfo=zone).isoformat()[19:], seconds
