"""``python -m services.risk``: create the topics, rebuild the windows, run the faust worker.

SIGTERM/SIGINT stop it cleanly (faust commits its offsets and flushes its producer);
exit code 0 after a requested stop, 1 when any part crashed.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import faust
import structlog

from services.risk.app import Health, HttpService, RiskSettings, create_app, rebuild_state
from services.risk.domain import RiskState
from shared.runtime.logging import configure_logging, get_logger
from shared.runtime.topics import ensure_topics

log = get_logger("services.risk")


def _json_stdlib_logs(level: str) -> None:
    """faust, mode and aiokafka log through ``logging``: render those as JSON lines too."""
    formatter = structlog.stdlib.ProcessorFormatter(
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.JSONRenderer(),
        ],
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
        ],
    )
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)
    if level.upper() != "DEBUG":  # faust and mode are chatty at INFO (offset tables…)
        for noisy in ("faust", "mode"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def main() -> int:
    settings = RiskSettings()
    configure_logging(settings.service, settings.log_level)
    _json_stdlib_logs(settings.log_level)
    state = RiskState(settings.thresholds())
    health = Health()

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    async def prepare() -> None:
        await ensure_topics(settings.kafka_bootstrap_servers, settings.topic_partitions)
        await rebuild_state(settings, state)

    preparing = loop.create_task(prepare())
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, preparing.cancel)
    try:
        loop.run_until_complete(preparing)
    except asyncio.CancelledError:
        log.info("risk.stopped", during="start-up")
        loop.close()
        return 0
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    health.rebuilt = True

    app = create_app(settings, state, health)
    http = HttpService(settings, health.checks, loop=loop)
    # the worker installs its own SIGTERM/SIGINT handlers; override_logging=False keeps our
    # structlog setup (and stops faust from redirecting stdout into its logger)
    worker = faust.Worker(app, http, loop=loop, quiet=True, override_logging=False)
    worker.spinner = None  # a terminal spinner: escape codes in the logs otherwise
    log.info(
        "risk.starting",
        group=app.conf.id,
        instance=settings.group_instance_id,
        datadir=str(app.conf.datadir),
    )
    code = 0
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    crashed = worker.crash_reason or app.crash_reason or http.failed
    if crashed:
        log.error("risk.crashed", reason=repr(crashed))
        code = code or 1
    log.info("risk.stopped", exit_code=code)
    return code


if __name__ == "__main__":
    sys.exit(main())
