"""`create_app()`: routers, middleware, error handlers, operations endpoints."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Literal

import anyio.to_thread
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.orm import sessionmaker
from starlette.responses import Response

from ledgerline import __version__
from ledgerline.auth import KeyCache
from ledgerline.config import Settings, get_settings
from ledgerline.console.endpoints import install_console
from ledgerline.db import engine_for, utcnow
from ledgerline.dependencies import declared_parameters_only
from ledgerline.groups.endpoints import router as groups_router
from ledgerline.http import (
    BodyLimitMiddleware,
    HeadAsGetMiddleware,
    JSONBodyRulesMiddleware,
    JSONResponse,
    NormalisePathMiddleware,
    RequestContextMiddleware,
    RequestSlotsMiddleware,
    install_error_handlers,
    problem,
)
from ledgerline.invoices.endpoints import router as invoices_router
from ledgerline.jobs.endpoints import router as jobs_router
from ledgerline.jobs.queue import queue_for
from ledgerline.openapi import install_openapi, operation_id
from ledgerline.ratelimit import RateLimits, parse_networks
from ledgerline.reports.endpoints import router as reports_router
from ledgerline.schedules.endpoints import router as schedules_router
from ledgerline.tax_categories.endpoints import router as tax_categories_router
from ledgerline.webhooks.endpoints import router as webhooks_router

API_PREFIX = "/api/v2"

ReadinessCheck = Callable[[], None]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    # FastAPIOffline serves /docs and /redoc from assets installed with the package, not a CDN.
    app = FastAPIOffline(
        title="Ledgerline",
        version=__version__,
        description=(
            "Invoices, line items and line-item groups, with TeamUp-compatible invoice line "
            "item reports and export jobs, and Sequence-compatible line-item groups."
        ),
        default_response_class=JSONResponse,
        dependencies=[Depends(declared_parameters_only)],
        swagger_ui_parameters={"persistAuthorization": True},
        generate_unique_id_function=operation_id,
        lifespan=_thread_limit(settings.api_threads),
    )
    install_openapi(app)
    engine = engine_for(settings.resolved_database_url)
    app.state.settings = settings
    app.state.clock = utcnow
    app.state.engine = engine
    app.state.sessionmaker = sessionmaker(bind=engine, expire_on_commit=False)
    app.state.secret_key = settings.resolved_secret_key
    # One limiter (and one storage connection pool) per app, shared by every request.
    app.state.rate_limits = RateLimits.from_settings(settings)
    # Token lookups of the last few seconds (auth.KeyCache; docs/decisions.md, issue 11).
    app.state.key_cache = KeyCache(settings.token_cache_seconds)
    # A cached key's request authenticates in the event loop, not on a thread, unless the
    # rate limits count over the network (Redis): that must not block the loop.
    app.state.auth_in_event_loop = (
        app.state.rate_limits.per_key is None and app.state.rate_limits.failed_auth is None
    ) or settings.resolved_rate_limit_storage_url.startswith("memory")
    app.state.trusted_proxies = parse_networks(settings.trusted_proxies)
    # Other parts (the queue) add checks here; /readyz runs them all.
    app.state.readiness_checks = [("queue", lambda: queue_for(settings).check())]

    install_error_handlers(app)

    api = APIRouter(prefix=API_PREFIX)
    api.include_router(invoices_router)
    api.include_router(groups_router)
    api.include_router(tax_categories_router)
    api.include_router(reports_router)
    api.include_router(jobs_router)
    api.include_router(webhooks_router)
    api.include_router(schedules_router)
    app.include_router(api)
    _operations(app)
    # The web console at `/`, after the API and operations routes it must not shadow.
    install_console(app)

    # Outermost last: the path is normalised before anything routes on it; a body is refused
    # for its size before it is read whole for its JSON rules; a request takes one of the
    # `api_threads` slots last, with its body read.
    app.add_middleware(RequestSlotsMiddleware, slots=settings.api_threads)
    app.add_middleware(JSONBodyRulesMiddleware)
    app.add_middleware(HeadAsGetMiddleware)
    app.add_middleware(BodyLimitMiddleware)
    # The request id, the rate-limit headers, /metrics and the log line, in one layer.
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(NormalisePathMiddleware)
    return app


def _thread_limit(threads: int) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Sync endpoints and dependencies run on anyio's default thread pool (40 threads unless
    told): `api_threads`, as many as the requests the app runs at once. Set in the lifespan
    because the limiter belongs to the event loop that serves."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        yield

    return lifespan


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ok"]
    checks: dict[str, str] = Field(
        description='Each dependency and "ok" (the database, the queue).'
    )


def _operations(app: FastAPI) -> None:
    @app.get("/healthz", tags=["operations"], response_model=Health)
    def healthz() -> Response:
        """The process is up."""
        return JSONResponse({"status": "ok"})

    @app.get(
        "/readyz",
        tags=["operations"],
        response_model=Readiness,
        responses={503: {"description": "The database or the queue is not reachable."}},
    )
    def readyz(request: Request) -> Response:
        """The database and the queue are reachable."""
        checks: dict[str, str] = {}
        try:
            with request.app.state.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # any failure means not ready
            checks["database"] = f"error: {type(exc).__name__}"
        for name, check in request.app.state.readiness_checks:
            try:
                check()
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = f"error: {type(exc).__name__}"
        if all(v == "ok" for v in checks.values()):
            return JSONResponse({"status": "ok", "checks": checks})
        return problem(503, "Not ready: " + ", ".join(f"{k} {v}" for k, v in checks.items()))

    @app.get("/metrics", tags=["operations"], include_in_schema=False)
    def metrics() -> Response:
        """This process's counts; with several API processes (`serve --workers N`), every
        process's summed, whichever one answers (prometheus_client's multiprocess mode)."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
