"""The console's pages and forms, served at `/` beside the API (`/api/v2`).

Server-rendered HTML (Jinja2, templates and assets inside the package). Every page needs a
live session (else a redirect to sign-in); every form that changes something carries the
session's CSRF token; every query goes through the services the API uses, scoped to the
session's account.
"""

from __future__ import annotations

import hmac
import secrets
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode
from zoneinfo import available_timezones

from cryptography.exceptions import InvalidTag
from fastapi import APIRouter, Depends, FastAPI, Form, Path, Query, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from ledgerline import __version__
from ledgerline.auth import Principal
from ledgerline.console import service, sessions
from ledgerline.console.service import local_time
from ledgerline.db import utcnow
from ledgerline.dependencies import SessionDep, client_address, request_now
from ledgerline.errors import AppError, NotFound
from ledgerline.exports.links import link_expiry, sign_download
from ledgerline.http import JSONResponse
from ledgerline.jobs import service as jobs
from ledgerline.jobs.endpoints import enqueue_after_commit, percent_done
from ledgerline.models import INVOICE_STATUSES, WEEKDAYS, Job
from ledgerline.pagination import OffsetPage
from ledgerline.ratelimit import RateLimited, RateLimits
from ledgerline.reports.columns import FLAT, GROUPED
from ledgerline.reports.endpoints import report_query
from ledgerline.reports.query import FORMATS, ReportParams
from ledgerline.request_types import MAX_ID
from ledgerline.schedules import service as schedule_service
from ledgerline.schedules.schemas import ScheduleUpdate
from ledgerline.webhooks import service as webhook_service
from ledgerline.webhooks.schemas import WebhookEndpointUpdate
from ledgerline.webhooks.signing import seal, unseal

HERE = FilePath(__file__).parent
TEMPLATES = Jinja2Templates(directory=str(HERE / "templates"))
TEMPLATES.env.globals["version"] = __version__
TEMPLATES.env.filters["format_label"] = service.format_label
SESSION_COOKIE = "ledgerline_console"
# A signed-out browser's random id: the sign-in forms' CSRF token is derived from it.
PRE_SESSION_COOKIE = "ledgerline_console_pre"
# Pages hold account data: not cached, not framed, nothing loaded from elsewhere.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}

router = APIRouter(include_in_schema=False)
JobId = Annotated[int, Path(ge=1, le=MAX_ID)]


class SignInRequired(Exception):
    """No live session: the browser goes to the sign-in page, then back where it was."""

    def __init__(self, back_to: str, *, expired: bool) -> None:
        super().__init__(back_to)
        self.back_to = back_to
        self.expired = expired


class PageProblem(Exception):
    """A console request that cannot be served, shown as a page a person understands."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


@dataclass(frozen=True)
class Viewer:
    signed_in: sessions.SignedIn
    csrf: str

    @property
    def principal(self) -> Principal:
        return self.signed_in.principal

    @property
    def can_export(self) -> bool:
        return "write" in self.signed_in.principal.scopes


def _secret(request: Request) -> str:
    secret: str = request.app.state.secret_key
    return secret


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def current_viewer(request: Request, session: SessionDep) -> Viewer:
    raw = request.cookies.get(SESSION_COOKIE)
    signed_in = sessions.load_session(session, raw, utcnow()) if raw else None
    if raw is None or signed_in is None:
        raise SignInRequired(_here(request), expired=raw is not None)
    return Viewer(signed_in, sessions.csrf_token(_secret(request), raw))


ViewerDep = Annotated[Viewer, Depends(current_viewer)]


def form_viewer(viewer: ViewerDep, csrf_token: Annotated[str, Form()] = "") -> Viewer:
    """The viewer of a form post that carries its session's CSRF token; else refused."""
    if not hmac.compare_digest(viewer.csrf.encode(), csrf_token.encode()):
        raise PageProblem(
            403, "Form expired", "This form is out of date. Go back, reload the page and retry."
        )
    return viewer


FormViewerDep = Annotated[Viewer, Depends(form_viewer)]


def exporting_viewer(viewer: FormViewerDep) -> Viewer:
    if not viewer.can_export:
        raise PageProblem(
            403,
            "Read-only sign-in",
            "You signed in with a read-only token: exports need a token with the write scope.",
        )
    return viewer


ExportingViewerDep = Annotated[Viewer, Depends(exporting_viewer)]


