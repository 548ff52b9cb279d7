"""structlog JSON logging; service, event, correlation and order ids bound per message."""

from __future__ import annotations

import logging
import sys

import structlog


class OutageWithoutTraceback(logging.Filter):
    """asyncpg's pool warns, with a traceback, each time it fails to reopen a connection
    while the database is away: an outage the service rides out, so one line will do."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.getMessage()}: {record.exc_info[1]!r}"
            record.args = None
            record.exc_info = None
        return True


def configure_logging(service: str, level: str = "INFO") -> None:
    logging.basicConfig(format="%(message)s", stream=sys.stdout, level=level.upper())
    for noisy in ("aiokafka", "uvicorn.access", "yoyo"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("asyncpg.pool").addFilter(OutageWithoutTraceback())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)
