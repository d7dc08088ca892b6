"""Export requests (TeamUp's `POST /reports/…/export`) and the Jobs API."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from pydantic import WithJsonSchema
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile
from starlette.responses import Response, StreamingResponse

from ledgerline.auth import Principal
from ledgerline.config import Settings
from ledgerline.db import utcnow
from ledgerline.dependencies import (
    PrincipalDep,
    SessionDep,
    after_commit,
    authenticate_request,
    request_now,
)
from ledgerline.errors import (
    BadRequest,
    Conflict,
    ConflictingParameters,
    Forbidden,
    Gone,
    NotFound,
    UnsupportedMediaType,
    ValidationFailed,
)
from ledgerline.exports.refusals import XLSX_MAX_ROWS, too_many_rows
from ledgerline.http import JSONResponse
from ledgerline.jobs import service
from ledgerline.jobs.queue import queue_for
from ledgerline.jobs.schemas import Job as JobModel
from ledgerline.models import JOB_STATUSES, Job
from ledgerline.openapi import SECURITY, ExportAccepted, TeamUpList
from ledgerline.pagination import PageWindow, list_response
from ledgerline.reports.columns import FLAT, GROUPED, INVOICES, INVOICES_GROUPED
from ledgerline.reports.endpoints import report_parameter_schemas, report_query_doc
from ledgerline.reports.query import ReportParams, kept_count, parse_report_params
from ledgerline.request_types import MAX_ID

log = logging.getLogger("ledgerline.jobs")

router = APIRouter(tags=["jobs"])

JSON_TYPES = ("application/json",)
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

# A JSON value from a JSON body; str, or list[str] for a repeated key, from a form or query.
ParamValue = Any


class JobNotReady(Conflict):
    code = "job-not-ready"


class JobExpired(Gone):
    code = "job-expired"


def _merge(target: dict[str, ParamValue], key: str, value: ParamValue, where: str) -> None:
    if key in target and target[key] != value:
        raise ConflictingParameters.field(
            [where, key], "given both in the query string and the body with different values"
        )
    target[key] = value


def _multi(items: list[tuple[str, Any]]) -> dict[str, Any]:
    """Form or query pairs → one value per key, a list for a repeated key."""
    grouped: dict[str, list[Any]] = {}
    for key, value in items:
        grouped.setdefault(key, []).append(value)
    return {key: values[0] if len(values) == 1 else values for key, values in grouped.items()}


async def export_request_params(request: Request) -> dict[str, ParamValue]:
    """The export parameters from the query string and a JSON, form or multipart body."""
    merged: dict[str, ParamValue] = dict(_multi(list(request.query_params.multi_items())))
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    body = await request.body()
    if media_type in JSON_TYPES or media_type.endswith("+json"):
        if not body.strip():
            return merged
        try:
            parsed = json.loads(body)
        # Depth and lone surrogates were checked before (http.JSONBodyRulesMiddleware).
        except ValueError as exc:  # UnicodeDecodeError included
            raise BadRequest(
                "The request body is not valid JSON.",
                errors=[{"loc": ["body"], "msg": "invalid JSON"}],
            ) from exc
        if not isinstance(parsed, dict):
            raise ValidationFailed.field(["body"], "must be a JSON object")
        for key, value in parsed.items():
            _merge(merged, key, value, "body")
        return merged
    if media_type in FORM_TYPES:
        try:
            form = await request.form()
        except Exception as exc:  # starlette raises several types for a malformed form
            raise BadRequest(
                "The form body could not be read.", errors=[{"loc": ["body"], "msg": "malformed"}]
            ) from exc
        for key, value in _multi(list(form.multi_items())).items():
            values = value if isinstance(value, list) else [value]
            if any(isinstance(v, UploadFile) for v in values):
                raise ValidationFailed.field(["body", key], "must be a text field, not a file")
            _merge(merged, key, value, "body")
        return merged
    if not body:
        return merged
    raise UnsupportedMediaType(
        f"Send the parameters as application/json, application/x-www-form-urlencoded or "
        f"multipart/form-data, not {media_type or 'an untyped body'}."
    )


ExportParamsDep = Annotated[dict[str, ParamValue], Depends(export_request_params)]
IdempotencyKey = Annotated[
    str | None,
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": service.IDEMPOTENCY_KEY_MAX}),
    Header(
        alias="Idempotency-Key",
        description="A retry with the same key and parameters returns the same job.",
    ),
]


def export_body_doc(report: str) -> dict[str, Any]:
    """The export body in the OpenAPI document: the report's own parameters (the same schemas
    its query parameters have), as JSON, form or multipart; unknown keys are refused."""
    properties = {
        name: {**schema, "description": description}
        for name, (schema, description) in report_parameter_schemas(report, for_export=True).items()
    }
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    return {
        "requestBody": {
            "required": False,
            "content": {media: {"schema": schema} for media in ("application/json", *FORM_TYPES)},
        }
    }


def export_doc(report: str) -> dict[str, Any]:
    """An export route's `openapi_extra`: its body and its query parameters (either carries
    the report's parameters)."""
    return {**export_body_doc(report), **report_query_doc(report, for_export=True)}


EXPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The job that builds the file.",
        "headers": {"Location": {"description": "The job's URL.", "schema": {"type": "string"}}},
    }
}


def enqueue_after_commit(session: Session, settings: Settings, job_id: int) -> None:
    """Hand a new job to the queue once the request's transaction has committed (the API's
    exports and the console's)."""

    def hand_over() -> None:
        # A lost hand-over is not fatal: the sweep re-queues jobs left queued.
        try:
            queue_for(settings).enqueue(job_id)
        except Exception:
            log.exception("could not enqueue job; the sweep will retry", extra={"job": job_id})

    after_commit(session, hand_over)


def _refuse_a_sheet_too_long(session: Session, account_id: int, params: ReportParams) -> None:
    """An XLSX export of more rows than a sheet holds is refused now when the count is
    known without counting (`kept_count`); otherwise its job fails with the same message."""
    if params.format != "xlsx" or params.catalog.grouped:
        return
    rows = kept_count(session.connection(), account_id, params)
    if rows is not None and rows > XLSX_MAX_ROWS:
        raise ValidationFailed.field(["format"], too_many_rows(rows).message)


def _export(
    report: str,
    request: Request,
    raw: dict[str, ParamValue],
    idempotency_key: str | None,
    principal: Principal,
    session: SessionDep,
) -> Response:
    # One instant for both: the timeframes resolve at the job's creation time.
    now = request_now(request)
    params = parse_report_params(report, raw, timezone=principal.timezone, for_export=True, now=now)
    _refuse_a_sheet_too_long(session, principal.account_id, params)
    settings = request.app.state.settings
    job, created = service.create_export_job(
        session,
        principal,
        params,
        idempotency_key,
        max_active=settings.max_active_exports_per_account,
        now=now,
    )
    if created:
        enqueue_after_commit(session, settings, job.id)
    # The client sees the job's public id; the queue carries the internal one (never shown).
    return JSONResponse(
        {"job": job.public_id}, headers={"Location": f"/api/v2/jobs/{job.public_id}"}
    )


