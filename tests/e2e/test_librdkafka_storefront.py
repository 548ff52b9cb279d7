"""A storefront on librdkafka: orders published with confluent-kafka (the Python binding of
librdkafka, the client most storefront stacks use) travel the whole pipeline to
``completed``; a librdkafka consumer then reads the order's events, by assignment and as a
member of a consumer group.

The storefront is an outsider: its CloudEvents headers are built here from the names in
docs/contracts.md, not with our envelope code, so the test proves the documented contract.
docs/contracts.md ("Which Kafka clients work with the embedded broker") says which
librdkafka versions work with the embedded broker and why the others do not.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition, libversion

from tests.e2e.lifecycle import TERMINAL, ample_seed, orders, start_pipeline
from tests.integration.harness import Stack, eventually

SOURCE = "storefront/librdkafka-test"
# what every order of a full run publishes on order.events, in this order
LIFECYCLE = [
    "order.placed.v1",
    "order.confirmed.v1",
    "order.picking_started.v1",
    "order.packed.v1",
    "order.shipped.v1",
    "order.delivered.v1",
    "order.completed.v1",
]
# the embedded broker makes a joining member wait half its session timeout (see
# docs/contracts.md): 6 s as in our own consumers, so a join takes ~3 s
GROUP_SETTINGS = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}


def submit_headers(reference: str) -> tuple[str, list[tuple[str, str | bytes | None]]]:
    """The CloudEvents binary-mode headers of docs/contracts.md: (ce_id, headers)."""
    ce_id = str(uuid.uuid4())
    return ce_id, [
        ("ce_id", ce_id.encode()),
        ("ce_type", b"order.submit.v1"),
        ("ce_source", SOURCE.encode()),
        ("ce_specversion", b"1.0"),
        ("ce_time", datetime.now(UTC).isoformat().encode()),
        ("ce_subject", reference.encode()),
        ("content-type", b"application/json"),
    ]


def publish_with_librdkafka(bootstrap: str, bodies: list[dict[str, Any]]) -> dict[str, str]:
    """Publish each body to order.commands keyed by its reference, acks=all, and wait for
    every delivery report: {reference: ce_id}. Blocking, as librdkafka's API is."""
    failed: list[KafkaError] = []
    delivered: list[tuple[str, int | None]] = []
    # what librdkafka reports besides deliveries (some transient), shown if a send fails
    client_errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            failed.append(err)
        else:
            delivered.append((key_of(msg), msg.offset()))

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            # aiokafka's InitProducerId is refused by the embedded broker; keep the
            # storefront on the same footing as our own producers
            "enable.idempotence": False,
            "error_cb": client_errors.append,
        }
    )
    ce_ids = {}
    for body in bodies:
        reference = body["storefront_reference"]
        ce_ids[reference], headers = submit_headers(reference)
        producer.produce(
            "order.commands",
            key=reference.encode(),
            value=json.dumps(body).encode(),
            headers=headers,
            on_delivery=on_delivery,
        )
    unflushed = producer.flush(30)
    what = f"librdkafka {libversion()[0]}: {failed or client_errors}"
    assert unflushed == 0 and not failed, what
    assert sorted(r for r, _ in delivered) == sorted(ce_ids), (delivered, what)
    return ce_ids


