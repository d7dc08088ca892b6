"""The HTTP server `ledgerline serve` runs: hypercorn, configured so that no client can stall
or exhaust it (issue 10; docs/decisions.md "Issue 10: bounded HTTP" says why not uvicorn).

Hypercorn enforces, before the app is called:
- the head (request line and every header) at most `http_max_header_bytes` while it is
  incomplete: its h11 parser stops buffering there and answers 431 (empty body). A head that
  arrives whole in one read (up to 64 KiB) is parsed first, so memory per connection stays
  under the limit plus one read;
- `http_idle_timeout_seconds` from the moment a connection opens or a response ends until
  the next request's head is complete: a client that sends nothing, trickles its headers
  (slowloris) or idles on keep-alive is closed then.

`HeadLimits`, the outermost layer of the app, holds every parsed head to the exact limits and
answers in problem+json: the head's size (the case above), the number of header fields and the
request line, which hypercorn has no setting for.
"""

from __future__ import annotations

import asyncio
import gc
import http
import logging
import os
import signal
from collections.abc import Callable
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledgerline.errors import PROBLEM_TYPE_BASE

if TYPE_CHECKING:
    from hypercorn.config import Config

    from ledgerline.config import Settings

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class HeadLimits:
    """Refuse a head over its size (431), with too many header fields (431) or with too long
    a request line (414) before any middleware or endpoint sees it."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_header_bytes: int,
        max_headers: int,
        max_request_line_bytes: int,
    ) -> None:
        self.app = app
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers
        self.max_request_line_bytes = max_request_line_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self._refusal(scope)
            if refusal is not None:
                status, code, detail = refusal
                await _send_problem(send, status, code, detail)
                return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> tuple[int, str, str] | None:
        if _head_bytes(scope) > self.max_header_bytes:
            return (
                431,
                "headers-too-large",
                "The request line and headers together are longer than "
                f"at most {self.max_header_bytes} bytes.",
            )
        if len(scope["headers"]) > self.max_headers:
            return (
                431,
                "too-many-headers",
                f"The request has {len(scope['headers'])} header fields; "
                f"at most {self.max_headers} header fields are accepted.",
            )
        if _request_line_bytes(scope) > self.max_request_line_bytes:
            return (
                414,
                "request-line-too-long",
                "The request line (method, path and query) is longer than "
                f"at most {self.max_request_line_bytes} bytes.",
            )
        return None


def _head_bytes(scope: Scope) -> int:
    """The request line and the headers as sent: `name: value CRLF` each, then CRLF."""
    fields = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
    return _request_line_bytes(scope) + 2 + fields + 2


def _request_line_bytes(scope: Scope) -> int:
    """`METHOD SP target SP HTTP/x.y`: the target as the client sent it."""
    query: bytes = scope.get("query_string", b"")
    target = len(scope.get("raw_path") or scope["path"].encode()) + (len(query) + 1 if query else 0)
    return len(scope["method"]) + 1 + target + 1 + len("HTTP/") + len(scope["http_version"])


async def _send_problem(send: Send, status: int, code: str, detail: str) -> None:
    from ledgerline.http import JSONResponse

    body = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": http.HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    rendered = JSONResponse(body).body
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(rendered)).encode()),
                # The head was read whole and refused; nothing of this request is worth
                # keeping the connection for.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": rendered})


def server_config(settings: Settings, host: str, port: int, *, fd: int | None = None) -> Config:
    """Hypercorn's settings; with `fd`, it serves the listening socket it inherited (one of
    the API processes of `serve --workers N`, src/ledgerline/api_processes.py) instead of
    binding `host:port` itself."""
    from hypercorn.config import Config

    config = Config()
    if fd is not None:
        config.bind = [f"fd://{fd}"]
    else:
        config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.h11_max_incomplete_size = settings.http_max_header_bytes
    config.h2_max_header_list_size = settings.http_max_header_bytes
    config.keep_alive_timeout = settings.http_idle_timeout_seconds
    # No per-read timeout: it would also cut a client that sends nothing while it downloads
    # a long streamed report or export.
    config.read_timeout = None
    config.graceful_timeout = settings.http_shutdown_grace_seconds
    config.backlog = 2048
    config.include_server_header = False
    # Our JSON log handler on the root logger, not hypercorn's own stderr format.
    config.errorlog = logging.getLogger("hypercorn.error")
    config.accesslog = None
    return config


def guarded(app: ASGIApp, settings: Settings) -> ASGIApp:
    return HeadLimits(
        app,
        max_header_bytes=settings.http_max_header_bytes,
        max_headers=settings.http_max_headers,
        max_request_line_bytes=settings.http_max_request_line_bytes,
    )


def run_server(
    app: ASGIApp,
    settings: Settings,
    host: str,
    port: int,
    *,
    fd: int | None = None,
    parent_pid: int | None = None,
    on_started: Callable[[], None] | None = None,
) -> None:
    """Serve `app` until SIGINT or SIGTERM, then return after a graceful shutdown (`Draining`:
    no connection already accepted is closed before its first request is answered).

    An API process of `serve --workers N` passes the listening socket it inherited (`fd`),
    its supervisor's pid (it stops, gracefully, when that process is gone: a supervisor
    killed with SIGKILL leaves no API process behind) and `on_started`, called once the
    app's startup has run and the process is accepting connections."""
    config = server_config(settings, host, port, fd=fd)
    draining = Draining(on_listening=on_started)
    served = draining.app(guarded(app, settings))
    _freeze_startup_heap()
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_serve(served, config, draining, parent_pid=parent_pid))


