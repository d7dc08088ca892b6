"""Each column kind's rendering in each output format, defined once: the `KINDS` table.

A kind (text, money, date, date-time, bool, …) has one `Renderings` entry with one field per
format: its JSON cell and CSV cell as Python source for the generated row makers
(`reports.rendering`), its CSV cell as SQL for the database-rendered CSV on PostgreSQL
and on SQLite, and its JSON value as SQL for the database-rendered JSON on each. Adding a kind
is one entry; adding a format is one field, filled in once per
kind. The catalog (`reports.columns`) says which kind each column is; nothing outside this
module branches on a kind's rendering.

Below the table's helpers: the one Python formula guard (`csv_text`), the one SQL formula
guard (`sql_formula_start`, dialect-aware), the one currency CASE (`by_currency_digits`) and
the money objects' currency parts in SQL (`currency_symbol_sql`, `money_tail_sql`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from json.encoder import encode_basestring
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo, available_timezones

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    String,
    Text,
    case,
    cast,
    extract,
    func,
    literal,
    literal_column,
    null,
    or_,
    type_coerce,
)

from ledgerline.money import currency_digits, currency_symbol, known_currencies
from ledgerline.reports.periods import offset_transitions

Kind = Literal["int", "ref", "count", "text", "money", "date", "datetime", "bool", "billed_item"]
SqlDialect = Literal["sqlite", "postgresql"]
# A SQLite cell is a piece of its record's printf format, and the piece's arguments.
Piece = tuple[str, list[ColumnElement[Any]]]

# --- Python values: what the generated row makers call ---------------------------------------

# A text cell starting with one of these is run as a formula by spreadsheets (SPEC §5). A
# leading line break hides what follows from a reader of the cell while a spreadsheet may still
# run it, so LF is guarded as CR is.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
_FORMULA_CHARS = frozenset(FORMULA_START)


def csv_text(text: str) -> str:
    """A non-empty text cell as written to CSV: the formula guard (decided on the text's own
    first character), then every line break inside it (CRLF, CR or LF) written as CRLF."""
    if text[0] in _FORMULA_CHARS:
        text = "'" + text
    if "\r" in text or "\n" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
    return text


def json_text(value: str) -> str:
    """A JSON string literal, non-ASCII kept as is (the C encoder of the standard library)."""
    return encode_basestring(value)


class MoneyFormat:
    """Minor units of one currency as a CSV plain decimal or a TeamUp money object's JSON,
    exactly as `money.plain_decimal` and `money.money_object` render them, but cheaply."""

    def __init__(self, currency: str) -> None:
        self.digits = currency_digits(currency)
        self.divisor = 10**self.digits
        self._positive = f"%d.%0{self.digits}d"
        self._negative = "-" + self._positive
        symbol = currency_symbol(currency).replace("%", "%%")
        self._display = f"%s{symbol}%s.%0{self.digits}d" if self.digits else f"%s{symbol}%s"
        tail = (
            f',"iso_currency_code":{json_text(currency.lower())}'
            f',"currency_symbol":{json_text(currency_symbol(currency))}'
            ',"currency_symbol_position":"before"}'
        )
        self._object = '{"decimal":%s,"string":%s' + tail.replace("%", "%%")

    def plain(self, value: int) -> str:
        """4550 -> "45.50"; -350 -> "-3.50"; JPY 1200 -> "1200"."""
        if not self.digits:
            return str(value)
        text: str
        if value >= 0:
            text = self._positive % divmod(value, self.divisor)
        else:
            text = self._negative % divmod(-value, self.divisor)
        return text

    def json(self, value: int) -> str:
        whole, fraction = divmod(abs(value), self.divisor)
        sign = "-" if value < 0 else ""
        number = self.plain(value)
        if self.digits:
            number = number.rstrip("0").rstrip(".")
            display = self._display % (sign, f"{whole:,}", fraction)
        else:
            display = self._display % (sign, f"{whole:,}")
        return self._object % (number, json_text(display))


class _MoneyFormats(dict[str, MoneyFormat]):
    def __missing__(self, currency: str) -> MoneyFormat:
        made = self[currency] = MoneyFormat(currency)
        return made


MONEY_FORMATS = _MoneyFormats()


def iso_date(raw: Any) -> str | None:
    """A date as the driver gives it (ISO text from SQLite, a date from PostgreSQL)."""
    if raw is None:
        return None
    day = dt.date.fromisoformat(raw) if isinstance(raw, str) else raw
    return str(day.isoformat())


def utc_iso(raw: Any) -> str | None:
    """A date-time as the driver gives it (naive UTC text from SQLite, an aware datetime
    from PostgreSQL) as ISO 8601 in UTC, exactly like `UTCDateTime` then `isoformat()`."""
    if raw is None:
        return None
    moment = dt.datetime.fromisoformat(raw) if isinstance(raw, str) else raw
    if moment.tzinfo is None:
        return str(moment.replace(tzinfo=dt.UTC).isoformat())
    return str(moment.astimezone(dt.UTC).isoformat())


# Names the time zone database holds that are not zones a client means: the server's own
# "localtime", and the database's internal "posixrules" and "Factory".
_NOT_OUTPUT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


@lru_cache(maxsize=1)
def output_zones() -> frozenset[str]:
    """The IANA zone names an output time zone may be (zoneinfo's, loaded once)."""
    return frozenset(available_timezones()) - _NOT_OUTPUT_ZONES


def known_output_zone(zone: str) -> str:
    """`zone` itself when it is one of `output_zones()`, else ValueError: a zone goes into
    generated SQL as a literal, so only a name from the database's own list ever does."""
    if zone not in output_zones():
        raise ValueError(f"{zone!r} is not an IANA time zone name")
    return zone


def zoned_iso(zone: str | None) -> Callable[[Any], str | None]:
    """A date-time as the driver gives it as ISO 8601 at that instant in `zone`, with the
    zone's offset then: exactly `moment.astimezone(ZoneInfo(zone)).isoformat()`
    ("2026-03-29T02:30:00+01:00" in Europe/London). None: UTC (`utc_iso`)."""
    if zone is None:
        return utc_iso
    tz = ZoneInfo(known_output_zone(zone))

    def render(raw: Any) -> str | None:
        if raw is None:
            return None
        moment = dt.datetime.fromisoformat(raw) if isinstance(raw, str) else raw
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return str(moment.astimezone(tz).isoformat())

    return render


class Rendered(dict[Any, Any]):
    """`render(raw)` by subscription, remembering recent results (bounded).

    Values repeat across rows: a line item carries its invoice's timestamps, and amounts come
    from price lists (discounts, credits and refunds are mostly zero). A hit is one dict
    lookup in C, with no Python call.
    """

    __slots__ = ("render",)
    LIMIT = 8192

    def __init__(self, render: Callable[[Any], Any]) -> None:
        super().__init__()
        self.render = render

    def __missing__(self, raw: Any) -> Any:
        if len(self) >= self.LIMIT:
            self.clear()
        made = self[raw] = self.render(raw)
        return made


class _ByCurrency(dict[str, Rendered]):
    """currency -> Rendered(one of MoneyFormat's renderings), made on first use."""

    def __init__(self, rendering: Callable[[MoneyFormat], Callable[[int], str]]) -> None:
        super().__init__()
        self.rendering = rendering

    def __missing__(self, currency: str) -> Rendered:
        made = self[currency] = Rendered(self.rendering(MONEY_FORMATS[currency]))
        return made


def _json_or_null(encode: Callable[[Any], str]) -> Callable[[Any], str]:
    return lambda value: "null" if value is None else encode(value)


def _json_iso_text(text: str | None) -> str:
    return "null" if text is None else '"' + text + '"'


def _json_billed_item(kind: str | None, ident: int | None) -> str:
    if kind is None:
        return "null"
    return f'{{"object":{json_text(kind)},"id":{"null" if ident is None else ident}}}'


def billed_item_text(kind: str | None, ident: int | None) -> str | None:
    """A billed item as one text: "<object>:<id>", the object alone, or None."""
    if kind is None:
        return None
    return kind if ident is None else f"{kind}:{ident}"


def _csv_billed_item(kind: str | None, ident: int | None) -> str | None:
    cell = billed_item_text(kind, ident)
    return csv_text(cell) if cell else cell


# --- SQL values: the CSV rendered by the database (the export fast path) ---------------------
#
# The same CSV as `rendering.csv_row_maker` + the csv module, as SQL per dialect, so that the
# database renders every cell as text and the export only moves bytes (`exports.writers`);
# tests/reports/test_csv_fast_path.py holds the two paths to byte equality.
#
# PostgreSQL: one text cell per column, written by `COPY … (FORMAT csv)`, which ends records
# with LF; the writer turns every LF of its output into CRLF in one pass, so line breaks inside
# text are rendered LF here (and become CRLF there, as `csv_text` writes them).
# SQLite: one finished CSV record per row (`printf` of the cells, quoted here exactly as the
# csv module quotes), because fetching one value a row costs a 25th of fetching 25.

_CR, _LF, _CRLF = "\r", "\n", "\r\n"
# Code points of FORMULA_START, for the first character's code point in SQL.
_FORMULA_CODES = tuple(ord(char) for char in FORMULA_START)
# What makes the csv module quote a field (QUOTE_MINIMAL, "," delimiter, CRLF line ends).
_CSV_QUOTED_CHARS = (",", '"', _CR, _LF)


def sql_text(expr: Any) -> ColumnElement[Any]:
    """`expr` typed as text, so that `+` renders as `||` on every dialect."""
    typed: ColumnElement[Any] = type_coerce(expr, Text())
    return typed


def sql_int(value: int) -> ColumnElement[Any]:
    literal: ColumnElement[Any] = literal_column(str(int(value)))
    return literal


def sql_op(left: Any, operator: str, right: Any) -> ColumnElement[Any]:
    """`left <operator> right` exactly as written (integer division and modulo)."""
    combined: ColumnElement[Any] = left.op(operator)(right)
    return combined


def sql_formula_start(source: Any, dialect: SqlDialect) -> ColumnElement[bool]:
    """The SQL formula guard's test: `source` starts with one of FORMULA_START (compared by
    the first character's code point: SQLite's unicode(), PostgreSQL's ascii())."""
    first = func.unicode(source) if dialect == "sqlite" else func.ascii(source)
    starts: ColumnElement[bool] = first.in_([sql_int(code) for code in _FORMULA_CODES])
    return starts


def _sql_guarded(value: Any, starts: ColumnElement[bool]) -> ColumnElement[Any]:
    return case((starts, "'" + sql_text(value)), else_=sql_text(value))


def _sql_text_pg(value: Any, source: Any) -> ColumnElement[Any]:
    """`csv_text` in PostgreSQL, line breaks LF (see above); NULL for an empty cell (COPY
    quotes an empty string to tell it from NULL; the csv module writes nothing)."""
    text_value = sql_text(value)
    starts = sql_formula_start(source, "postgresql")
    lf = func.replace(func.replace(_sql_guarded(value, starts), _CRLF, _LF), _CR, _LF)
    # Guarded or holding a CR, a cell is never empty: only the last branch needs NULLIF.
    return sql_text(
        case(
            (func.strpos(source, _CR) > sql_int(0), lf),
            (starts, "'" + text_value),
            else_=func.nullif(text_value, ""),
        )
    )


def _sql_text_sqlite(value: Any, source: Any) -> ColumnElement[Any]:
    """`csv_text` in SQLite, then quoted as the csv module quotes: a field holding a comma,
    a quote, CR or LF is enclosed in quotes with its quotes doubled; line breaks CRLF."""
    guarded = _sql_guarded(value, sql_formula_start(source, "sqlite"))
    crlf = func.replace(func.replace(func.replace(guarded, _CRLF, _LF), _CR, _LF), _LF, _CRLF)
    quoted = '"' + sql_text(func.replace(crlf, '"', '""')) + '"'
    needs_quotes = or_(
        *(type_coerce(func.instr(source, char), Boolean) for char in _CSV_QUOTED_CHARS)
    )
    return sql_text(case((needs_quotes, quoted), else_=guarded))


def currencies_by_digits() -> dict[int, tuple[str, ...]]:
    """Every known ISO 4217 currency whose minor-unit digits are not 2, by digits."""
    groups: dict[int, list[str]] = {}
    for currency in sorted(known_currencies()):
        digits = currency_digits(currency)
        if digits != 2:
            groups.setdefault(digits, []).append(currency)
    return {digits: tuple(codes) for digits, codes in sorted(groups.items())}


def by_currency_digits(
    currency: ColumnElement[Any], value: Callable[[int], ColumnElement[Any]]
) -> ColumnElement[Any]:
    """`value(digits)` for the row's `currency`: one CASE over the currencies whose minor-unit
    digits are not 2, the common two-digit case first (most rows take that branch)."""
    groups = currencies_by_digits()
    other = [code for codes in groups.values() for code in codes]
    whens = [(currency.not_in(other), value(2))]
    whens += [(currency.in_(codes), value(digits)) for digits, codes in groups.items()]
    return case(*whens)


def _sql_minor_unit(digits: int) -> ColumnElement[Any]:
    """PostgreSQL: one minor unit as an exact numeric literal of `digits` decimal places
    (0.01 for 2, 0.001 for 3, 1 for 0)."""
    unit: ColumnElement[Any] = literal_column(
        "1" if digits == 0 else "0." + "0" * (digits - 1) + "1"
    )
    return unit


def _sql_money_pg(amount: Any, currency: ColumnElement[Any]) -> ColumnElement[Any]:
    """PostgreSQL: minor units as `MoneyFormat.plain` writes them: 4550 -> 45.50,
    -5 -> -0.05, JPY -1200 -> -1200.

    The amount times its currency's minor unit (a CASE over the currencies whose digits are
    not 2; most rows take the first branch) is an exact numeric whose scale is the unit's,
    and numeric's text is exactly that plain decimal. One multiplication and the type's own
    output cost less than sign, division, modulo and padding as text (docs/performance.md)."""
    return sql_text(cast(amount * by_currency_digits(currency, _sql_minor_unit), Text))


def _sql_money_sqlite(amount: Any, digits: int) -> Piece:
    """SQLite: a money cell as a printf piece and its arguments, in integers, for a record
    whose currency has `digits` digits (`rendering.csv_sql_record` picks the record's
    layout by one currency CASE per row, instead of one per money cell)."""
    if digits == 0:
        return "%d", [amount]
    divisor = sql_int(10**digits)
    sign = case((amount < sql_int(0), "-"), else_="")
    magnitude = func.abs(amount)
    pieces = [sign, sql_op(magnitude, "/", divisor), sql_op(magnitude, "%", divisor)]
    return f"%s%d.%0{digits}d", pieces


def _sql_datetime_pg(moment: Any, zone: str | None = None) -> ColumnElement[Any]:
    """`utc_iso` in PostgreSQL: ISO 8601 in UTC with "T", microseconds only when not zero;
    with an output `zone`, `_sql_zoned_datetime_pg`.

    A whole second is the type's own ISO text: `_write_csv_copy` sets the session's TimeZone
    to UTC and DateStyle to ISO, so it reads "YYYY-MM-DD HH:MM:SS+00". The output trims a
    fraction's trailing zeros, which `utc_iso` keeps (".120000"), so a fraction takes
    to_char, which is slower (docs/performance.md)."""
    if zone is not None:
        return _sql_zoned_datetime_pg(moment, zone)
    whole_second = func.date_trunc("second", moment) == moment
    as_text = sql_text(func.replace(cast(moment, Text), " ", "T")) + ":00"
    utc = func.timezone("UTC", moment)
    fraction = sql_text(func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS.US')) + "+00:00"
    return sql_text(case((whole_second, as_text), else_=fraction))


def _two_digits(value: ColumnElement[Any]) -> ColumnElement[Any]:
    return sql_text(func.to_char(value, "FM00"))


def offset_text(seconds: int) -> str:
    """A UTC offset of `seconds` as Python's `isoformat` writes it: "+01:00", "-05:00",
    "+05:30", and "-00:01:15" when it has seconds."""
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, remainder = divmod(rest, 60)
    return f"{sign}{hours:02d}:{minutes:02d}" + (f":{remainder:02d}" if remainder else "")


def _sql_offset_text(offset: ColumnElement[Any]) -> ColumnElement[Any]:
    """`offset_text` in PostgreSQL, of an offset in whole seconds (any offset)."""
    magnitude = func.abs(offset)
    sign = case((offset < sql_int(0), "-"), else_="+")
    hours = _two_digits(sql_op(magnitude, "/", sql_int(3600)))
    # mod(), not %: the SQL is run as text by COPY, where psycopg's escaping would stay "%%".
    minutes = _two_digits(sql_op(func.mod(magnitude, sql_int(3600)), "/", sql_int(60)))
    remainder = func.mod(magnitude, sql_int(60))
    seconds = case((remainder == sql_int(0), ""), else_=":" + _two_digits(remainder))
    return sql_text(sign + hours + ":" + minutes + seconds)


def _sql_zoned_datetime_pg(moment: Any, zone: str) -> ColumnElement[Any]:
    """`zoned_iso(zone)` in PostgreSQL, whatever the session's TimeZone: the wall clock in
    `zone` at that instant (`timezone(zone, moment)`), then the zone's offset at that instant
    (that wall clock less the UTC one) as Python writes it.

    The wall clock of a whole second is the timestamp's own ISO text (DateStyle ISO, which
    `COPY_SESSION` sets, as for UTC); a fraction takes to_char, the type's text trimming the
    zeros Python keeps. The offset is one CASE over the offsets the zone has between 1970 and
    2100 (from zoneinfo, `periods.offset_transitions`: two for most zones), each its literal
    text; any other (a local mean time of the 1800s, "-00:01:15") is formatted in SQL.
    Measured on 200,000 rows, this cell cost two-thirds of one formatting every offset in SQL
    (docs/reports.md).

    The zone is inlined as a literal only after `known_output_zone` (a name from zoneinfo's
    own list, never client text as given). PostgreSQL reads it with its own copy of the time
    zone database, which must know the name (docs/reports.md, "Output time zone")."""
    local = func.timezone(literal(known_output_zone(zone), String), moment)
    whole_second = func.date_trunc("second", moment) == moment
    clock = case(
        (whole_second, func.replace(cast(local, Text), " ", "T")),
        else_=func.to_char(local, 'YYYY-MM-DD"T"HH24:MI:SS.US'),
    )
    offset = cast(extract("epoch", local - func.timezone("UTC", moment)), BigInteger)
    first, transitions = offset_transitions(zone)
    offsets = {int(first.total_seconds())}
    offsets |= {int(after.total_seconds()) for _at, after in transitions}
    known = {seconds: offset_text(seconds) for seconds in sorted(offsets)}
    written = case(known, value=offset, else_=_sql_offset_text(offset))
    return sql_text(sql_text(clock) + written)


def _sql_datetime_sqlite(moment: Any, zone: str | None = None) -> ColumnElement[Any]:
    """`utc_iso` in SQLite, from SQLAlchemy's naive UTC text "YYYY-MM-DD HH:MM:SS.ffffff".

    SQLite has no time zone database: date-times in another output zone are rendered by the
    generic writer's `zoned_iso` instead (`rendering.database_renders`)."""
    if zone is not None:
        raise ValueError("SQLite renders date-times in UTC only")
    iso = func.replace(func.replace(moment, " ", "T"), ".000000", "")
    return sql_text(sql_text(iso) + "+00:00")


def _sql_billed_item(exprs: tuple[ColumnElement[Any], ...]) -> tuple[ColumnElement[Any], Any]:
    """(cell text, what decides the guard and quoting): "<object>:<id>", or the object alone."""
    kind, ident = exprs
    joined = case((ident.is_(None), kind), else_=sql_text(kind) + ":" + cast(ident, Text))
    # ":<digits>" neither starts a formula nor needs quotes: `kind` decides both.
    return joined, kind


def _sql_bool(value: Any, nullable: bool) -> ColumnElement[Any]:
    if nullable:
        return sql_text(case((value.is_(None), null()), (value, "true"), else_="false"))
    return sql_text(case((value, "true"), else_="false"))


# --- SQL values: the JSON rendered by the database ---------------------------------------------
#
# The same JSON values as the `json` cells above (and so as /data rows), as SQL text: each
# value is JSON text, never NULL ("null" for an absent value). Strings are escaped by the
# database (SQLite's json_quote, PostgreSQL's to_json), which escape exactly what
# `json_text` escapes: `"`, `\\`, and the control characters below U+0020 (\b \f \n \r \t
# by name, the others as \u00xx in lower-case hex); `/`, DEL and every non-ASCII character
# are kept as they are (tests/reports/test_json_fast_path.py). PostgreSQL's pieces are
# joined with `||`; SQLite's are pieces of the row's printf format, as its CSV's are.

# The currencies whose symbol is not their code, most frequent first: the money objects'
# CASEs test them in this order (a currency not listed is its own symbol).
_COMMON_CURRENCIES = ("GBP", "EUR", "USD", "AUD", "CAD", "NZD", "JPY")


def _special_symbols() -> list[tuple[str, str]]:
    codes = [code for code in sorted(known_currencies()) if currency_symbol(code) != code]
    order = {code: rank for rank, code in enumerate(_COMMON_CURRENCIES)}
    codes.sort(key=lambda code: order.get(code, len(order)))
    return [(code, currency_symbol(code)) for code in codes]


def _json_inner(text: str) -> str:
    """`text` as it sits inside a JSON string literal (escaped, without the quotes)."""
    return json_text(text)[1:-1]


def currency_symbol_sql(currency: ColumnElement[Any]) -> ColumnElement[Any]:
    """The row's currency symbol as `MoneyFormat` writes it inside a JSON string."""
    whens = {code: _json_inner(symbol) for code, symbol in _special_symbols()}
    return sql_text(case(whens, value=currency, else_=currency))


def _money_tail(currency: str) -> str:
    """What follows a money object's "string" member: `MoneyFormat`'s tail for `currency`."""
    return (
        f',"iso_currency_code":{json_text(currency.lower())}'
        f',"currency_symbol":{json_text(currency_symbol(currency))}'
        ',"currency_symbol_position":"before"}'
    )


def money_tail_sql(currency: ColumnElement[Any]) -> ColumnElement[Any]:
    """A money object's members after "string", and its closing brace, for the row's currency
    (a currency whose symbol is its code: the code, and its lower case for the ISO member)."""
    whens = {code: _money_tail(code) for code, _symbol in _special_symbols()}
    other = (
        sql_text(',"iso_currency_code":"')
        + func.lower(currency)
        + '","currency_symbol":"'
        + sql_text(currency)
        + '","currency_symbol_position":"before"}'
    )
    return sql_text(case(whens, value=currency, else_=other))


def _sql_json_money_pg(amount: Any, currency: ColumnElement[Any]) -> ColumnElement[Any]:
    """PostgreSQL: `MoneyFormat.json`: the decimal is the amount times its minor unit with
    trailing zeros trimmed (trim_scale), the display string its magnitude by to_char with
    thousands separators after the sign and the symbol."""

    def for_digits(digits: int) -> ColumnElement[Any]:
        unit = _sql_minor_unit(digits)
        # 19 digits in groups of three: any BIGINT's whole part
        pattern = "FM9,999,999,999,999,999,990" + ("." + "0" * digits if digits else "")
        decimal = cast(func.trim_scale(amount * unit), Text)
        magnitude = func.to_char(func.abs(amount) * unit, pattern)
        sign = case((amount < sql_int(0), "-"), else_="")
        return sql_text(
            sql_text('{"decimal":')
            + decimal
            + ',"string":"'
            + sign
            + currency_symbol_sql(currency)
            + magnitude
            + '"'
        )

    return sql_text(by_currency_digits(currency, for_digits) + money_tail_sql(currency))


def _sql_json_money_sqlite(amount: Any, currency: ColumnElement[Any], digits: int) -> Piece:
    """SQLite: `MoneyFormat.json` as a printf piece, in integers, for a record whose currency
    has `digits` digits: the decimal's fraction without its trailing zeros (none when it is
    zero), the display's magnitude with printf's thousands separators (`%,d`)."""
    sign = case((amount < sql_int(0), "-"), else_="")
    symbol, tail = currency_symbol_sql(currency), money_tail_sql(currency)
    magnitude = func.abs(amount)
    if digits == 0:
        return '{"decimal":%d,"string":"%s%s%,d"%s', [amount, sign, symbol, magnitude, tail]
    divisor = sql_int(10**digits)
    whole, fraction = sql_op(magnitude, "/", divisor), sql_op(magnitude, "%", divisor)
    trimmed = case(
        (fraction == sql_int(0), ""),
        else_="." + sql_text(func.rtrim(func.printf(f"%0{digits}d", fraction), "0")),
    )
    piece = '{"decimal":%s%d%s,"string":"%s%s%,d.%0' + str(digits) + 'd"%s'
    return piece, [sign, whole, trimmed, sign, symbol, whole, fraction, tail]


def _quoted(value: ColumnElement[Any]) -> ColumnElement[Any]:
    """Text that needs no escaping (ISO dates and date-times) as a JSON string; NULL stays
    NULL."""
    return sql_text(sql_text('"') + value + '"')


def _or_null(value: ColumnElement[Any]) -> ColumnElement[Any]:
    return sql_text(func.coalesce(value, "null"))


def _sql_json_number(slot: SqlSlot) -> ColumnElement[Any]:
    number = sql_text(cast(slot.value, Text))
    return _or_null(number) if slot.nullable else number


def _sql_json_text_pg(slot: SqlSlot) -> ColumnElement[Any]:
    quoted = _pg_quote(slot.value)
    return _or_null(quoted) if slot.nullable else quoted


def _sql_json_bool(value: Any, nullable: bool) -> ColumnElement[Any]:
    if nullable:
        return sql_text(case((value.is_(None), "null"), (value, "true"), else_="false"))
    return sql_text(case((value, "true"), else_="false"))


def _sql_json_billed_item(
    exprs: tuple[ColumnElement[Any], ...], quote: Callable[[Any], ColumnElement[Any]]
) -> ColumnElement[Any]:
    kind, ident = exprs
    item = (
        sql_text('{"object":')
        + quote(kind)
        + ',"id":'
        + func.coalesce(sql_text(cast(ident, Text)), "null")
        + "}"
    )
    return sql_text(case((kind.is_(None), "null"), else_=item))


def _json_quote_sqlite(value: Any) -> ColumnElement[Any]:
    return sql_text(func.json_quote(value))


def _pg_quote(value: Any) -> ColumnElement[Any]:
    # text first: an expression of a string literal alone would have no type to_json takes.
    return sql_text(cast(func.to_json(cast(value, Text)), Text))


# --- The table -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PySlot:
    """Where one column's values sit in a row, as source text for a generated row maker."""

    at: int  # the position of the column's first expression
    currency_at: int
    nullable: bool

    @property
    def value(self) -> str:
        return f"row[{self.at}]"

    def part(self, index: int) -> str:
        """A composite column's `index`-th expression (billed_item: object, id)."""
        return f"row[{self.at + index}]"

    @property
    def currency(self) -> str:
        return f"row[{self.currency_at}]"

    def local(self, prefix: str) -> str:
        """A name for an assignment expression, unique within the row maker."""
        return f"{prefix}{self.at}"


@dataclass(frozen=True)
class PyCell:
    """A cell in a generated row maker: `source(slot)` is a Python expression over `row`
    (only integers and the names below go into it, never client input). `helpers` are the
    names it uses, each made afresh for every row maker, since some cache (`Rendered`), from
    the row maker's output time zone (None: UTC; only date-times read it)."""

    source: Callable[[PySlot], str]
    helpers: Mapping[str, Callable[[str | None], Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class SqlSlot:
    """One column's expressions as the SQL cells see them."""

    exprs: tuple[ColumnElement[Any], ...]
    nullable: bool
    currency: ColumnElement[Any]
    # SQLite: the minor-unit digits of the record's currency (None: the record has no money).
    digits: int | None = None
    # The output time zone of date-times (None: UTC), a name `known_output_zone` accepts.
    zone: str | None = None

    @property
    def value(self) -> ColumnElement[Any]:
        return self.exprs[0]


@dataclass(frozen=True)
class Renderings:
    """One kind in every format. A new format is a new field here, filled in for each kind."""

    json: PyCell  # the JSON value's text (a /data row and a JSON export are the same text)
    csv: PyCell  # the CSV cell (None for an empty cell)
    postgresql: Callable[[SqlSlot], ColumnElement[Any]]  # the CSV cell as text (NULL: empty)
    sqlite: Callable[[SqlSlot], Piece]  # the CSV cell as printf piece, quoted
    json_postgresql: Callable[[SqlSlot], ColumnElement[Any]]  # the JSON value's text
    json_sqlite: Callable[[SqlSlot], Piece]  # the JSON value's text as printf piece


def _whole(cell: Callable[[SqlSlot], Any]) -> Callable[[SqlSlot], Piece]:
    """A SQLite cell that is one printf argument (`%s` writes NULL as nothing, as csv does)."""
    return lambda slot: ("%s", [cell(slot)])


def _same(helper: Any) -> Callable[[str | None], Any]:
    return lambda _zone: helper


def _bool_source(absent: str) -> Callable[[PySlot], str]:
    def source(slot: PySlot) -> str:
        if slot.nullable:
            b = slot.local("b")
            return f'({absent} if ({b} := {slot.value}) is None else "true" if {b} else "false")'
        return f'("true" if {slot.value} else "false")'

    return source


def _csv_text_source(slot: PySlot) -> str:
    # csv_text only where it changes something: this is the most frequent cell.
    t = slot.local("t")
    return (
        f'(CTEXT({t}) if ({t} := {slot.value}) and ({t}[0] in F or "\\r" in {t} or "\\n" in {t})'
        f" else {t})"
    )


_NUMBER = Renderings(
    json=PyCell(
        lambda slot: f"JNUM({slot.value})" if slot.nullable else slot.value,
        {"JNUM": _same(_json_or_null(str))},
    ),
    csv=PyCell(lambda slot: slot.value),  # None is written as an empty cell
    postgresql=lambda slot: slot.value,  # the database's own decimal text
    sqlite=_whole(lambda slot: slot.value),
    json_postgresql=_sql_json_number,
    json_sqlite=lambda slot: (
        ("%s", [func.ifnull(slot.value, "null")]) if slot.nullable else ("%d", [slot.value])
    ),
)


def _json_instants(zone: str | None) -> Rendered:
    render = zoned_iso(zone)
    return Rendered(lambda raw: _json_iso_text(render(raw)))


def _json_count(value: int) -> str:
    return f'"{value}"'


KINDS: dict[Kind, Renderings] = {
    "int": _NUMBER,
    "ref": _NUMBER,
    # A grouped report's `count`: TeamUp's grouped reports publish it as a JSON string
    # ("12"); a CSV cell holds the bare integer.
    "count": Renderings(
        json=PyCell(lambda slot: f"JCOUNT({slot.value})", {"JCOUNT": _same(_json_count)}),
        csv=PyCell(lambda slot: slot.value),
        postgresql=lambda slot: slot.value,
        sqlite=_whole(lambda slot: slot.value),
        json_postgresql=lambda slot: _quoted(sql_text(cast(slot.value, Text))),
        json_sqlite=lambda slot: ('"%d"', [slot.value]),
    ),
    "text": Renderings(
        json=PyCell(
            lambda slot: f"JSTRN({slot.value})" if slot.nullable else f"JSTR({slot.value})",
            {"JSTR": _same(json_text), "JSTRN": _same(_json_or_null(json_text))},
        ),
        csv=PyCell(_csv_text_source, {"CTEXT": _same(csv_text), "F": _same(_FORMULA_CHARS)}),
        postgresql=lambda slot: _sql_text_pg(slot.value, slot.value),
        sqlite=_whole(lambda slot: _sql_text_sqlite(slot.value, slot.value)),
        json_postgresql=_sql_json_text_pg,
        json_sqlite=_whole(lambda slot: _json_quote_sqlite(slot.value)),  # NULL: null
    ),
    "money": Renderings(
        json=PyCell(
            lambda slot: f"JM[{slot.currency}][{slot.value}]",
            {"JM": lambda _zone: _ByCurrency(lambda money: money.json)},
        ),
        csv=PyCell(
            lambda slot: f"CM[{slot.currency}][{slot.value}]",
            {"CM": lambda _zone: _ByCurrency(lambda money: money.plain)},
        ),
        postgresql=lambda slot: _sql_money_pg(slot.value, slot.currency),
        sqlite=lambda slot: _sql_money_sqlite(slot.value, _digits(slot)),
        json_postgresql=lambda slot: _sql_json_money_pg(slot.value, slot.currency),
        json_sqlite=lambda slot: _sql_json_money_sqlite(slot.value, slot.currency, _digits(slot)),
    ),
    "date": Renderings(
        json=PyCell(
            lambda slot: f"JD[{slot.value}]",
            {"JD": lambda _zone: Rendered(lambda raw: _json_iso_text(iso_date(raw)))},
        ),
        csv=PyCell(lambda slot: f"CD[{slot.value}]", {"CD": lambda _zone: Rendered(iso_date)}),
        postgresql=lambda slot: sql_text(cast(slot.value, Text)),  # DateStyle ISO
        sqlite=_whole(lambda slot: slot.value),  # stored as ISO text already
        json_postgresql=lambda slot: _or_null(_quoted(sql_text(cast(slot.value, Text)))),
        json_sqlite=_whole(lambda slot: _json_quote_sqlite(slot.value)),
    ),
    # In the output time zone (`zoned_iso`; UTC by default), in every format.
    "datetime": Renderings(
        json=PyCell(lambda slot: f"JDT[{slot.value}]", {"JDT": _json_instants}),
        csv=PyCell(
            lambda slot: f"CDT[{slot.value}]", {"CDT": lambda zone: Rendered(zoned_iso(zone))}
        ),
        postgresql=lambda slot: _sql_datetime_pg(slot.value, slot.zone),
        sqlite=_whole(lambda slot: _sql_datetime_sqlite(slot.value, slot.zone)),
        json_postgresql=lambda slot: _or_null(_quoted(_sql_datetime_pg(slot.value, slot.zone))),
        json_sqlite=_whole(
            lambda slot: _or_null(_quoted(_sql_datetime_sqlite(slot.value, slot.zone)))
        ),
    ),
    "bool": Renderings(
        json=PyCell(_bool_source('"null"')),
        csv=PyCell(_bool_source("None")),
        postgresql=lambda slot: _sql_bool(slot.value, slot.nullable),
        sqlite=_whole(lambda slot: _sql_bool(slot.value, slot.nullable)),
        json_postgresql=lambda slot: _sql_json_bool(slot.value, slot.nullable),
        json_sqlite=_whole(lambda slot: _sql_json_bool(slot.value, slot.nullable)),
    ),
    "billed_item": Renderings(
        json=PyCell(
            lambda slot: f"JBILLED({slot.part(0)}, {slot.part(1)})",
            {"JBILLED": _same(_json_billed_item)},
        ),
        csv=PyCell(
            lambda slot: f"CBILLED({slot.part(0)}, {slot.part(1)})",
            {"CBILLED": _same(_csv_billed_item)},
        ),
        postgresql=lambda slot: _sql_text_pg(*_sql_billed_item(slot.exprs)),
        sqlite=_whole(lambda slot: _sql_text_sqlite(*_sql_billed_item(slot.exprs))),
        json_postgresql=lambda slot: _sql_json_billed_item(slot.exprs, _pg_quote),
        json_sqlite=_whole(lambda slot: _sql_json_billed_item(slot.exprs, _json_quote_sqlite)),
    ),
}


def _digits(slot: SqlSlot) -> int:
    if slot.digits is None:
        raise ValueError("a SQLite money cell needs its record's currency digits")
    return slot.digits


def _check_table() -> None:
    """Every kind has its renderings, and two kinds never give one helper name two meanings."""
    if missing := set(get_args(Kind)) - set(KINDS):
        raise RuntimeError(f"kinds without renderings: {sorted(missing)}")
    seen: dict[str, Callable[[str | None], Any]] = {}
    for renderings in KINDS.values():
        for cell in (renderings.json, renderings.csv):
            for name, make in cell.helpers.items():
                if seen.setdefault(name, make) is not make:
                    raise RuntimeError(f"helper name {name!r} defined twice")


_check_table()
