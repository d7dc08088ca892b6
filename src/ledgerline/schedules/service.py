"""Export schedules: create, list, read, change, delete (docs/schedules.md). The runs
themselves are `schedules/runner.py`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ledgerline.auth import Principal, get_owned_by_public_id, owned, scoped
from ledgerline.errors import ConflictingParameters, NotFound, UnknownReference, ValidationFailed
from ledgerline.models import WEEKDAYS, ExportSchedule, ExportScheduleRun, Job
from ledgerline.pagination import OffsetPage
from ledgerline.public_ids import allocate, public_ids_of
from ledgerline.reports.columns import CATALOGS
from ledgerline.reports.query import ReportParams, parse_report_params
from ledgerline.schedules.cadence import Cadence, make_cadence, parse_zone

if TYPE_CHECKING:  # the bodies' types only: the runner (in the worker) needs no web schema
    from ledgerline.schedules.schemas import ScheduleCreate, ScheduleUpdate

# The cadence fields: which of them a cadence uses is `cadence.make_cadence`'s rule.
CADENCE_FIELDS = ("time", "weekday", "day_of_month", "cron")
# Fields a PATCH may not set to null.
NOT_NULL = ("report", "parameters", "format", "cadence", "timezone", "enabled")


class ExportScheduleNotFound(NotFound):
    code = "export-schedule-not-found"


def _prefixed(loc: list[Any]) -> list[Any]:
    """Where an export parameter sits in a schedule's body."""
    if loc and loc[0] == "format":
        return ["body", *loc]
    return ["body", "parameters", *loc]


def report_params(
    report: str, parameters: Mapping[str, Any], file_format: str, timezone: str, now: dt.datetime
) -> ReportParams:
    """The schedule's export parameters parsed exactly as an export request's are, read in
    the schedule's zone, timeframes resolved at `now`; a 422 names the parameter under
    `body.parameters` (or `body.format`)."""
    if "format" in parameters:
        raise ValidationFailed.field(
            ["body", "parameters", "format"], "give the format as the schedule's own `format`"
        )
    try:
        return _parse(report, parameters, file_format, timezone, now)
    except ValidationFailed as exc:
        errors = [
            {**error, "loc": _prefixed(list(error.get("loc", [])))} for error in exc.errors or []
        ]
        detail = "; ".join(
            ".".join(str(part) for part in error["loc"]) + f": {error['msg']}" for error in errors
        )
        kind = type(exc)
        if kind is ValidationFailed and _fits_another_report(
            report, parameters, file_format, timezone, now
        ):
            # Parameters of another report: wrong only together with this `report`.
            kind = ConflictingParameters
            detail = f"{detail} (they are parameters of another report, not of {report})"
        raise kind(detail or exc.detail, errors=errors or None) from exc


def _parse(
    report: str, parameters: Mapping[str, Any], file_format: str, timezone: str, now: dt.datetime
) -> ReportParams:
    return parse_report_params(
        report, {**parameters, "format": file_format}, timezone=timezone, for_export=True, now=now
    )


def _fits_another_report(
    report: str, parameters: Mapping[str, Any], file_format: str, timezone: str, now: dt.datetime
) -> bool:
    for other in CATALOGS:
        if other == report:
            continue
        try:
            _parse(other, parameters, file_format, timezone, now)
        except (ConflictingParameters, UnknownReference):
            return True  # that report's parameters, refused there only by a rule between them
        except ValidationFailed:
            continue
        return True
    return False


def cadence_of(schedule: ExportSchedule) -> Cadence:
    return Cadence(
        kind=schedule.cadence,
        timezone=schedule.timezone,
        time_of_day=schedule.time_of_day,
        weekday=schedule.weekday,
        day_of_month=schedule.day_of_month,
        cron=schedule.cron,
    )


def _validated(fields: dict[str, Any], now: dt.datetime) -> Cadence:
    """The cadence of a whole set of schedule fields, and its parameters checked at `now`."""
    zone = parse_zone(fields["timezone"], ["body", "timezone"])
    cadence = make_cadence(
        fields["cadence"],
        timezone=zone,
        time_of_day=fields["time"],
        weekday=fields["weekday"],
        day_of_month=fields["day_of_month"],
        cron=fields["cron"],
    )
    params = report_params(fields["report"], fields["parameters"], fields["format"], zone, now)
    fields["format"] = params.format  # as the parser spells it ("CSV" is csv)
    return cadence


def _apply(schedule: ExportSchedule, fields: Mapping[str, Any], cadence: Cadence) -> None:
    schedule.report = fields["report"]
    schedule.parameters = dict(fields["parameters"])
    schedule.format = fields["format"]
    schedule.cadence = cadence.kind
    schedule.time_of_day = cadence.time_of_day
    schedule.weekday = cadence.weekday
    schedule.day_of_month = cadence.day_of_month
    schedule.cron = cadence.cron
    schedule.timezone = cadence.timezone
    schedule.enabled = fields["enabled"]