# A connection's peer address as hypercorn gives it to the app (`scope["client"]`).
Peer = tuple[Any, ...]


class Draining:
    """A graceful stop that drops no request which reached the listening socket.

    Hypercorn's own shutdown sets its `terminated` event, which closes at once every
    connection with no request in progress: those idle on keep-alive, but also those it has
    accepted whose request head has not been read yet (in the socket's buffer, or still on
    its way from the client). Such a client gets no answer ("Server disconnected without
    sending a response") although its connection was accepted; during a rolling restart of
    `serve --workers N` that was any new connection an old process took in the moment before
    it was told to stop.

    So, told to stop, a process first stops accepting (closes its listening servers: new
    connections wait in the socket's queue for another process), then waits until every
    connection it accepted has begun a request or closed (hypercorn still closes one that
    sends nothing for `keep_alive_timeout`, so no longer than that), within the shutdown
    grace, and only then lets hypercorn's shutdown run, with what is left of the grace for
    the requests in flight. Answers given meanwhile say `Connection: close`, so no client
    sends another request on a connection about to be closed."""

    def __init__(self, on_listening: Callable[[], None] | None = None) -> None:
        self.on_listening = on_listening
        self.servers: list[asyncio.AbstractServer] = []
        # Accepted, open, no request begun on them yet: from when the server accepts each
        # (and makes its protocol) to when the app is called for its first request.
        self.fresh: set[_Counted] = set()
        self.by_peer: dict[Peer, _Counted] = {}
        self.stopping = False
        self._none_fresh: asyncio.Event | None = None

    def app(self, app: ASGIApp) -> ASGIApp:
        """`app` with each request's connection marked as begun (the outermost layer)."""

        async def marking(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] not in ("http", "websocket"):
                await app(scope, receive, send)
                return
            client = scope.get("client")
            if client is not None:
                self._begun(self.by_peer.get(tuple(client)))
            if scope["type"] == "websocket":
                await app(scope, receive, send)
                return

            async def closing(message: Message) -> None:
                if message["type"] == "http.response.start" and self.stopping:
                    headers = list(message.get("headers", []))
                    if not any(name.lower() == b"connection" for name, _ in headers):
                        headers.append((b"connection", b"close"))
                    message = {**message, "headers": headers}
                await send(message)

            await app(scope, receive, closing)

        return marking

    def track(self, loop: asyncio.AbstractEventLoop) -> None:
        """Keep each listening server `loop` creates (hypercorn creates one per socket with
        `asyncio.start_server`, once the app's startup has run: `on_listening` is called
        then), and count the connections it accepts."""
        create_server = loop.create_server

        async def tracking(
            protocol_factory: Callable[[], asyncio.BaseProtocol], *args: Any, **kwargs: Any
        ) -> asyncio.AbstractServer:
            def counted() -> asyncio.BaseProtocol:
                return _Counted(protocol_factory(), self)

            server = await create_server(counted, *args, **kwargs)
            self.servers.append(server)
            if self.on_listening is not None:
                self.on_listening()
                self.on_listening = None
            return server

        loop.create_server = tracking  # type: ignore[method-assign,assignment]

    async def stop(self, config: Config) -> None:
        """Stop accepting, then wait for the connections accepted to begin their requests;
        `config.graceful_timeout` is left with what remains of the grace."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + config.graceful_timeout
        self.stopping = True
        for server in self.servers:
            server.close()
        # A connection accepted just now is made on the loop's next turns (uvloop: its
        # protocol is made at once, `connection_made` a turn later; asyncio: a few turns).
        for _ in range(3):
            await asyncio.sleep(0)
        if self.fresh:
            self._none_fresh = asyncio.Event()
            wait = min(config.graceful_timeout, config.keep_alive_timeout)
            with suppress(TimeoutError):
                await asyncio.wait_for(self._none_fresh.wait(), wait)
        config.graceful_timeout = max(0.0, deadline - loop.time())

    def _begun(self, conn: _Counted | None) -> None:
        if conn is not None and conn in self.fresh:
            self.fresh.discard(conn)
            if not self.fresh and self._none_fresh is not None:
                self._none_fresh.set()


class _Counted(asyncio.Protocol):
    """The protocol of one accepted connection (`inner`, hypercorn's), in `draining.fresh`
    from when it is made until a request begins on it or it is lost."""

    def __init__(self, inner: asyncio.BaseProtocol, draining: Draining) -> None:
        self.inner = inner
        self.draining = draining
        self.peer: Peer | None = None
        draining.fresh.add(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):  # (host, port), or IPv6's (host, port, flow, scope)
            self.peer = peer[:2]
            self.draining.by_peer[self.peer] = self
        else:  # no address to know its requests by (a Unix socket): not waited for
            self.draining._begun(self)
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)  # type: ignore[attr-defined]

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()  # type: ignore[attr-defined, no-any-return]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None:
            self.draining.by_peer.pop(self.peer, None)
        self.draining._begun(self)
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


def _freeze_startup_heap() -> None:
    """Exempt what startup built (modules, the app, its routes and schemas) from the cyclic
    garbage collector. Otherwise the first burst of connections (200 at once in the
    slowloris test) set off a full collection over that whole heap, which held the event
    loop, and everyone's requests, for 0.2-0.5 s."""
    gc.collect()
    gc.freeze()


async def _serve(
    app: ASGIApp, config: Config, draining: Draining, *, parent_pid: int | None = None
) -> None:
    from hypercorn.asyncio import serve

    loop = asyncio.get_running_loop()
    draining.track(loop)
    stopping = asyncio.Event()
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stopping.set)
    watch = None
    if parent_pid is not None:
        watch = loop.create_task(_stop_when_orphaned(parent_pid, stopping))

    async def shutdown_trigger() -> None:
        await stopping.wait()
        await draining.stop(config)

    try:
        await serve(app, config, shutdown_trigger=shutdown_trigger, mode="asgi")  # type: ignore[arg-type]
    finally:
        if watch is not None:
            watch.cancel()
        # The caller's handlers again, so a signal during its own cleanup (stopping the
        # embedded worker) is handled as it expects.
        for signum, handler in previous.items():
            loop.remove_signal_handler(signum)
            signal.signal(signum, handler)


# How often an API process checks that its supervisor is still there.
PARENT_CHECK_SECONDS = 1.0


async def _stop_when_orphaned(parent_pid: int, stopping: asyncio.Event) -> None:
    while os.getppid() == parent_pid:
        await asyncio.sleep(PARENT_CHECK_SECONDS)
    logging.getLogger("ledgerline.server").warning("supervisor gone; API process stopping")
    stopping.set()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # Windows, PyPy: asyncio's own loop
        return None
    return uvloop.new_event_loop
