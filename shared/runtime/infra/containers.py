"""Kafka (KRaft) and PostgreSQL in containers, for machines with a Docker engine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

KAFKA_IMAGE = "apache/kafka:3.8.0"
POSTGRES_IMAGE = "postgres:18"


@contextmanager
def start_kafka() -> Iterator[str]:
    from testcontainers.kafka import KafkaContainer

    with KafkaContainer(KAFKA_IMAGE).with_kraft() as kafka:
        yield kafka.get_bootstrap_server()


@contextmanager
def start_containers() -> Iterator[tuple[str, str]]:
    """Yield (bootstrap servers, admin database URL); needs the ``docker`` extra."""
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    with (
        KafkaContainer(KAFKA_IMAGE).with_kraft() as kafka,
        PostgresContainer(
            POSTGRES_IMAGE, username="postgres", password="postgres", dbname="postgres", driver=None
        ) as postgres,
    ):
        yield kafka.get_bootstrap_server(), postgres.get_connection_url()
