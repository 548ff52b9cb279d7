"""Settings from the environment (pydantic-settings). Defaults are for local development."""

from __future__ import annotations

import socket

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONVEYOR_", extra="ignore")

    environment: str = "development"
    service: str = "unnamed"
    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        validation_alias=AliasChoices(
            "KAFKA_BOOTSTRAP_SERVERS", "CONVEYOR_KAFKA_BOOTSTRAP_SERVERS"
        ),
    )
    database_url: str = Field(
        "postgresql://postgres@127.0.0.1:5432/conveyor",
        validation_alias=AliasChoices("DATABASE_URL", "CONVEYOR_DATABASE_URL"),
    )
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    log_level: str = "INFO"

    # consumer: low-latency defaults (ARCHITECTURE.md §2: the embedded broker answers
    # fetch long-polls late, and rebalances wait half the session timeout)
    instance_id: str = Field(default_factory=socket.gethostname)
    # another group reads the topics from offset 0 again: how a projection is rebuilt
    # beside the live one (with its own DATABASE_URL)
    consumer_group: str | None = None
    fetch_max_wait_ms: int = 20
    session_timeout_ms: int = 6000
    heartbeat_interval_ms: int = 1000
    max_poll_records: int = 500
    # a record whose value is larger is dead-lettered (too_large) before it is parsed;
    # order submissions are a few KB, the largest contract well under 100 KB
    max_record_bytes: int = Field(1024 * 1024, ge=1024)
    # an HTTP request body that is larger is answered 413 before it is read whole
    max_body_bytes: int = Field(1024 * 1024, ge=1)
    max_attempts: int = 5
    retry_initial_s: float = 0.1
    retry_max_s: float = 5.0

    # Partitions of every registry topic created at start-up, instead of the registry's
    # own counts (unset: the registry's). Partitions are how a service scales out to more
    # instances; one instance per service needs one. `conveyor up` sets 1 for its embedded
    # broker, where every partition costs CPU on every fetch (a 2-core machine idled at
    # 0.35 cores of broker with 6 partitions per topic, 0.17 with 1).
    topic_partitions: int | None = Field(None, ge=1)

    # producer / outbox relay
    enable_idempotence: bool = False  # Tansu rejects InitProducerId; enable on real Kafka
    linger_ms: int = 2
    relay_batch_size: int = 1000
    relay_poll_interval_s: float = 1.0
    relay_publish_timeout_s: float = 15.0  # one publish round; then a fresh producer
    outbox_retention_hours: float = 24 * 7

    # broker watch: how often the cluster id is compared with the one recorded in the
    # database (a memory-only broker that restarted comes back empty, with a new id)
    broker_check_interval_s: float = 1.0
    # on a stop, how long the consumers of storefront topics may keep reading up to the
    # high-water mark, and the relay publishing what is unsent, before the process exits
    drain_timeout_s: float = 10.0

    db_pool_min: int = 1
    db_pool_max: int = 5

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.environment == "production" and "127.0.0.1" in self.kafka_bootstrap_servers:
            raise ValueError("production needs KAFKA_BOOTSTRAP_SERVERS pointing at a real cluster")
        return self

    @property
    def group_instance_id(self) -> str:
        """Static membership id: stable across restarts of the same instance."""
        return f"{self.group_id}-{self.instance_id}"

    @property
    def group_id(self) -> str:
        return self.consumer_group or self.service
