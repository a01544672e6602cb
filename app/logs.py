"""Structured JSON logs, one object per line, each carrying the request id.

Nothing personal goes in: access lines name the route template (not the URL, whose query may hold a
name typed into search), and services log ids and counts, never names or national IDs. Two guards
hold that line against code we do not write:
- a traceback keeps its frames and exception classes but drops the exception messages, because
  drivers and validators put the values they choked on into them (PostgreSQL's "Failing row
  contains (...)", Pydantic's input_value=...);
- the DEBUG records of libraries that log query parameters or result rows (aiosqlite, SQLAlchemy's
  engine) are dropped whatever the level, and the engine is made with hide_parameters (app/db.py)."""

import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from typing import TextIO

from app.context import request_id_var

_EXTRA_FIELDS = ("method", "route", "status", "duration_ms")
# Loggers whose records below INFO carry data: aiosqlite logs each call with its parameters, SQLAlchemy's
# engine logs result rows at DEBUG (its INFO statements are safe: parameters hidden).
_DATA_LOGGERS = ("aiosqlite", "sqlalchemy.engine", "sqlalchemy.orm")


def _exception_type(te: traceback.TracebackException) -> str:
    exc_type = getattr(te, "exc_type_str", None)
    if exc_type is None:
        cls = te.exc_type
        exc_type = f"{cls.__module__}.{cls.__qualname__}" if cls is not None else "Exception"
    return exc_type.removeprefix("builtins.")


def traceback_without_messages(exc_info) -> str:
    """The traceback as Python prints it, each exception named by its class only."""
    te = traceback.TracebackException(*exc_info, capture_locals=False)
    parts: list[str] = []
    seen: set[int] = set()

    def walk(current: traceback.TracebackException) -> None:
        if id(current) in seen:
            return
        seen.add(id(current))
        if current.__cause__ is not None:
            walk(current.__cause__)
            parts.append("\nThe above exception was the direct cause of the following exception:\n\n")
        elif current.__context__ is not None and not current.__suppress_context__:
            walk(current.__context__)
            parts.append("\nDuring handling of the above exception, another exception occurred:\n\n")
        if current.stack:
            parts.append("Traceback (most recent call last):\n")
            parts.extend(current.stack.format())
        parts.append(f"{_exception_type(current)} (message withheld)\n")
        for inner in getattr(current, "exceptions", None) or ():  # an ExceptionGroup's members
            walk(inner)

    walk(te)
    return "".join(parts).rstrip("\n")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": request_id_var.get(),
        }
        for key in _EXTRA_FIELDS:
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info and record.exc_info[0] is not None:
            entry["exc_type"] = record.exc_info[0].__name__
            entry["exc"] = traceback_without_messages(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class DataLoggerFilter(logging.Filter):
    """Drops the records below INFO of the libraries that log data (see _DATA_LOGGERS)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.INFO:
            return True
        return not any(record.name == name or record.name.startswith(name + ".") for name in _DATA_LOGGERS)


def configure_logging(level: str = "INFO", *, stream: TextIO | None = None) -> logging.Handler:
    """JSON lines on stderr (or `stream`) from every logger; returns the handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(DataLoggerFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Our access line replaces uvicorn's, which prints the full URL with its query string.
    logging.getLogger("uvicorn.access").disabled = True
    return handler
