"""Structured JSON logs for every service, each line carrying the ``request_id`` and ``track_id`` in hand.

A log line is one JSON object: ``time``, ``level``, ``service``, ``logger``, ``message``, plus ``request_id``
(a voice note's ``tg:<chat_id>:<message_id>``, or an HTTP request's ``X-Request-ID``) and ``track_id`` (a
playback track's sha256) whenever the code that logs is working on one. The ids live in context variables:
``bind_ids`` sets them for the current task (every AMQP delivery and every HTTP request runs in a task of its
own), so a line logged deep inside a handler still says which job it was about, in every service the job
passes through. ``EARSHOT_LOG_FORMAT=text`` gives plain lines for a person at a terminal.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from services.common.settings import EarshotSettings

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
TRACK_ID: ContextVar[str | None] = ContextVar("track_id", default=None)

# The two kinds of idempotency key, wherever they appear in a message id ("reply:tg:1:2", "failed:<sha256>").
_REQUEST_ID_PATTERN = re.compile(r"tg:-?\d+:\d+")
_TRACK_ID_PATTERN = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class LogSettings(EarshotSettings):
    """``EARSHOT_LOG_FORMAT``: ``json`` (default, for log collectors) or ``text`` (for a terminal)."""

    log_format: Literal["json", "text"] = "json"


def bind_ids(*, request_id: str | None = None, track_id: str | None = None) -> None:
    """Attach ids to every later log line of the current task (None leaves an id as it is)."""
    if request_id is not None:
        REQUEST_ID.set(request_id)
    if track_id is not None:
        TRACK_ID.set(track_id)


def bind_ids_from_key(key: str | None) -> None:
    """Bind whichever ids a message id or job key holds: a ``tg:…`` request id, a sha256 track id."""
    if not key:
        return
    request = _REQUEST_ID_PATTERN.search(key)
    track = _TRACK_ID_PATTERN.search(key)
    bind_ids(request_id=request.group(0) if request else None, track_id=track.group(0) if track else None)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; the ids appear only when bound, so a line never claims a job it lacks."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, variable in (("request_id", REQUEST_ID), ("track_id", TRACK_ID)):
            if (value := variable.get()) is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def program_service_name() -> str:
    """``classifier`` for ``python -m services.classifier …``: the package whose ``__main__`` is running."""
    program = Path(sys.argv[0] or "python")
    return program.parent.name if program.name == "__main__.py" else program.stem


def configure_logging(service: str | None = None, level: int = logging.INFO) -> None:
    """Send every logger's records to stderr as JSON (or text with ``EARSHOT_LOG_FORMAT=text``)."""
    handler = logging.StreamHandler(sys.stderr)
    if LogSettings().log_format == "text":
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    else:
        handler.setFormatter(JsonFormatter(service or program_service_name()))
    logging.basicConfig(level=level, handlers=[handler], force=True)