def render(
    request: Request, template: str, viewer: Viewer | None, status: int = 200, **context: Any
) -> HTMLResponse:
    # The navigation marks the page's section: report, grouped, job(s), invoice(s).
    section = template.removesuffix(".html").rstrip("s")
    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {"viewer": viewer, "section": section, **context},
        status_code=status,
    )
    response.headers.update(PAGE_HEADERS)
    return response


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _safe_next(value: str | None) -> str:
    """Only a path of this site: never `//elsewhere` or a full URL (an open redirect)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/report"


def install_console(app: FastAPI) -> None:
    """Mount the console at `/`: its pages, its assets, and its two error pages."""
    app.include_router(router)
    app.mount("/assets", StaticFiles(directory=HERE / "static"), name="console_assets")

    async def sign_in_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        query = {"next": exc.back_to, **({"expired": "1"} if exc.expired else {})}
        response = see_other("/sign-in?" + urlencode(query))
        if exc.expired:
            response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    async def page_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageProblem)
        return render(
            request, "problem.html", None, exc.status, title=exc.title, message=exc.message
        )

    app.add_exception_handler(SignInRequired, sign_in_required)
    app.add_exception_handler(PageProblem, page_problem)


# ---- sign-in and sign-out -------------------------------------------------------------------


def _pre_session(request: Request) -> tuple[str, bool]:
    """The browser's pre-session id, and whether it is new (then it must be set)."""
    existing = request.cookies.get(PRE_SESSION_COOKIE)
    if existing and len(existing) <= 100:
        return existing, False
    return secrets.token_urlsafe(32), True


def _set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def _sign_in_page(
    request: Request,
    *,
    status: int = 200,
    back_to: str | None = None,
    link_token: str | None = None,
    **context: Any,
) -> HTMLResponse:
    pre_id, new = _pre_session(request)
    response = render(
        request,
        "sign_in_link.html" if link_token is not None else "sign_in.html",
        None,
        status,
        csrf=sessions.csrf_token(_secret(request), pre_id),
        next=_safe_next(back_to),
        link_token=link_token,
        **context,
    )
    if new:
        _set_cookie(request, response, PRE_SESSION_COOKIE, pre_id, 3600)
    return response


def _check_pre_session_csrf(request: Request, sent: str) -> None:
    if not sessions.csrf_matches(_secret(request), request.cookies.get(PRE_SESSION_COOKIE), sent):
        raise PageProblem(
            403, "Form expired", "This sign-in form is out of date. Reload the page and retry."
        )


def _sign_in_refused(request: Request, csrf_token: str, back_to: str | None) -> Response | None:
    """What both sign-in forms check before reading what was sent: the form's CSRF token
    (a 403 page), then the address's failed-authentication limit, shared with the API, so the
    console's forms are no way around it to guess tokens or links (the sign-in page with 429).
    None when the attempt may go on."""
    _check_pre_session_csrf(request, csrf_token)
    limits: RateLimits = request.app.state.rate_limits
    try:
        limits.refuse_blocked_address(client_address(request))
    except RateLimited as refused:
        response = _sign_in_page(
            request, status=429, back_to=back_to, sign_in_problem=refused.detail
        )
        response.headers.update(refused.headers or {})
        return response
    return None


def _count_failed_sign_in(request: Request) -> None:
    limits: RateLimits = request.app.state.rate_limits
    limits.count_failed_authentication(client_address(request))


def _signed_in(request: Request, raw_id: str, back_to: str | None) -> Response:
    response = see_other(_safe_next(back_to))
    lifetime = int(sessions.SESSION_LIFETIME.total_seconds())
    _set_cookie(request, response, SESSION_COOKIE, raw_id, lifetime)
    response.delete_cookie(PRE_SESSION_COOKIE, path="/")
    return response


@router.get("/sign-in")
def sign_in_form(
    request: Request,
    next: Annotated[str | None, Query(max_length=2000)] = None,
    expired: Annotated[str | None, Query(max_length=1)] = None,
) -> Response:
    return _sign_in_page(request, back_to=next, expired=expired == "1")


