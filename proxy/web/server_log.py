"""aiohttp's server log, kept to one line per malformed request.

aiohttp logs every unparsable request with a traceback at ERROR; any local client could flood the log
that way. What is the client's fault becomes one WARNING line naming the problem, no traceback.
"""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError


class QuietParserErrors(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError | ConnectionResetError):
            record.msg, record.args = "refused a malformed request: %s", (type(exc).__name__,)
            record.exc_info, record.exc_text, record.levelno, record.levelname = None, None, 30, "WARNING"
        return True


def quiet_parser_errors() -> None:
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, QuietParserErrors) for f in server_log.filters):
        server_log.addFilter(QuietParserErrors())