def create_schedule(
    session: Session, principal: Principal, body: ScheduleCreate, now: dt.datetime
) -> ExportSchedule:
    """A new schedule; its first slot is the first after `now`."""
    fields = body.model_dump()
    fields["timezone"] = body.timezone or principal.timezone
    cadence = _validated(fields, now)
    schedule = ExportSchedule(account_id=principal.account_id, created_at=now, updated_at=now)
    _apply(schedule, fields, cadence)
    schedule.next_run_at = cadence.next_after(now) if schedule.enabled else None
    schedule.public_id = allocate(session, principal.account_id, ExportSchedule)
    session.add(schedule)
    session.flush()
    return schedule


def get_schedule(
    session: Session, principal: Principal, schedule_id: int, *, for_update: bool = False
) -> ExportSchedule:
    """The account's schedule with this public id, or 404 (another account's too). With
    `for_update`, the row is locked (PostgreSQL) so a runner's claim waits for the change."""
    if for_update:
        found = session.execute(
            scoped(ExportSchedule, principal)
            .where(ExportSchedule.public_id == schedule_id)
            .with_for_update()
        ).scalar_one_or_none()
        if found is None:
            raise ExportScheduleNotFound(f"No export schedule with id {schedule_id}.")
        return found
    try:
        return get_owned_by_public_id(session, ExportSchedule, schedule_id, principal)
    except NotFound:
        raise ExportScheduleNotFound(f"No export schedule with id {schedule_id}.") from None


def list_schedules(
    session: Session, principal: Principal, window: OffsetPage
) -> tuple[int, list[ExportSchedule]]:
    """The account's schedules, oldest first."""
    statement = scoped(ExportSchedule, principal)
    count = session.execute(
        select(func.count()).select_from(statement.order_by(None).subquery())
    ).scalar_one()
    schedules = session.execute(
        statement.order_by(ExportSchedule.public_id).limit(window.limit).offset(window.offset)
    ).scalars()
    return count, list(schedules)


def last_jobs(
    session: Session, principal: Principal, schedules: list[ExportSchedule]
) -> dict[int, int]:
    """internal job id → public id, for the schedules' last jobs."""
    ids = [s.last_job_id for s in schedules if s.last_job_id is not None]
    return public_ids_of(session, Job, principal.account_id, ids)


def _current(schedule: ExportSchedule) -> dict[str, Any]:
    return {
        "report": schedule.report,
        "parameters": schedule.parameters,
        "format": schedule.format,
        "cadence": schedule.cadence,
        "time": schedule.time_of_day,
        "weekday": WEEKDAYS[schedule.weekday] if schedule.weekday is not None else None,
        "day_of_month": schedule.day_of_month,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "enabled": schedule.enabled,
    }


def update_schedule(
    session: Session,
    principal: Principal,
    schedule_id: int,
    body: ScheduleUpdate,
    now: dt.datetime,
) -> ExportSchedule:
    """Change the given fields; the whole is validated as at creation. A change of cadence,
    time or zone, or enabling, sets the next slot to the first after `now`; pausing clears it."""
    sent = body.model_fields_set
    for name in NOT_NULL:
        if name in sent and getattr(body, name) is None:
            raise ValidationFailed.field(["body", name], "may not be null")
    schedule = get_schedule(session, principal, schedule_id, for_update=True)
    fields = _current(schedule)
    if "cadence" in sent and body.cadence != schedule.cadence:
        # The old cadence's fields do not carry over, except the time between the three
        # cadences that take one.
        keep = {"time"} if schedule.cadence != "cron" and body.cadence != "cron" else set()
        for name in CADENCE_FIELDS:
            if name not in keep:
                fields[name] = None
    for name in sent:
        fields[name] = getattr(body, name)
    cadence = _validated(fields, now)
    timing_before = (cadence_of(schedule), schedule.enabled)
    _apply(schedule, fields, cadence)
    if not schedule.enabled:
        schedule.next_run_at = None
    elif timing_before != (cadence, True) or schedule.next_run_at is None:
        schedule.next_run_at = cadence.next_after(now)
    schedule.updated_at = now
    session.flush()
    return schedule


def delete_schedule(session: Session, principal: Principal, schedule_id: int) -> None:
    """Remove the schedule and its run records; the jobs it created stay (at `/jobs`)."""
    schedule = get_schedule(session, principal, schedule_id, for_update=True)
    session.execute(
        delete(ExportScheduleRun)
        .where(
            owned(ExportScheduleRun, principal.account_id),
            ExportScheduleRun.schedule_id == schedule.id,
        )
        .execution_options(synchronize_session=False)
    )
    session.delete(schedule)
    session.flush()
