"""ASGI middleware: request ids, the access log and request metrics, no-store on the API's answers, the
body size limit."""

import logging
import re
import time
import uuid

from fastapi import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import metrics
from app.context import request_id_var
from app.errors import problem_response
from app.i18n import _, language_var, negotiate

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
# nginx's code for a request the client gave up on: counted apart from the server's failures.
CLIENT_CLOSED_REQUEST = 499
_NO_STORE = (b"cache-control", b"no-store")


access_log = logging.getLogger("guichet.access")


class RequestContextMiddleware:
    """Takes the caller's X-Request-ID when it is sane, else makes one; every log line, audit row,
    problem body and outgoing call of the request carries it. Ends with one access line and one
    metrics observation naming the route template, never the URL (a search query may hold a name).

    Every answer under /api/v1 carries `Cache-Control: no-store` unless its route says otherwise: most
    carry personal data (errors too: a 409 names the registered person), and none may stay in a
    browser's or a proxy's cache on a shared office computer."""

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
        response_started = False
        no_store = scope["path"].startswith("/api/v1/")

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                elapsed = (time.perf_counter() - started) * 1000
                # Server-Timing lets a client (and the benchmarks) see the server's own share of the latency.
                headers = [*message.get("headers", []), (b"x-request-id", request_id.encode()),
                           (b"server-timing", f"app;dur={elapsed:.2f}".encode())]
                if no_store and not any(name == b"cache-control" for name, _ in headers):  # ASGI names are lower case
                    headers.append(_NO_STORE)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            # The client went away before it had sent its whole request: its doing, not a failure of ours,
            # so no traceback and no 500 (there is nobody left to answer).
            if not response_started:
                status = CLIENT_CLOSED_REQUEST
            access_log.info("the client closed the connection before sending its whole request")
        except Exception:
            if response_started:
                raise
            # Answered here rather than by the outermost handler, so that the 500 carries the request
            # id (header and body) that the log line below and the logged traceback carry too.
            logging.getLogger("guichet.errors").exception("unhandled error")
            await problem_response(Request(scope), 500, slug="internal",
                                   detail="The request failed and changed nothing.")(scope, receive, send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", "(unmatched)")
            seconds = time.perf_counter() - started
            access_log.info("request", extra={
                "method": scope["method"],
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000, 1),
            })
            metrics.observe_request(scope["method"], route, status, seconds)
            request_id_var.reset(token)


class BodyLimitMiddleware:
    """Refuses a request body over `max_bytes` with a problem+json 413: at once when Content-Length
    says so, else as soon as the streamed body passes the limit. (Starlette's own limiter answers
    in plain text, replacing whatever the app sent.)"""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._too_large(scope)(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, self._detail())  # rendered as problem+json by the handlers
            return message

        await self.app(scope, limited_receive, send)

    def _detail(self) -> str:
        return _("The request body is over the limit of {max_bytes} bytes.", max_bytes=self.max_bytes)

    def _too_large(self, scope: Scope):
        return problem_response(Request(scope), 413, slug="payload-too-large", detail=self._detail())


# The front ends' files are the same in every language (the console translates itself): no Vary on them,
# so that caches keep one copy.
_LANGUAGE_FREE = ("/assets/", "/static/")


class LanguageMiddleware:
    """Chooses the answer's language from Accept-Language (app/i18n.py: quality values honoured, the
    instance's default when none of km, en, fr is acceptable), for everything the request renders, and
    says so: `Content-Language` and `Vary: Accept-Language` on the answer."""

    def __init__(self, app: ASGIApp, default: str):
        self.app = app
        self.default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = b", ".join(v for k, v in scope["headers"] if k == b"accept-language")
        language = negotiate(header.decode("latin-1") if header else None, self.default)
        token = language_var.set(language)
        labelled = not scope["path"].startswith(_LANGUAGE_FREE)

        async def send_with_language(message: Message) -> None:
            if labelled and message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                vary = [v for k, v in headers if k == b"vary"]
                headers = [(k, v) for k, v in headers if k != b"vary"]
                values = [item.strip() for v in vary for item in v.decode("latin-1").split(",") if item.strip()]
                if not any(item.lower() == "accept-language" for item in values):
                    values.append("Accept-Language")
                headers.append((b"vary", ", ".join(values).encode("latin-1")))
                if not any(k == b"content-language" for k, _ in headers):  # a route that chose otherwise (?lang=) says so
                    headers.append((b"content-language", language.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_language)
        finally:
            language_var.reset(token)
