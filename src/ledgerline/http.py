"""HTTP plumbing shared by every endpoint: the JSON response, the ASGI middleware, and the
problem+json rendering of every error."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
import weakref
from collections.abc import Sequence
from typing import Any

import simplejson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse as StarletteJSONResponse
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledgerline.errors import PROBLEM_TYPE_BASE, TITLES, AppError, BadRequest, ValidationFailed
from ledgerline.request_types import LONE_SURROGATE, MAX_JSON_DEPTH, json_body_violation

MAX_BODY_BYTES = 1024 * 1024

log = logging.getLogger("ledgerline.http")


class JSONResponse(StarletteJSONResponse):
    """JSON whose `Decimal`s are written as exact number literals (45.5, never 45.49999…).

    Endpoints return this directly: FastAPI's own encoder would turn a `Decimal` into a float.
    """

    def render(self, content: Any) -> bytes:
        text = simplejson.dumps(
            content, use_decimal=True, ensure_ascii=False, separators=(",", ":"), default=str
        )
        # A lone surrogate has no UTF-8 form. Bodies holding one are refused and problems
        # print U+FFFD for it, so none should reach here; if one does, its JSON escape keeps
        # the answer valid instead of failing it.
        return text.encode("utf-8", "backslashreplace")


_SLASHES = re.compile(r"/{2,}")


class NormalisePathMiddleware:
    """Serve `/api/v2//reports/…` (the seed's own URL) as if it had one slash."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "//" in scope["path"]:
            scope = dict(scope)
            scope["path"] = _SLASHES.sub("/", scope["path"])
            scope["raw_path"] = scope["path"].encode()
        await self.app(scope, receive, send)


def _problem_bytes(status: int, title: str, detail: str) -> bytes:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return json.dumps(body).encode()


class BodyLimitMiddleware:
    """Refuse bodies over 1 MiB with 413, before they are read whole.

    A declared `Content-Length` is refused at once; a chunked body is counted as it
    streams and cut off as soon as it passes the limit.
    """

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared: bytes | None = None
        chunked = False
        for name, value in scope.get("headers") or ():
            if name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                chunked = True
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(send)
            return
        if not chunked and (declared is None or int(declared) <= self.limit):
            # The declared length (none: no body, RFC 9112 §6.3) is within the limit and
            # the server delivers no more than declared: nothing to count.
            await self.app(scope, receive, send)
            return
        received = 0
        too_large = False
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    too_large = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            # The framework may turn our exception into its own error response; once the
            # limit has tripped, whatever it answers is replaced by the 413.
            nonlocal response_started
            if too_large:
                if message["type"] == "http.response.start" and not response_started:
                    response_started = True
                    await self._refuse(send)
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not too_large:
                raise
        if too_large and not response_started:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = _problem_bytes(413, "Content Too Large", "The request body is over 1 MiB.")
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(Exception):
    pass


def _is_json(scope: Scope) -> bool:
    """A body every reader here parses as JSON: FastAPI's (`application/json`, `…+json`) and
    the export endpoint's."""
    headers: dict[bytes, bytes] = dict(scope.get("headers") or [])
    media_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
    return media_type.endswith((b"/json", b"+json"))


class JSONBodyRulesMiddleware:
    """Every JSON body checked once, before any endpoint reads it, against the rules no schema
    states (`request_types.json_body_violation`): nested past MAX_JSON_DEPTH is a 400, text
    with a lone surrogate a 422 naming where it is. Body parsers differ (FastAPI's for the
    bodies it validates, the export endpoint's own), so the rules sit in front of both.

    The body (at most 1 MiB: `BodyLimitMiddleware` runs outside this) is read whole, parsed,
    and handed on unchanged; a body that is not JSON at all is left to its endpoint's 400.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            return  # the client left before its body arrived: there is no one to answer
        refusal = _body_refusal(body)
        if refusal is not None:
            await render_error(refusal)(scope, receive, send)
            return
        await self.app(scope, _replaying(body, receive), send)


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body (bounded by `BodyLimitMiddleware` outside), or None if the
    client disconnected first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands on `body`, already read, then whatever the client sends next
    (its disconnect)."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class RequestSlotsMiddleware:
    """At most `slots` requests inside the app at once; the others wait here, in the event
    loop, holding no thread and no database connection (`LEDGERLINE_API_THREADS`).

    Why: a request holds its database session from its first dependency to its end, across
    several hops to the thread pool. With more requests inside than connections, threads block
    in the pool's checkout while the requests holding connections wait for a thread: a stall
    until the pool's 30 s timeout, then 500s (FastAPI's `contextmanager_in_threadpool` notes
    the same trap). The pool has a connection for every slot, so no request waits for one.

    A request's body is read before it takes a slot, so a slow sender holds only its own
    connection; the slot is given back when the response starts (the session, a
    function-scoped dependency, is closed by then), so a slow reader of a download holds none.
    """

    def __init__(self, app: ASGIApp, slots: int) -> None:
        self.app = app
        self.slots = slots
        # One semaphore per event loop (a test client may run the app on several in turn).
        self._semaphores: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, asyncio.Semaphore
        ] = weakref.WeakKeyDictionary()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            return  # the client left before its body arrived: there is no one to answer
        loop = asyncio.get_running_loop()
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            semaphore = self._semaphores[loop] = asyncio.Semaphore(self.slots)
        await semaphore.acquire()
        held = True

        def give_back() -> None:
            nonlocal held
            if held:
                held = False
                semaphore.release()

        async def send_and_give_back(message: Message) -> None:
            if message["type"] == "http.response.start":
                give_back()
            await send(message)

        try:
            await self.app(scope, _replaying(body, receive), send_and_give_back)
        finally:
            give_back()


def _body_refusal(body: bytes) -> AppError | None:
    violation = json_body_violation(body) if body.strip() else None
    if violation is None:
        return None
    if violation.too_deep:
        return BadRequest(
            f"The request body is nested deeper than {MAX_JSON_DEPTH} levels.",
            errors=[{"loc": violation.loc, "msg": violation.msg}],
        )
    return ValidationFailed.field(violation.loc, violation.msg)


class HeadAsGetMiddleware:
    """`HEAD` answered as `GET` is, without the body (RFC 9110 §9.3.2): routes declare GET
    only, so the document lists each operation once."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        as_get = {**scope, "method": "GET"}
        try:
            await self.app(as_get, receive, without_body)
        finally:
            # The route the router found, for the outer layers (/metrics counts HEAD by it).
            if "route" in as_get:
                scope["route"] = as_get["route"]


