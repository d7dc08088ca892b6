"""Export schedules: exports that run themselves on a cadence (docs/schedules.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from ledgerline.dependencies import PrincipalDep, SessionDep, request_now
from ledgerline.http import JSONResponse
from ledgerline.models import ExportSchedule
from ledgerline.openapi import TeamUpList
from ledgerline.pagination import PageWindow, list_response
from ledgerline.request_types import MAX_ID
from ledgerline.schedules import service
from ledgerline.schedules.schemas import (
    ExportScheduleResponse,
    ScheduleCreate,
    ScheduleUpdate,
    schedule_json,
)

router = APIRouter(tags=["export schedules"])

ScheduleId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.post("/export_schedules", status_code=201, response_model=ExportScheduleResponse)
def create_export_schedule(
    body: ScheduleCreate, request: Request, principal: PrincipalDep, session: SessionDep
) -> Response:
    """Schedule an export: a report and its parameters (validated as an export request's),
    a format, and a cadence (`daily`, `weekly` on a `weekday`, `monthly` on a `day_of_month`,
    or a five-field `cron` expression) at a local `time` in an IANA `timezone`. Each run
    creates an ordinary export job (`GET /jobs`); `next_run_at` is the next slot."""
    schedule = service.create_schedule(session, principal, body, request_now(request))
    return JSONResponse(
        schedule_json(schedule, None),
        status_code=201,
        headers={"Location": f"/api/v2/export_schedules/{schedule.public_id}"},
    )


@router.get("/export_schedules", response_model=TeamUpList[ExportScheduleResponse])
def list_export_schedules(
    request: Request, principal: PrincipalDep, session: SessionDep, window: PageWindow
) -> Response:
    """The account's export schedules, oldest first."""
    count, schedules = service.list_schedules(session, principal, window)
    jobs = service.last_jobs(session, principal, schedules)
    results = [
        schedule_json(s, jobs.get(s.last_job_id) if s.last_job_id else None) for s in schedules
    ]
    return list_response(request, window, count, results)


def _answer(session: SessionDep, principal: PrincipalDep, schedule: ExportSchedule) -> Response:
    jobs = service.last_jobs(session, principal, [schedule])
    last_job = jobs.get(schedule.last_job_id) if schedule.last_job_id else None
    return JSONResponse(schedule_json(schedule, last_job))


@router.get("/export_schedules/{schedule_id}", response_model=ExportScheduleResponse)
def get_export_schedule(
    schedule_id: ScheduleId, principal: PrincipalDep, session: SessionDep
) -> Response:
    """One export schedule, with its next slot and its last run's job."""
    return _answer(session, principal, service.get_schedule(session, principal, schedule_id))


@router.patch("/export_schedules/{schedule_id}", response_model=ExportScheduleResponse)
def update_export_schedule(
    schedule_id: ScheduleId,
    body: ScheduleUpdate,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
) -> Response:
    """Change a schedule: the fields given replace its own (`parameters` as a whole), and
    the result is validated as a new one is. `enabled: false` pauses it (`next_run_at`
    null); enabling it, or changing its cadence, time or zone, sets `next_run_at` to the
    first slot from now on: slots missed while paused are not run."""
    schedule = service.update_schedule(session, principal, schedule_id, body, request_now(request))
    return _answer(session, principal, schedule)


@router.delete("/export_schedules/{schedule_id}", status_code=204)
def delete_export_schedule(
    schedule_id: ScheduleId, principal: PrincipalDep, session: SessionDep
) -> Response:
    """Delete a schedule. The jobs it created stay, at `/jobs`."""
    service.delete_schedule(session, principal, schedule_id)
    return Response(status_code=204)