@router.post("/sign-in")
def sign_in(
    request: Request,
    session: SessionDep,
    token: Annotated[str, Form(max_length=500)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    refused = _sign_in_refused(request, csrf_token, next)
    if refused is not None:
        return refused
    if not token.strip():
        return _sign_in_page(
            request, status=422, back_to=next, sign_in_problem="Enter your API token."
        )
    found = sessions.check_token(session, token)
    if found is None:
        _count_failed_sign_in(request)
        return _sign_in_page(
            request,
            status=401,
            back_to=next,
            sign_in_problem="This token is not valid, was revoked, or lacks the read scope.",
        )
    raw_id = sessions.start_session(
        session, found.account_id, found.scopes, utcnow(), api_key_pk=found.api_key_pk
    )
    return _signed_in(request, raw_id, next)


@router.get("/sign-in/link")
def sign_in_link_form(
    request: Request, token: Annotated[str, Query(max_length=200)] = ""
) -> Response:
    """A link from `ledgerline console-link` lands here; the button posts it. Not signed in
    on GET, so a mail scanner or a link preview cannot use up the link."""
    return _sign_in_page(request, link_token=token)


@router.post("/sign-in/link")
def sign_in_with_link(
    request: Request,
    session: SessionDep,
    token: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    refused = _sign_in_refused(request, csrf_token, None)
    if refused is not None:
        return refused
    now = utcnow()
    account_id = sessions.redeem_link(session, token, now) if token else None
    if account_id is None:
        _count_failed_sign_in(request)
        return _sign_in_page(
            request,
            status=401,
            link_error=(
                "This sign-in link has expired or was already used. Ask for a new one, "
                "or sign in with an API token."
            ),
        )
    raw_id = sessions.start_session(session, account_id, sessions.LINK_SCOPES, now)
    return _signed_in(request, raw_id, None)


@router.post("/sign-out")
def sign_out(viewer: FormViewerDep, session: SessionDep) -> Response:
    sessions.end_session(session, viewer.signed_in, utcnow())
    response = see_other("/sign-in")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/")
def home(viewer: ViewerDep) -> Response:
    return see_other("/report")


# ---- the reports ----------------------------------------------------------------------------

# The report parameters the URL may carry are declared (and so accepted) by the API's own
# dependency; the console adds its page number, one preset per date range, and the grouped
# view's "Group by" (validated by `service.read_report_query` against `service.GROUPINGS`).
ConsoleKeys = Annotated[str | None, Query(max_length=20)]


def console_keys(
    page: ConsoleKeys = None,
    group_by: ConsoleKeys = None,
    due_date_preset: ConsoleKeys = None,
    paid_at_preset: ConsoleKeys = None,
    updated_at_preset: ConsoleKeys = None,
    confirmed_at_preset: ConsoleKeys = None,
) -> None:
    return None


def _report_query(request: Request, viewer: Viewer) -> service.ReportQuery:
    return service.read_report_query(request.query_params.multi_items(), viewer.principal, utcnow())


def _report_page(
    request: Request,
    viewer: Viewer,
    template: str,
    report: str,
    query: service.ReportQuery,
    form: service.FilterForm,
    page: service.ReportPage | service.GroupedPage | None,
    **context: Any,
) -> Response:
    """A report view: its filters, its rows (None when a filter did not validate: 422 with the
    problem beside its control) and its export form."""
    status = 422 if query.errors else 200
    return render(
        request,
        template,
        viewer,
        status,
        page=page,
        query=query,
        form=form,
        report=report,
        formats=FORMATS,
        **context,
    )


@router.get(
    "/report",
    dependencies=[Depends(report_query(FLAT, for_export=False)), Depends(console_keys)],
)
def report(request: Request, viewer: ViewerDep, session: SessionDep) -> Response:
    query = _report_query(request, viewer)
    params = service.parse_params(FLAT, query, viewer.principal, for_export=False)
    page = None
    if params is not None:
        page = service.report_view(session.connection(), viewer.principal, params, query, "/report")
    form = service.filter_form(FLAT, query, params)
    return _report_page(request, viewer, "report.html", FLAT, query, form, page)


@router.get(
    "/report/grouped",
    dependencies=[Depends(report_query(FLAT, for_export=False)), Depends(console_keys)],
)
def grouped(request: Request, viewer: ViewerDep, session: SessionDep) -> Response:
    query = _report_query(request, viewer)
    params = service.parse_params(GROUPED, query, viewer.principal, for_export=False)
    page = None
    if params is not None:
        page = service.grouped_view(session.connection(), viewer.principal, params, query.grouping)
    form = service.filter_form(FLAT, query, None)
    return _report_page(
        request,
        viewer,
        "grouped.html",
        GROUPED,
        query,
        form,
        page,
        groupings=list(service.GROUPINGS.values()),
        bounded=service.BOUNDED_GROUPS,
        heading=(
            "Grouped line items"
            if "group_by" in query.errors
            else f"Line items by {query.grouping.title}"
        ),
    )


# ---- exports and jobs -----------------------------------------------------------------------


def _start_export(
    request: Request, session: SessionDep, viewer: Viewer, params: ReportParams
) -> Response:
    settings = request.app.state.settings
    job, _created = jobs.create_export_job(
        session,
        viewer.principal,
        params,
        None,
        max_active=settings.max_active_exports_per_account,
    )
    # The queue carries the internal id; the page shows the per-account public one.
    enqueue_after_commit(session, settings, job.id)
    return see_other(f"/jobs/{job.public_id}")


@router.post("/exports")
def export(
    request: Request,
    viewer: ExportingViewerDep,
    session: SessionDep,
    report: Annotated[str, Form(max_length=40)] = FLAT,
    query: Annotated[str, Form(max_length=8000)] = "",
    format: Annotated[str, Form(max_length=10)] = "csv",
) -> Response:
    """Create the job the API's `POST /reports/…/export` would, for the report as filtered."""
    if report not in (FLAT, GROUPED):
        raise PageProblem(422, "Unknown report", f"There is no report called {report!r}.")
    read = service.read_report_query(parse_qsl(query), viewer.principal, utcnow())
    params = service.parse_params(report, read, viewer.principal, for_export=True, format=format)
    if params is None:
        problems = "; ".join(f"{key}: {msg}" for key, msg in read.errors.items())
        raise PageProblem(422, "Cannot export", f"The export was not started: {problems}.")
    return _start_export(request, session, viewer, params)


def _owned_job(session: SessionDep, viewer: Viewer, job_id: int) -> Job:
    try:
        return jobs.get_job(session, viewer.principal, job_id)
    except NotFound:
        raise PageProblem(404, "No such export", f"There is no export {job_id}.") from None


@router.get("/jobs")
def jobs_page(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    size = service.PAGE_SIZE
    count, found = jobs.list_jobs(
        session, viewer.principal, None, OffsetPage(limit=size, offset=(page - 1) * size)
    )
    now = utcnow()
    return render(
        request,
        "jobs.html",
        viewer,
        rows=[service.job_row(job, viewer.principal, now) for job in found],
        count=count,
        previous_url=_page_url("/jobs", [], page - 1) if page > 1 else None,
        next_url=_page_url("/jobs", [], page + 1) if page * size < count else None,
    )


@router.get("/jobs/{job_id}")
def job_page(request: Request, viewer: ViewerDep, session: SessionDep, job_id: JobId) -> Response:
    job = _owned_job(session, viewer, job_id)
    return render(
        request,
        "job.html",
        viewer,
        row=service.job_row(job, viewer.principal, utcnow()),
        percent=percent_done(job),
        active=job.status in service.ACTIVE,
        totals=service.totals_view(job) if job.status == "succeeded" else None,
    )


@router.get("/jobs/{job_id}/progress")
def job_progress(viewer: ViewerDep, session: SessionDep, job_id: JobId) -> Response:
    """What the job page's script polls: status and rows done of total."""
    job = _owned_job(session, viewer, job_id)
    return JSONResponse(
        {
            "status": job.status,
            "rows_done": job.rows_done,
            "rows_total": job.rows_total,
            "percent": percent_done(job),
        },
        headers={"Cache-Control": "no-store"},
    )


@router.post("/jobs/{job_id}/cancel")
def cancel(viewer: ExportingViewerDep, session: SessionDep, job_id: JobId) -> Response:
    job = _owned_job(session, viewer, job_id)
    # A job that finished meanwhile is not an error here: its page shows how it ended.
    with suppress(jobs.JobNotCancelable):
        jobs.cancel_job(session, viewer.principal, job.public_id)
    return see_other(f"/jobs/{job.public_id}")


@router.post("/jobs/{job_id}/again")
def run_again(
    request: Request, viewer: ExportingViewerDep, session: SessionDep, job_id: JobId
) -> Response:
    """A new job with the first one's parameters (its date filters as they were resolved)."""
    job = _owned_job(session, viewer, job_id)
    return _start_export(request, session, viewer, ReportParams.from_json(job.params))


@router.get("/jobs/{job_id}/download")
def download(request: Request, viewer: ViewerDep, session: SessionDep, job_id: JobId) -> Response:
    """To the API's own download, by a short signed link: the same bytes, one code path."""
    job = _owned_job(session, viewer, job_id)
    now = utcnow()
    if not service.downloadable(job, now):
        raise PageProblem(
            409, "No file", f"Export {job.public_id} has no file to download ({job.status})."
        )
    expires = link_expiry(now, 60)
    token = sign_download(_secret(request), job.account_id, job.public_id, expires)
    return see_other(f"/api/v2/jobs/{job.public_id}/download?" + urlencode({"token": token}))


# ---- invoices -------------------------------------------------------------------------------


@router.get("/invoices")
def invoices_page(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    q: Annotated[str | None, Query(max_length=200)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    search = service.InvoiceSearch.parse(q, status, page)
    count, rows = 0, list[service.InvoiceRow]()
    if not search.errors:
        count, rows = service.invoice_list(session, viewer.principal, search)
    query = [
        (key, value) for key, value in (("q", search.text), ("status", search.status)) if value
    ]
    return render(
        request,
        "invoices.html",
        viewer,
        422 if search.errors else 200,
        search=search,
        count=count,
        rows=rows,
        statuses=INVOICE_STATUSES,
        previous_url=_page_url("/invoices", query, page - 1) if page > 1 else None,
        next_url=_page_url("/invoices", query, page + 1)
        if page * service.PAGE_SIZE < count
        else None,
    )


def _page_url(path: str, query: list[tuple[str, str]], page: int) -> str:
    return f"{path}?{urlencode([*query, ('page', str(page))])}"


@router.get("/invoices/{invoice_id}")
def invoice_page(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    invoice_id: Annotated[int, Path(ge=1, le=MAX_ID)],
) -> Response:
    try:
        detail = service.invoice_detail(session, viewer.principal, invoice_id)
    except NotFound:
        raise PageProblem(404, "No such invoice", f"There is no invoice {invoice_id}.") from None
    return render(request, "invoice.html", viewer, detail=detail)


# ---- scheduled exports ------------------------------------------------------------------------

ScheduleId = Annotated[int, Path(ge=1, le=MAX_ID)]
ShortForm = Annotated[str, Form(max_length=200)]
# What a state-changing form did, said on the page it redirects to (by code: the URL carries
# no text a link could forge).
SCHEDULE_DONE = {
    "created": "Schedule {id} was created.",
    "paused": "Schedule {id} is paused: it will not run until it is resumed.",
    "resumed": "Schedule {id} is running again from its next slot.",
    "deleted": "Schedule {id} was deleted. The exports it made stay in Exports.",
}


def writing_viewer(viewer: FormViewerDep) -> Viewer:
    if not viewer.can_export:
        raise PageProblem(
            403,
            "Read-only sign-in",
            "You signed in with a read-only token: changes need a token with the write scope.",
        )
    return viewer


WritingViewerDep = Annotated[Viewer, Depends(writing_viewer)]


def _done_notice(table: dict[str, str], done: str | None, item: int | None) -> str | None:
    if done not in table or item is None:
        return None
    return table[done].format(id=item)


@router.get("/schedules")
def schedules_page(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    done: Annotated[str | None, Query(max_length=20)] = None,
    schedule: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Response:
    size = service.PAGE_SIZE
    count, found = schedule_service.list_schedules(
        session, viewer.principal, OffsetPage(limit=size, offset=(page - 1) * size)
    )
    return render(
        request,
        "schedules.html",
        viewer,
        section="schedule",
        rows=service.schedule_rows(session, viewer.principal, found),
        count=count,
        notice=_done_notice(SCHEDULE_DONE, done, schedule),
        previous_url=_page_url("/schedules", [], page - 1) if page > 1 else None,
        next_url=_page_url("/schedules", [], page + 1) if page * size < count else None,
    )


def _schedule_form_page(
    request: Request, viewer: Viewer, form: service.ScheduleForm, status: int = 200
) -> Response:
    return render(
        request,
        "schedule_form.html",
        viewer,
        status,
        section="schedule",
        form=form,
        fields=service.SCHEDULE_FIELDS,
        reports=service.REPORT_LABELS,
        formats=FORMATS,
        cadences=service.CADENCE_LABELS,
        weekdays=WEEKDAYS,
        ranges=service.RANGES,
        timeframes=service.TIMEFRAME_LABELS,
        statuses=INVOICE_STATUSES,
        zones=sorted(available_timezones()),
        account_zone=viewer.principal.timezone,
    )


@router.get("/schedules/new")
def new_schedule_page(request: Request, viewer: ViewerDep) -> Response:
    return _schedule_form_page(request, viewer, service.ScheduleForm())


@router.post("/schedules")
def create_schedule(
    request: Request,
    viewer: WritingViewerDep,
    session: SessionDep,
    report: ShortForm = FLAT,
    format: ShortForm = "csv",
    cadence: ShortForm = "monthly",
    time: ShortForm = "",
    weekday: ShortForm = "",
    day_of_month: ShortForm = "",
    cron: ShortForm = "",
    timezone: ShortForm = "",
    date_range: ShortForm = "paid_at",
    timeframe: ShortForm = "",
    statuses: Annotated[list[str] | None, Form(max_length=40)] = None,
    more: Annotated[str, Form(max_length=4000)] = "",
    paused: ShortForm = "",
) -> Response:
    """A schedule made by `schedules.service.create_schedule`, as `POST /export_schedules`
    makes it; a problem is shown beside its control (422) and nothing is written."""
    form = service.ScheduleForm(
        report=report,
        format=format,
        cadence=cadence,
        time=time,
        weekday=weekday,
        day_of_month=day_of_month,
        cron=cron,
        timezone=timezone,
        date_range=date_range if date_range in dict(service.RANGES) else "paid_at",
        timeframe=timeframe,
        statuses=list(statuses or []),
        more=more,
        paused=bool(paused),
    )
    try:
        made = service.create_schedule_from_form(
            session, viewer.principal, form, request_now(request)
        )
    except service.FormProblems:
        session.rollback()
        return _schedule_form_page(request, viewer, form, 422)
    return see_other(f"/schedules?done=created&schedule={made.public_id}")


def _no_schedule(schedule_id: int) -> PageProblem:
    return PageProblem(404, "No such schedule", f"There is no scheduled export {schedule_id}.")


def _change_schedule(
    request: Request, viewer: Viewer, session: SessionDep, schedule_id: int, enabled: bool
) -> Response:
    try:
        schedule_service.update_schedule(
            session,
            viewer.principal,
            schedule_id,
            ScheduleUpdate(enabled=enabled),
            request_now(request),
        )
    except NotFound:
        raise _no_schedule(schedule_id) from None
    except AppError as exc:
        # Its stored parameters no longer parse (a change of the report catalog).
        session.rollback()
        raise PageProblem(422, "Cannot resume", exc.detail) from None
    done = "resumed" if enabled else "paused"
    return see_other(f"/schedules?done={done}&schedule={schedule_id}")


@router.post("/schedules/{schedule_id}/pause")
def pause_schedule(
    request: Request, viewer: WritingViewerDep, session: SessionDep, schedule_id: ScheduleId
) -> Response:
    return _change_schedule(request, viewer, session, schedule_id, enabled=False)


@router.post("/schedules/{schedule_id}/resume")
def resume_schedule(
    request: Request, viewer: WritingViewerDep, session: SessionDep, schedule_id: ScheduleId
) -> Response:
    """Runs again from the first slot after now: slots missed while paused are not run."""
    return _change_schedule(request, viewer, session, schedule_id, enabled=True)


@router.post("/schedules/{schedule_id}/delete")
def delete_schedule(
    viewer: WritingViewerDep, session: SessionDep, schedule_id: ScheduleId
) -> Response:
    """The schedule goes; the exports it made stay."""
    try:
        schedule_service.delete_schedule(session, viewer.principal, schedule_id)
    except NotFound:
        raise _no_schedule(schedule_id) from None
    return see_other(f"/schedules?done=deleted&schedule={schedule_id}")


# ---- webhook endpoints ------------------------------------------------------------------------

EndpointId = Annotated[int, Path(ge=1, le=MAX_ID)]
# The signing secret between the form that made it and the one page that shows it: sealed
# under the server's key with the account, bound to the endpoint and to this session,
# sent only to that endpoint's page, read once and deleted there (POST-redirect-GET, and a
# reload does not show it again).
SECRET_COOKIE = "ledgerline_console_secret"  # noqa: S105 - a cookie name
SECRET_COOKIE_SECONDS = 120
WEBHOOK_DONE = {
    "enabled": "Endpoint {id} is enabled: events are sent to it, held ones first.",
    "disabled": "Endpoint {id} is disabled: its events are held until it is enabled again.",
    "deleted": "Endpoint {id} was deleted, with its delivery log.",
    "redelivered": "Delivery {id} will be sent again within a few seconds.",
    "busy": "Delivery {id} is being sent right now; retry once this attempt is recorded.",
}


def _no_endpoint(endpoint_id: int) -> PageProblem:
    return PageProblem(404, "No such endpoint", f"There is no webhook endpoint {endpoint_id}.")


def _with_secret(
    request: Request, viewer: Viewer, endpoint_id: int, secret: str, done: str
) -> Response:
    response = see_other(f"/webhooks/{endpoint_id}?done={done}")
    sealed = seal(
        _secret(request), viewer.principal.account_id, f"{endpoint_id}:{viewer.csrf}:{secret}"
    )
    response.set_cookie(
        SECRET_COOKIE,
        sealed,
        max_age=SECRET_COOKIE_SECONDS,
        path=f"/webhooks/{endpoint_id}",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


def _secret_to_show(request: Request, viewer: Viewer, endpoint_id: int) -> str | None:
    sealed = request.cookies.get(SECRET_COOKIE)
    if not sealed or len(sealed) > 1000:
        return None
    try:
        opened = unseal(_secret(request), viewer.principal.account_id, sealed)
        for_endpoint, csrf, secret = opened.split(":", 2)
    except (InvalidTag, ValueError):
        return None
    if for_endpoint != str(endpoint_id) or not hmac.compare_digest(csrf, viewer.csrf):
        return None
    return secret


@router.get("/webhooks")
def webhooks_page(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    done: Annotated[str | None, Query(max_length=20)] = None,
    endpoint: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Response:
    # At most MAX_ENDPOINTS (20) per account: one page holds them all.
    count, found = webhook_service.list_endpoints(
        session, viewer.principal, OffsetPage(limit=webhook_service.MAX_ENDPOINTS, offset=0)
    )
    return render(
        request,
        "webhooks.html",
        viewer,
        section="webhook",
        endpoints=found,
        count=count,
        most=webhook_service.MAX_ENDPOINTS,
        events=service.EVENT_LABELS,
        notice=_done_notice(WEBHOOK_DONE, done, endpoint),
    )


def _webhook_form_page(
    request: Request, viewer: Viewer, form: service.WebhookForm, status: int = 200
) -> Response:
    return render(
        request,
        "webhook_form.html",
        viewer,
        status,
        section="webhook",
        form=form,
        fields=service.WEBHOOK_FIELDS,
        events=service.EVENT_LABELS,
    )


@router.get("/webhooks/new")
def new_webhook_page(request: Request, viewer: ViewerDep) -> Response:
    return _webhook_form_page(request, viewer, service.WebhookForm())


@router.post("/webhooks")
def create_webhook(
    request: Request,
    viewer: WritingViewerDep,
    session: SessionDep,
    url: Annotated[str, Form(max_length=4000)] = "",
    events: Annotated[list[str] | None, Form(max_length=40)] = None,
    description: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """An endpoint made by `webhooks.service.create_endpoint`, as the API makes it; its
    secret is shown once, on the endpoint's page."""
    form = service.WebhookForm(url=url, events=list(events or []), description=description)
    try:
        endpoint, secret = service.create_endpoint_from_form(
            session,
            viewer.principal,
            form,
            server_secret=_secret(request),
            allow_private=request.app.state.settings.webhook_allow_private,
            now=request_now(request),
        )
    except service.FormProblems:
        session.rollback()
        return _webhook_form_page(request, viewer, form, 422)
    return _with_secret(request, viewer, endpoint.public_id, secret, "created")


@router.get("/webhooks/{endpoint_id}")
def webhook_page(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    endpoint_id: EndpointId,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    done: Annotated[str | None, Query(max_length=20)] = None,
    delivery: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Response:
    size = service.PAGE_SIZE
    try:
        endpoint, count, views = webhook_service.list_deliveries(
            session,
            viewer.principal,
            endpoint_id,
            OffsetPage(limit=size, offset=(page - 1) * size),
        )
    except NotFound:
        raise _no_endpoint(endpoint_id) from None
    secret = _secret_to_show(request, viewer, endpoint_id)
    notice = _done_notice(WEBHOOK_DONE, done, delivery if delivery else endpoint_id)
    if done in ("created", "rotated"):
        notice = None  # said beside the secret, or not at all on a reload
    base = f"/webhooks/{endpoint_id}"
    response = render(
        request,
        "webhook.html",
        viewer,
        section="webhook",
        endpoint=endpoint,
        secret=secret,
        rotated=done == "rotated",
        events=service.EVENT_LABELS,
        rows=service.delivery_rows(views, viewer.principal.timezone),
        count=count,
        notice=notice,
        created=local_time(endpoint.created_at, viewer.principal.timezone),
        previous_url=_page_url(base, [], page - 1) if page > 1 else None,
        next_url=_page_url(base, [], page + 1) if page * size < count else None,
    )
    if request.cookies.get(SECRET_COOKIE) is not None:
        response.delete_cookie(SECRET_COOKIE, path=base)
    return response


def _set_enabled(
    request: Request, viewer: Viewer, session: SessionDep, endpoint_id: int, enabled: bool
) -> Response:
    try:
        webhook_service.update_endpoint(
            session,
            viewer.principal,
            endpoint_id,
            WebhookEndpointUpdate(enabled=enabled),
            allow_private=request.app.state.settings.webhook_allow_private,
            now=request_now(request),
        )
    except NotFound:
        raise _no_endpoint(endpoint_id) from None
    done = "enabled" if enabled else "disabled"
    return see_other(f"/webhooks/{endpoint_id}?done={done}")


@router.post("/webhooks/{endpoint_id}/enable")
def enable_webhook(
    request: Request, viewer: WritingViewerDep, session: SessionDep, endpoint_id: EndpointId
) -> Response:
    return _set_enabled(request, viewer, session, endpoint_id, enabled=True)


@router.post("/webhooks/{endpoint_id}/disable")
def disable_webhook(
    request: Request, viewer: WritingViewerDep, session: SessionDep, endpoint_id: EndpointId
) -> Response:
    return _set_enabled(request, viewer, session, endpoint_id, enabled=False)


@router.post("/webhooks/{endpoint_id}/rotate")
def rotate_webhook_secret(
    request: Request, viewer: WritingViewerDep, session: SessionDep, endpoint_id: EndpointId
) -> Response:
    """A new signing secret at once (every request from now on is signed with it alone),
    shown once on the endpoint's page."""
    try:
        endpoint, secret = webhook_service.rotate_secret(
            session,
            viewer.principal,
            endpoint_id,
            server_secret=_secret(request),
            now=request_now(request),
        )
    except NotFound:
        raise _no_endpoint(endpoint_id) from None
    return _with_secret(request, viewer, endpoint.public_id, secret, "rotated")


@router.post("/webhooks/{endpoint_id}/delete")
def delete_webhook(
    viewer: WritingViewerDep, session: SessionDep, endpoint_id: EndpointId
) -> Response:
    try:
        webhook_service.delete_endpoint(session, viewer.principal, endpoint_id)
    except NotFound:
        raise _no_endpoint(endpoint_id) from None
    return see_other(f"/webhooks?done=deleted&endpoint={endpoint_id}")


@router.post("/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver")
def redeliver_webhook(
    request: Request,
    viewer: WritingViewerDep,
    session: SessionDep,
    endpoint_id: EndpointId,
    delivery_id: Annotated[int, Path(ge=1, le=MAX_ID)],
) -> Response:
    """Send it again now, its retry schedule started afresh (as the API's redeliver)."""
    done = "redelivered"
    try:
        webhook_service.redeliver(
            session, viewer.principal, endpoint_id, delivery_id, request_now(request)
        )
    except webhook_service.DeliveryInProgress:
        session.rollback()
        done = "busy"
    except NotFound:
        raise PageProblem(
            404,
            "No such delivery",
            f"There is no delivery {delivery_id} of webhook endpoint {endpoint_id}.",
        ) from None
    return see_other(f"/webhooks/{endpoint_id}?done={done}&delivery={delivery_id}")