REQUESTS = Counter("ledgerline_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("ledgerline_http_request_seconds", "HTTP request latency", ["method", "route"])


class RequestContextMiddleware:
    """What every answer gets, in one wrapper of `send` (it was three middlewares; each layer
    costs a call and a closure per request, issue 11):

    - a request id (`X-Request-ID`: the client's, up to 100 characters, or a new one);
    - the `RateLimit-*` headers of the key's quota, which `dependencies.authenticate_request`
      puts in the request state, on whatever the request is answered with after
      authentication (the endpoint's answer or any error, a 404 or a 422 included);
    - the request's count and latency in `/metrics`, by method, route and status;
    - one JSON log line.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ""
        for name, value in scope.get("headers") or ():
            if name == b"x-request-id":
                request_id = value.decode("latin-1")
                break
        if not request_id or len(request_id) > 100:
            request_id = uuid.uuid4().hex
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_context(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
                quota: dict[str, str] | None = state.get("rate_limit_headers")
                if quota:
                    present = {name.lower() for name, _value in headers}
                    headers += [
                        (name.lower().encode(), value.encode())
                        for name, value in quota.items()
                        if name.lower().encode() not in present
                    ]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_context)
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            LATENCY.labels(scope["method"], route).observe(seconds)
            log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                },
            )


class JSONLogFormatter(logging.Formatter):
    """One JSON object a line, with whatever `extra` fields the caller gave."""

    _STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in self._STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JSONLogFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn.access",):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = False


# ---- problem+json (RFC 9457) for every error the API gives ------------------------------

error_log = logging.getLogger("ledgerline.errors")


def _printable(text: str) -> str:
    """Text a client sent may hold a lone surrogate, which has no UTF-8 form: an answer
    quoting it shows U+FFFD in its place, never the character or its escape."""
    return LONE_SURROGATE.sub("\ufffd", text)


def _printable_error(error: dict[str, Any]) -> dict[str, Any]:
    loc = [_printable(part) if isinstance(part, str) else part for part in error.get("loc", ())]
    return {**error, "loc": loc, "msg": _printable(str(error.get("msg", "")))}


def problem(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    errors: Sequence[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + (code or TITLES.get(status, "error").lower().replace(" ", "-")),
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": _printable(detail),
    }
    if errors:
        body["errors"] = [_printable_error(error) for error in errors]
    return JSONResponse(
        body, status_code=status, headers=headers, media_type="application/problem+json"
    )


def render_error(exc: AppError) -> Response:
    return problem(exc.status, exc.detail, code=exc.code, errors=exc.errors, headers=exc.headers)


def _validation_errors(exc: RequestValidationError) -> tuple[int, str, list[dict[str, Any]]]:
    """FastAPI's 422s, renamed for clients: an unparseable JSON body is a 400."""
    errors: list[dict[str, Any]] = []
    for error in exc.errors():
        loc = [part for part in error.get("loc", ()) if part != "body" or len(error["loc"]) == 1]
        if error.get("type") == "json_invalid":
            return (
                400,
                "The request body is not valid JSON.",
                [{"loc": ["body"], "msg": "invalid JSON"}],
            )
        msg = str(error.get("msg", "invalid"))
        errors.append({"loc": loc, "msg": msg})
    summary = "; ".join(".".join(str(p) for p in e["loc"]) + ": " + e["msg"] for e in errors[:5])
    return 422, summary or "The request is not valid.", errors


def allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method some route serves at this path, with the two HTTP answers for any
    resource (HEAD where GET is served, and OPTIONS): Starlette's own 405 names only the
    first route that matched the path, one per method here. Included routers are walked
    through FastAPI's `iter_route_contexts`, which sees each route under its full path."""
    methods = {"OPTIONS"}
    for route in iter_route_contexts(app.router.routes):
        match, _child = route.matches({**request.scope, "method": "GET"})
        if match != Match.NONE and route.methods:
            methods |= route.methods
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_request: Request, exc: AppError) -> Response:
        return render_error(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> Response:
        status, detail, errors = _validation_errors(exc)
        return problem(status, detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "")
        headers = getattr(exc, "headers", None)
        if exc.status_code == 404 and detail == "Not Found":
            detail = "No such resource."
        if exc.status_code == 405:
            allow = {"Allow": ", ".join(allowed_methods(app, request))}
            # No route declares OPTIONS: the router's 405 for it is where the path is known
            # to exist, so the answer is the methods it serves.
            if request.method == "OPTIONS":
                return Response(status_code=204, headers=allow)
            detail = "This method is not allowed on this resource."
            headers = {**(headers or {}), **allow}
        return problem(exc.status_code, detail, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        error_log.exception("unhandled error", extra={"path": request.url.path})
        return problem(500, "An unexpected error occurred; it has been logged.")