@router.post(
    "/reports/invoice_line_items/export",
    openapi_extra=export_doc(FLAT),
    response_model=ExportAccepted,
    responses=EXPORT_RESPONSES,
)
def export_line_items(
    request: Request,
    raw: ExportParamsDep,
    principal: PrincipalDep,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Export every matching invoice line item as a CSV or JSON file, built by a job.

    Answers `{"job": <id>}`; follow `GET /jobs/{id}` until `status` is `succeeded`, then
    download `result.download_url`. An `Idempotency-Key` header makes a retry return the
    same job.
    """
    return _export(FLAT, request, raw, idempotency_key, principal, session)


@router.post(
    "/reports/invoice_line_items.grouped/export",
    openapi_extra=export_doc(GROUPED),
    response_model=ExportAccepted,
    responses=EXPORT_RESPONSES,
)
def export_line_items_grouped(
    request: Request,
    raw: ExportParamsDep,
    principal: PrincipalDep,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Export the grouped invoice line item report (totals by type and currency) as a file.

    Answers `{"job": <id>}` like the flat export.
    """
    return _export(GROUPED, request, raw, idempotency_key, principal, session)


@router.post(
    "/reports/invoices/export",
    openapi_extra=export_doc(INVOICES),
    response_model=ExportAccepted,
    responses=EXPORT_RESPONSES,
)
def export_invoices(
    request: Request,
    raw: ExportParamsDep,
    principal: PrincipalDep,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Export every matching invoice (TeamUp's invoices report) as a CSV or JSON file, built
    by a job. Answers `{"job": <id>}` like the line items export."""
    return _export(INVOICES, request, raw, idempotency_key, principal, session)


@router.post(
    "/reports/invoices.grouped/export",
    openapi_extra=export_doc(INVOICES_GROUPED),
    response_model=ExportAccepted,
    responses=EXPORT_RESPONSES,
)
def export_invoices_grouped(
    request: Request,
    raw: ExportParamsDep,
    principal: PrincipalDep,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Export the grouped invoices report (counts and totals per key and currency) as a file.

    Answers `{"job": <id>}` like the flat export.
    """
    return _export(INVOICES_GROUPED, request, raw, idempotency_key, principal, session)


# ---- the Jobs API --------------------------------------------------------------------------


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def percent_done(job: Job) -> int:
    if job.status == "succeeded":
        return 100
    if not job.rows_total:
        return 0
    return min(100, (job.rows_done * 100) // job.rows_total)


def _total_items(job: Job) -> int:
    """TeamUp types `total_items` as a non-nullable integer: 0 until the rows are counted."""
    if job.rows_total is not None:
        return job.rows_total
    if job.status == "succeeded" and job.row_count is not None:
        return job.row_count
    return 0


def job_json(request: Request, job: Job, now: dt.datetime) -> dict[str, Any]:
    result: dict[str, Any] | None = None
    if job.status == "succeeded":
        from ledgerline.exports.links import link_expiry, sign_download

        settings = request.app.state.settings
        link_expires = link_expiry(now, settings.download_url_ttl_seconds)
        if job.expires_at is not None:
            # A link never outlives the file it points at.
            link_expires = min(link_expires, link_expiry(job.expires_at, 0))
        token = sign_download(
            request.app.state.secret_key, job.account_id, job.public_id, link_expires
        )
        url = request.url_for("download_job", job_id=str(job.public_id)).include_query_params(
            token=token
        )
        result = {
            "file_name": job.file_name,
            "content_type": job.content_type,
            "size_bytes": job.size_bytes,
            "row_count": job.row_count,
            "sha256": job.sha256,
            "totals": job.totals,
            "download_url": str(url),
            "download_url_expires_at": link_expires.isoformat(),
        }
    error = None
    if job.status == "failed" and job.error_code:
        error = {"code": job.error_code, "message": job.error_message}
    return {
        "id": job.public_id,
        "object": "job",
        # TeamUp's job fields (docs/jobs.md "TeamUp's job fields"): its clients poll these.
        "result_url": result["download_url"] if result is not None else None,
        "total_items": _total_items(job),
        "complete_items": job.rows_done,
        "type": job.type,
        "report": job.report,
        "format": job.format,
        "params": job.params,
        "status": job.status,
        "progress": {
            "rows_done": job.rows_done,
            "rows_total": job.rows_total,
            "percent": percent_done(job),
        },
        "attempts": job.attempts,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "expires_at": _iso(job.expires_at),
        "result": result,
        "error": error,
    }


# Ids beyond BIGINT would be a database error, not a 404.
JobId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("/jobs", response_model=TeamUpList[JobModel])
def list_jobs(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    window: PageWindow,
    status: Annotated[
        str | None,
        WithJsonSchema({"type": "string", "enum": list(JOB_STATUSES)}),
        Query(description="Only jobs in this status."),
    ] = None,
) -> Response:
    """The account's jobs, newest first."""
    count, jobs = service.list_jobs(session, principal, status, window)
    now = utcnow()
    return list_response(request, window, count, [job_json(request, job, now) for job in jobs])


@router.get("/jobs/{job_id}", response_model=JobModel)
def get_job(
    job_id: JobId, request: Request, principal: PrincipalDep, session: SessionDep
) -> Response:
    """One job: its status, progress and, once it succeeded, a fresh signed download link."""
    job = service.get_job(session, principal, job_id)
    return JSONResponse(job_json(request, job, utcnow()))


@router.post(
    "/jobs/{job_id}/cancel",
    response_model=JobModel,
    responses={409: {"description": "The job has already finished"}},
)
def cancel_job(
    job_id: JobId, request: Request, principal: PrincipalDep, session: SessionDep
) -> Response:
    """Cancel a queued or running job (409 once it has finished); no file is published."""
    job = service.cancel_job(session, principal, job_id)
    return JSONResponse(job_json(request, job, utcnow()))


# The file itself: CSV or a JSON array, by the job's format; the signed `token` of a
# download_url stands in for the Authorization header (hence the anonymous `{}` option).
DOWNLOAD_DOC: dict[str, Any] = {
    "responses": {
        "200": {
            "description": "The export file, as an attachment.",
            "content": {
                "text/csv": {"schema": {"type": "string", "format": "binary"}},
                # A JSON export is one array of rows shaped as /data rows.
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            },
        }
    },
    "security": [*SECURITY, {}],
}


@router.get(
    "/jobs/{job_id}/download",
    name="download_job",
    openapi_extra=DOWNLOAD_DOC,
    responses={
        409: {"description": "The job has no file yet."},
        410: {"description": "The file has expired."},
    },
)
def download_job(
    job_id: JobId,
    request: Request,
    session: SessionDep,
    token: Annotated[str | None, Query(description="the signed token of a download_url")] = None,
) -> Response:
    """The export file: with the Authorization header, or with a signed `download_url` alone.

    409 until the job has succeeded, 410 once its file has expired.
    """
    now = utcnow()
    header = request.headers.get("authorization")
    if header or token is None:
        principal = authenticate_request(request, session)
        if "read" not in principal.scopes:
            raise Forbidden("This token lacks the 'read' scope.")
        account_id = principal.account_id
    else:
        from ledgerline.exports.links import verify_download

        account_id = verify_download(request.app.state.secret_key, token, job_id, now)
    job = service.get_job_of_account(session, account_id, job_id)
    if job is None:
        raise NotFound(f"No job with id {job_id}.")
    if job.status == "expired" or (
        job.status == "succeeded" and job.expires_at is not None and job.expires_at <= now
    ):
        raise JobExpired(f"The file of job {job_id} has expired and was removed.")
    if job.status != "succeeded" or job.storage_key is None:
        raise JobNotReady(f"Job {job_id} has no file yet (status {job.status}).")
    from ledgerline.exports.storage import ObjectNotFound

    storage = _storage(request)
    size = storage.size(job.storage_key)
    if size is None:
        raise JobExpired(f"The file of job {job_id} is no longer available.")
    try:
        chunks: Iterator[bytes] = storage.open(job.storage_key)
    except ObjectNotFound as exc:  # removed by the retention sweep since size() answered
        raise JobExpired(f"The file of job {job_id} is no longer available.") from exc
    return StreamingResponse(
        chunks,
        media_type=job.content_type,
        headers={
            "Content-Disposition": f'attachment; filename="{job.file_name}"',
            "Content-Length": str(size),
        },
    )


def _storage(request: Request) -> Any:
    storage = getattr(request.app.state, "export_storage", None)
    if storage is None:
        from ledgerline.exports.storage import storage_from_settings

        storage = request.app.state.export_storage = storage_from_settings(
            request.app.state.settings
        )
    return storage
