"""Per-request context that logging, audit and outgoing calls read without threading it through."""

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
