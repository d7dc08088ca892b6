"""Export schedule bodies and answers (docs/schedules.md). The body's types are checked here;
the rules between fields (which cadence uses which field) and the report's parameters are
checked by the service, with the same parser an export request goes through."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    WithJsonSchema,
)
from pydantic.json_schema import SkipJsonSchema

from ledgerline.models import WEEKDAYS, ExportSchedule
from ledgerline.reports.columns import CATALOGS
from ledgerline.reports.endpoints import report_parameter_schemas
from ledgerline.reports.query import FORMATS
from ledgerline.request_types import StrictBody, Text, WholeNumber
from ledgerline.schedules.cadence import CRON_PATTERN

Report = Literal["invoice_line_items", "invoice_line_items.grouped", "invoices", "invoices.grouped"]
CadenceKind = Literal["daily", "weekly", "monthly", "cron"]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
DayOfMonth = Annotated[StrictInt, Field(ge=1, le=31), WholeNumber]
TimeOfDay = Annotated[
    StrictStr,
    Field(
        pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        description='The local time of day, "HH:MM" (24-hour); not with a cron cadence.',
    ),
]
Cron = Annotated[StrictStr, Field(min_length=1, max_length=200, pattern=CRON_PATTERN)]
Zone = Annotated[Text, Field(min_length=1, max_length=64)]


def _parameters_schema() -> dict[str, Any]:
    """One of the reports' export parameters (the schemas their export bodies have), without
    `format`, which is the schedule's own field."""
    variants = []
    for report in CATALOGS:
        properties = {
            name: {**schema, "description": description}
            for name, (schema, description) in report_parameter_schemas(
                report, for_export=True
            ).items()
            if name != "format"
        }
        variants.append(
            {
                "title": f"{report} parameters",
                "type": "object",
                "properties": properties,
                "additionalProperties": False,
            }
        )
    return {
        "anyOf": variants,
        "description": (
            "The report's export parameters (columns, sort, filters), as its export request "
            "takes them, validated the same way; a `*_timeframe` filter is resolved at each "
            "run, at the slot's instant in the schedule's time zone."
        ),
    }


Parameters = Annotated[dict[str, Any], WithJsonSchema(_parameters_schema())]


def _known_format(value: str) -> str:
    if value not in FORMATS:
        raise ValueError(f"must be one of {', '.join(FORMATS)}")
    return value


# The export formats, as an export's `format` (the list grows with the writers).
FormatName = Annotated[
    StrictStr,
    AfterValidator(_known_format),
    WithJsonSchema({"type": "string", "enum": list(FORMATS)}),
]


class ScheduleCreate(StrictBody):
    """`POST /export_schedules`."""

    report: Report
    parameters: Parameters = Field(default_factory=dict)
    format: FormatName = Field("csv", description="The file format, as an export's `format`.")
    cadence: CadenceKind
    time: TimeOfDay | None = None
    weekday: Weekday | None = Field(None, description="The day of a weekly cadence.")
    day_of_month: DayOfMonth | None = Field(
        None,
        description="The day of a monthly cadence, 1-31; a shorter month runs on its last day.",
    )
    cron: Cron | None = Field(
        None,
        description="A five-field cron expression, matched against the local wall clock.",
    )
    timezone: Zone | None = Field(
        None, description="An IANA time zone name; the account's zone when not given."
    )
    enabled: StrictBool = True


class ScheduleUpdate(StrictBody):
    """`PATCH /export_schedules/{id}`: the fields given replace the schedule's (`parameters`
    as a whole); null clears a cadence field. A changed cadence keeps only the fields it uses."""

    # Absent when not changed; never null (the document says so; the service refuses it).
    report: Report | SkipJsonSchema[None] = None
    parameters: Parameters | SkipJsonSchema[None] = None
    format: FormatName | SkipJsonSchema[None] = None
    cadence: CadenceKind | SkipJsonSchema[None] = None
    time: TimeOfDay | None = None
    weekday: Weekday | None = None
    day_of_month: DayOfMonth | None = None
    cron: Cron | None = None
    timezone: Zone | SkipJsonSchema[None] = None
    enabled: StrictBool | SkipJsonSchema[None] = None


class ExportScheduleResponse(BaseModel):
    """An export schedule."""

    id: int = Field(ge=1)
    object: Literal["export_schedule"]
    report: Report
    parameters: dict[str, Any]
    format: str
    cadence: CadenceKind
    time: str | None
    weekday: Weekday | None
    day_of_month: int | None
    cron: str | None
    timezone: str
    enabled: bool
    next_run_at: dt.datetime | None = Field(
        description="The next slot it runs for (UTC); null while paused."
    )
    last_run_at: dt.datetime | None = Field(description="The slot of the last run.")
    last_job: int | None = Field(description="The job the last run created (`GET /jobs/{id}`).")
    last_error: str | None = Field(
        description="Why the last due slot created no job (its parameters no longer valid)."
    )
    created_at: dt.datetime
    updated_at: dt.datetime


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def schedule_json(schedule: ExportSchedule, last_job: int | None) -> dict[str, Any]:
    """The answer for a schedule; `last_job` is its last job's public id."""
    return {
        "id": schedule.public_id,
        "object": "export_schedule",
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
        "next_run_at": _iso(schedule.next_run_at),
        "last_run_at": _iso(schedule.last_run_at),
        "last_job": last_job,
        "last_error": schedule.last_error,
        "created_at": _iso(schedule.created_at),
        "updated_at": _iso(schedule.updated_at),
    }