def read_by_assignment(
    bootstrap: str, topic: str, keys: set[str], last_type: str, timeout_s: float = 20.0
) -> dict[str, list[Message]]:
    """Every partition of ``topic`` assigned from the beginning, read until each key has
    a record of ``last_type``: {key: its records in order}."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "storefront-reader",
         "enable.auto.commit": False}
    )  # fmt: skip
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in sorted(partitions)])
        return _read_until(consumer, keys, last_type, timeout_s, f"{topic} by assignment")
    finally:
        consumer.close()


def read_as_group_member(
    bootstrap: str, topic: str, keys: set[str], last_type: str, timeout_s: float = 15.0
) -> tuple[float, dict[str, list[Message]]]:
    """Join a new consumer group on ``topic`` and read it from the earliest offset:
    (seconds until the group assigned partitions, {key: records})."""
    started = time.monotonic()
    assigned_after: list[float] = []
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"storefront-group-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **GROUP_SETTINGS,
        }
    )
    try:
        consumer.subscribe(
            [topic], on_assign=lambda _c, _p: assigned_after.append(time.monotonic() - started)
        )
        records = _read_until(consumer, keys, last_type, timeout_s, f"{topic} as a group member")
        assert assigned_after, "records arrived without an assignment"
        return assigned_after[0], records
    finally:
        consumer.close()


def _read_until(
    consumer: Consumer, keys: set[str], last_type: str, timeout_s: float, what: str
) -> dict[str, list[Message]]:
    records: dict[str, list[Message]] = defaultdict(list)
    done: set[str] = set()
    deadline = time.monotonic() + timeout_s
    while done != keys:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s reading {what}: {sorted(done)}")
        msg = consumer.poll(0.2)
        if msg is None:
            continue
        assert msg.error() is None, msg.error()
        key = key_of(msg)
        if key in keys:
            records[key].append(msg)
            if header(msg, "ce_type") == last_type:
                done.add(key)
    return records


def key_of(msg: Message) -> str:
    key = msg.key()
    assert key is not None, msg
    return key.decode()


def header(msg: Message, name: str) -> str | None:
    """A header's value; librdkafka hands consumed headers over as a list of pairs."""
    headers = msg.headers() or []
    assert isinstance(headers, list), headers
    for key, value in headers:
        if key == name:
            return value.decode() if isinstance(value, bytes) else value
    return None


async def test_orders_from_a_librdkafka_storefront_are_completed(
    stack: Stack, tmp_path: Path
) -> None:
    await start_pipeline(stack, ample_seed(tmp_path, 100))  # creates every topic first
    bodies = orders(3, "librdkafka")
    ce_ids = await asyncio.to_thread(publish_with_librdkafka, stack.bootstrap, bodies)

    async def status() -> dict[str, tuple[str, str]]:
        rows = await stack.query(
            "SELECT storefront_reference, order_id, status FROM order_service.orders"
            " WHERE storefront_reference = ANY($1::text[])",
            list(ce_ids),
        )
        return {r["storefront_reference"]: (r["order_id"], r["status"]) for r in rows}

    async def all_placed() -> bool:
        return len(await status()) == len(ce_ids)

    async def all_completed() -> dict[str, str] | None:
        found = await status()
        failed = {
            ref: state for ref, (_, state) in found.items() if state in TERMINAL - {"completed"}
        }
        assert not failed, f"orders ended without completing: {failed}"
        done = all(state == "completed" for _, state in found.values())
        return {ref: order_id for ref, (order_id, _) in found.items()} if done else None

    # a record the order service cannot read is dead-lettered, and no order appears
    await eventually(all_placed, timeout_s=30, what="every submission placed")
    order_ids = await eventually(all_completed, timeout_s=120, what="every order completed")
    assert order_ids is not None

    # a librdkafka reader with assigned partitions sees each order's whole lifecycle, in
    # order, and the submission it was placed from (our consumers deduplicate on ce_id)
    keys = set(order_ids.values())
    events = await asyncio.to_thread(
        read_by_assignment, stack.bootstrap, "order.events", keys, LIFECYCLE[-1]
    )
    for reference, order_id in order_ids.items():
        types = [header(m, "ce_type") for m in events[order_id]]
        assert types == LIFECYCLE, (reference, types)
        placed = events[order_id][0]
        for required in ("ce_id", "ce_source", "ce_time"):
            assert header(placed, required), (required, placed.headers())
        assert header(placed, "ce_specversion") == "1.0"
        assert header(placed, "ce_subject") == order_id
        assert header(placed, "causation_id") == ce_ids[reference]
        assert json.loads(placed.value() or b"null")["order_id"] == order_id

    # and a librdkafka consumer group gets its partitions within the bound
    assigned_after, as_member = await asyncio.to_thread(
        read_as_group_member, stack.bootstrap, "order.events", keys, LIFECYCLE[-1]
    )
    assert {k: [header(m, "ce_type") for m in v] for k, v in as_member.items()} == {
        k: LIFECYCLE for k in keys
    }
    assert assigned_after < 10, assigned_after
