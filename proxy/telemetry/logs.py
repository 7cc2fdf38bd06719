"""One logging set-up for the daemon: human text (default) or JSON lines (`log_format: json`).

Access lines carry structured fields (request id, client, account, method, status, EXMO error code,
latency) in `record.fields`; the text format prints them as key=value, the JSON format as keys.
Nothing that holds a secret is ever a field: the handlers only pass names, codes and numbers.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

FORMATS = ("text", "json")


ACCESS = "proxy.access"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)

    def access_lines(self, created: float, lines: list[tuple[str, dict[str, Any]]]) -> str:
        """What `format` makes of INFO records of proxy.access made at `created`, a line each."""
        record = logging.LogRecord(ACCESS, logging.INFO, "", 0, "", None, None)
        record.created, record.msecs = created, (created - int(created)) * 1000
        out = []
        for message, fields in lines:
            record.msg, record.fields = message, fields
            out.append(self.format(record) + "\n")
        return "".join(out)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """The stock format (`2026-11-24 06:09:22,741`), with the date part made once per second."""
        whole = int(record.created)
        if self._second[0] != whole:
            self._second = (whole, time.strftime("%Y-%m-%d %H:%M:%S", self.converter(whole)))
        return f"{self._second[1]},{int(record.msecs):03d}"

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, "fields", None)
        return text + _pairs(fields) if fields else text

    def access_lines(self, created: float, lines: list[tuple[str, dict[str, Any]]]) -> str:
        """What `format` makes of INFO records of proxy.access made at `created`, without building
        them: the time and level part is the same for all the lines of a batch."""
        start = f"{self.formatTime(_Stamp(created))} INFO {ACCESS}: "  # type: ignore[arg-type]
        return "".join([start + message + _pairs(fields) + "\n" for message, fields in lines])


def _pairs(fields: dict[str, Any]) -> str:
    return "".join([f" {k}={v}" for k, v in fields.items()])


class _Stamp:
    """The two record attributes formatTime reads."""

    __slots__ = ("created", "msecs")

    def __init__(self, created: float) -> None:
        self.created, self.msecs = created, (created - int(created)) * 1000


_handler: logging.StreamHandler[Any] | None = None
_access_logger = logging.getLogger(ACCESS)


def access(lines: list[tuple[str, dict[str, Any]]]) -> None:
    """Access lines (message, fields) at INFO on proxy.access. With the daemon's own handler in place
    (configure), they are formatted and written directly, all in one write: the same text as through
    `logging`, at a fraction of its cost per request. Any other set-up (tests, embedding) goes through
    `logging` as usual."""
    logger = _access_logger
    if not logger.isEnabledFor(logging.INFO):
        return
    handler = _handler
    formatter = handler.formatter if handler is not None else None
    if (handler is None or logger.handlers or logging.getLogger().handlers != [handler]
            or not isinstance(formatter, TextFormatter | JsonFormatter)):
        _through_logging(lines)
        return
    text = formatter.access_lines(time.time(), lines)
    try:
        with handler.lock:  # type: ignore[union-attr]  # set by Handler.createLock
            handler.stream.write(text)
            handler.stream.flush()
    except Exception:  # a full disk must not fail the request: logging's own error handling decides
        _through_logging(lines)


def _through_logging(lines: list[tuple[str, dict[str, Any]]]) -> None:
    for message, fields in lines:
        _access_logger.info("%s", message, extra={"fields": fields})


def configure(level: str = "info", fmt: str = "text") -> None:
    # Neither format prints the caller's file, thread or process: skip collecting them for every
    # record (the logging HOWTO's "Optimization" section; one access line per request adds up).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    global _handler
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    _handler = handler
    root.setLevel(level.upper())
