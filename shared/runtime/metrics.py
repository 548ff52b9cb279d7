"""Prometheus metrics of the delivery runtime (served on each service's /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_CONSUMED = Counter(
    "conveyor_events_consumed_total",
    "Records consumed, by outcome (handled, duplicate, ignored, dead_lettered)",
    ["service", "topic", "outcome"],
)
HANDLER_SECONDS = Histogram(
    "conveyor_handler_seconds",
    "Time to apply one batch (the records of one poll, every partition) in one transaction",
    ["service"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
BATCH_SIZE = Histogram(
    "conveyor_batch_size",
    "Records per partition in one poll",
    ["service", "topic"],
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000),
)
RETRIES = Counter("conveyor_retries_total", "Retried attempts", ["service", "kind"])
DEAD_LETTERS = Counter(
    "conveyor_dead_letters_total", "Records sent to the dead-letter topic", ["service", "reason"]
)
OUTBOX_BACKLOG = Gauge("conveyor_outbox_backlog", "Outbox rows not yet published", ["service"])
OUTBOX_PUBLISHED = Counter(
    "conveyor_outbox_published_total", "Outbox rows published", ["service", "topic"]
)
CONSUMER_LAG = Gauge(
    "conveyor_consumer_lag", "High watermark minus next offset", ["service", "topic", "partition"]
)
PART_RESTARTS = Counter(
    "conveyor_part_restarts_total",
    "Times a part of the service (consumer, relay, watch, a background job) failed and was "
    "started again",
    ["part"],
)
BROKER_RECOVERIES = Counter(
    "conveyor_broker_recoveries_total",
    "Times the broker was found to have lost its log and the retained outbox was republished",
)
REPUBLISHED = Counter(
    "conveyor_outbox_republished_total", "Outbox rows marked unsent again after a broker loss"
)
