"""The job object as the Jobs API answers it (documentation only: `response_model=`).

The endpoints render `jobs.endpoints.job_json` themselves; these models describe exactly
that JSON so the OpenAPI document (and schemathesis' response checks) match the wire.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JobStatus = Literal["queued", "running", "succeeded", "failed", "canceled", "expired"]


class JobProgress(BaseModel):
    rows_done: int = Field(ge=0, description="Rows written so far")
    rows_total: int | None = Field(
        ge=0, description="Rows the export will hold; null until counted"
    )
    percent: int = Field(ge=0, le=100)


class ControlTotal(BaseModel):
    """One currency's rows in the file and the sum of each money column over them."""

    currency: str | None = Field(
        description="ISO 4217 code; null when the file has no money column (and so no currency)"
    )
    rows: int = Field(ge=0)
    sums: dict[str, str] = Field(
        description="Each money column's key and its sum in major units, as a plain decimal"
    )


class JobResult(BaseModel):
    """The published file; present once the job has succeeded."""

    file_name: str
    content_type: str
    size_bytes: int = Field(ge=0)
    row_count: int = Field(ge=0)
    sha256: str
    totals: list[ControlTotal] | None = Field(
        description="Control totals of the file, per currency (null for a file made before "
        "they were kept)"
    )
    download_url: str = Field(
        description="Signed and short-lived, minted afresh on every read; no credentials needed"
    )
    download_url_expires_at: dt.datetime


class JobError(BaseModel):
    code: str
    message: str | None


class Job(BaseModel):
    """An export job. `object`, `result_url`, `total_items` and `complete_items` are TeamUp's
    documented job fields; the rest are Ledgerline's richer view of the same job."""

    model_config = ConfigDict(title="Job")

    id: int
    object: Literal["job"]
    result_url: str | None = Field(
        description="The signed download link (the same as `result.download_url`) once the "
        "job has succeeded; null before, and once the file has expired"
    )
    total_items: int = Field(
        ge=0,
        description="Rows the export holds in all; 0 while they have not been counted yet "
        "(a grouped export is counted when it finishes)",
    )
    complete_items: int = Field(ge=0, description="Rows written so far")
    type: Literal["report_export"]
    report: str
    format: str
    params: dict[str, Any] = Field(description="The normalised export parameters")
    status: JobStatus
    progress: JobProgress
    attempts: int = Field(ge=0)
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    expires_at: dt.datetime | None
    result: JobResult | None
    error: JobError | None
