"""ASGI middleware: request ids and the access log."""

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.context import request_id_var

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


access_log = logging.getLogger("guichet.access")


class RequestContextMiddleware:
    """Takes the caller's X-Request-ID when it is sane, else makes one; every log line, audit row,
    problem body and outgoing call of the request carries it. Ends with one access line naming the
    route template, never the URL (a search query may hold a name)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), None)
        request_id = incoming if incoming and _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                elapsed = (time.perf_counter() - started) * 1000
                # Server-Timing lets a client (and the benchmarks) see the server's own share of the latency.
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode()),
                                      (b"server-timing", f"app;dur={elapsed:.2f}".encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            access_log.info("request", extra={
                "method": scope["method"],
                "route": getattr(route, "path", "(unmatched)"),
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            })
            request_id_var.reset(token)
