"""An export that cannot be made as asked, whatever the attempt: its job fails at once."""

from __future__ import annotations

# An XLSX sheet holds 1,048,576 rows; the first is the header.
XLSX_MAX_ROWS = 1_048_575


class ExportRefused(Exception):
    """The report cannot be written in the requested format (too many rows for a sheet, a
    text longer than a cell): retrying cannot help, so the job fails with `code` and a
    message that says what to do instead."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def too_many_rows(rows: int | None = None) -> ExportRefused:
    """The refusal of a report longer than a sheet (`rows`: its row count, when known)."""
    has = f"{rows:,} rows" if rows is not None else f"more than {XLSX_MAX_ROWS:,} rows"
    return ExportRefused(
        "too_many_rows",
        f"The report has {has}; an XLSX sheet holds at most {XLSX_MAX_ROWS:,} below its "
        "header. Export it as csv, ndjson or parquet, or narrow the filters.",
    )
