"""The list parameters of customers and invoices, validated: ids, free-text search, sort,
status and expand. Each is parsed once into a frozen value the service turns into clauses."""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, String, nulls_first, nulls_last, or_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.functions import FunctionElement

from ledgerline.errors import ConflictingParameters, ValidationFailed
from ledgerline.models import INVOICE_STATUSES, Customer, Invoice
from ledgerline.request_types import MAX_ID, query_values

MAX_IDS = 1000
_ID_TEXT = re.compile(r"^[1-9][0-9]{0,18}$", re.ASCII)  # the document says the same


def parse_ids(values: Sequence[str] | None, *, param: str) -> tuple[int, ...] | None:
    """`ids=3,5,8`: positive integers in ASCII digits; None when not given."""
    texts = query_values(values)
    if not texts:
        return None
    if len(texts) > MAX_IDS:
        raise ValidationFailed.field(["query", param], f"at most {MAX_IDS} ids")
    ids: list[int] = []
    for text in texts:
        if not _ID_TEXT.match(text) or not 1 <= int(text) <= MAX_ID:
            raise ValidationFailed.field(
                ["query", param], f"'{text}' is not an id (a positive integer)"
            )
        ids.append(int(text))
    return tuple(dict.fromkeys(ids))


MAX_SEARCH_LENGTH = 200
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


class AsciiLower(FunctionElement[str]):
    """lower() of ASCII letters only, alike on both databases: SQLite's own lower() folds only
    ASCII, and PostgreSQL's follows the database's locale, so there it is a translate()."""

    type = String()
    inherit_cache = True
    name = "ascii_lower"


@compiles(AsciiLower)
def _ascii_lower_sqlite(element: AsciiLower, compiler: Any, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(AsciiLower, "postgresql")
def _ascii_lower_postgresql(element: AsciiLower, compiler: Any, **kw: Any) -> str:
    argument = compiler.process(element.clauses, **kw)
    return f"translate({argument}, '{string.ascii_uppercase}', '{string.ascii_lowercase}')"


def _search_text(value: str | None, *, param: str) -> str | None:
    """A free-text filter, folded like `ascii_lower` and with LIKE's wildcards escaped."""
    if value is None or not value.strip():
        return None
    if "\x00" in value:
        raise ValidationFailed.field(["query", param], "must not contain NUL characters")
    if len(value) > MAX_SEARCH_LENGTH:
        raise ValidationFailed.field(["query", param], f"at most {MAX_SEARCH_LENGTH} characters")
    folded = value.strip().translate(_ASCII_LOWER)
    return folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like(column: Any, pattern: str) -> ColumnElement[bool]:
    matched: ColumnElement[bool] = AsciiLower(column).like(pattern, escape="\\")
    return matched


@dataclass(frozen=True)
class CustomerFilter:
    """TeamUp's customer list filters; each one given narrows the list (they combine)."""

    ids: tuple[int, ...] | None = None
    query: str | None = None  # escaped, folded: a substring of name or email
    autocomplete: str | None = None  # escaped, folded: the start of name, a name word, email

    @classmethod
    def parse(
        cls, ids: Sequence[str] | None, query: str | None, autocomplete: str | None
    ) -> CustomerFilter:
        return cls(
            ids=parse_ids(ids, param="ids"),
            query=_search_text(query, param="query"),
            autocomplete=_search_text(autocomplete, param="autocomplete"),
        )

    def clauses(self) -> list[ColumnElement[bool]]:
        clauses: list[ColumnElement[bool]] = []
        if self.ids is not None:
            clauses.append(Customer.public_id.in_(self.ids))
        if self.query is not None:
            pattern = f"%{self.query}%"
            clauses.append(or_(_like(Customer.name, pattern), _like(Customer.email, pattern)))
        if self.autocomplete is not None:
            start = f"{self.autocomplete}%"
            clauses.append(
                or_(
                    _like(Customer.name, start),
                    _like(Customer.name, f"% {start}"),
                    _like(Customer.email, start),
                )
            )
        return clauses


# Sort keys of the invoice list: TeamUp documents due_date; the others are what a finance
# user pages by. NULL due dates sort last ascending and first descending, as in reports.
INVOICE_SORT_KEYS: dict[str, QueryableAttribute[Any]] = {
    "id": Invoice.public_id,
    "due_date": Invoice.due_date,
    "created_at": Invoice.created_at,
    "updated_at": Invoice.updated_at,
}
_NULLABLE_SORT_KEYS = frozenset({"due_date"})
INVOICE_EXPANDABLE = ("line_items",)


@dataclass(frozen=True)
class InvoiceListQuery:
    """`sort`, `status` and `expand` of the invoice list, validated."""

    sort: tuple[tuple[str, bool], ...] = ()
    statuses: tuple[str, ...] = ()
    expand: tuple[str, ...] = ()

    @classmethod
    def parse(
        cls,
        sort: Sequence[str] | None = None,
        status: Sequence[str] | None = None,
        expand: Sequence[str] | None = None,
    ) -> InvoiceListQuery:
        return cls(
            sort=_parse_sort(sort), statuses=_parse_statuses(status), expand=parse_expand(expand)
        )

    def order_by(self) -> list[Any]:
        """The requested keys, then the (public) id ascending, so equal keys keep one order."""
        terms: list[Any] = []
        for key, descending in self.sort:
            column = INVOICE_SORT_KEYS[key]
            term = column.desc() if descending else column.asc()
            if key in _NULLABLE_SORT_KEYS:
                term = nulls_first(term) if descending else nulls_last(term)
            terms.append(term)
        if not any(key == "id" for key, _ in self.sort):
            terms.append(Invoice.public_id.asc())
        return terms


def _parse_sort(values: Sequence[str] | None) -> tuple[tuple[str, bool], ...]:
    sort: list[tuple[str, bool]] = []
    for name in query_values(values):
        descending = name.startswith("-")
        key = name[1:] if descending else name.removeprefix("+")
        if key not in INVOICE_SORT_KEYS:
            raise ValidationFailed.field(
                ["query", "sort"],
                f"'{key}' is not a sort key of invoices; use {', '.join(INVOICE_SORT_KEYS)}"
                " (a '-' before a key sorts descending)",
            )
        if any(known == key for known, _ in sort):
            raise ConflictingParameters.field(["query", "sort"], f"'{key}' is listed twice")
        sort.append((key, descending))
    return tuple(sort)


def _known_names(
    values: Sequence[str] | None, known: Sequence[str], param: str, refusal: str
) -> tuple[str, ...]:
    """A list parameter of names from `known`, repeats dropped; another name is a 422."""
    names = query_values(values)
    for name in names:
        if name not in known:
            raise ValidationFailed.field(
                ["query", param], refusal.format(name=name, known=", ".join(known))
            )
    return tuple(dict.fromkeys(names))


def _parse_statuses(values: Sequence[str] | None) -> tuple[str, ...]:
    return _known_names(
        values, INVOICE_STATUSES, "status", "'{name}' is not an invoice status; use {known}"
    )


def parse_expand(values: Sequence[str] | None) -> tuple[str, ...]:
    return _known_names(
        values, INVOICE_EXPANDABLE, "expand", "'{name}' cannot be expanded; expandable: {known}"
    )
