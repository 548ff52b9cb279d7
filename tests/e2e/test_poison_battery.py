"""Hostile records on every consumed topic while valid orders flow through the whole
pipeline: each is dead-lettered by every service that must refuse it, with its reason
(or, at the storefront intake, rejected with a reason); no service dies or stalls, and
every valid order is completed.

The topics come from the registry (every topic a running service subscribes to), and
which services must refuse a record from the services' own handler tables: a record
whose envelope is bad, or whose type or version nobody knows, is poison for every
consumer of its topic; a record of a known type with bad data is poison for the
services handling that type, while the others ignore it unparsed (by design: see
``shared.runtime.consumer.decode``).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from services.order.domain import order_id_for
from services.order.domain.submission import Rejected, validate_submission
from services.risk import handlers as risk_handlers
from services.risk.domain import RiskState
from shared.runtime.settings import Settings
from shared.runtime.storefront import publish_orders
from shared.schemas import TOPICS, Envelope, dlq_topic, model_for, subscriptions, to_headers
from shared.schemas.events.order import SubmitOrder
from shared.schemas.topics import CONSUMING_SERVICES
from tests.e2e.lifecycle import SERVICES, TERMINAL, ample_seed, orders, start_pipeline
from tests.integration.harness import Stack, data, eventually, header

RUN = "battery"
VALID_ORDERS = 40
KEY_PREFIX = b"hostile:"
MAX_RECORD_BYTES = Settings.model_fields["max_record_bytes"].default  # what services run with

Headers = list[tuple[str, bytes | None]]  # a header value may be null


def registry_name(process: str) -> str:
    """``fulfillment.picking`` runs as the registry's ``picking``."""
    return process.rsplit(".", 1)[-1]


RUNNING = {registry_name(p): p for p in SERVICES}


@cache
def handled_types(service: str) -> frozenset[str]:
    """The types ``service`` handles (and so parses): its definition's handler table."""
    if service == "risk":  # a faust worker, not a ServiceDefinition
        return risk_handlers.HANDLED
    app = importlib.import_module(f"services.{RUNNING[service]}.app")
    return frozenset(app.definition().handlers)


def consumers(topic: str) -> list[str]:
    """The running services that read ``topic``."""
    return sorted(s for s in RUNNING if topic in subscriptions(s))


def consumed_topics() -> list[str]:
    return sorted({t for s in RUNNING for t in subscriptions(s)})


def target_type(topic: str) -> str:
    """The topic's type handled by the most running services: bad data of this type is
    refused by the most readers."""
    messages = TOPICS[topic].messages
    return max(messages, key=lambda t: sum(t in handled_types(s) for s in consumers(topic)))


@dataclass(frozen=True)
class Hostile:
    topic: str
    kind: str
    value: bytes | None
    headers: Headers
    expect: dict[str, str]  # service -> the dlq_reason it must give (others ignore it)

    @property
    def key(self) -> bytes:
        return KEY_PREFIX + f"{self.topic}:{self.kind}".encode()


def envelope_headers(type_: str, **replaced: bytes | None) -> Headers:
    """A valid envelope's headers for ``type_``; ``replaced`` swaps (None: drops) some."""
    headers = dict(to_headers(Envelope(type=type_, source="test/hostile", data=b"")))
    for name, value in replaced.items():
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return list(headers.items())


def every_field(type_: str, value: Any) -> bytes:
    return json.dumps({name: value for name in model_for(type_).model_fields}).encode()


# kind -> (value, headers, reason) given the topic's target type; refused by every reader
ENVELOPE_POISON: dict[str, Callable[[str], tuple[bytes | None, Headers, str]]] = {
    "binary_without_headers": lambda t: (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", [], "missing_header"),
    "json_without_headers": lambda t: (every_field(t, "x"), [], "missing_header"),
    "no_ce_type": lambda t: (b"{}", envelope_headers(t, ce_type=None), "missing_header"),
    "no_ce_id": lambda t: (b"{}", envelope_headers(t, ce_id=None), "missing_header"),
    "empty_ce_time": lambda t: (b"{}", envelope_headers(t, ce_time=b""), "missing_header"),
    "none_value": lambda t: (None, envelope_headers(t), "bad_envelope"),
    "bad_utf8_ce_type": lambda t: (
        b"{}",
        envelope_headers(t, ce_type=t.encode()[:3] + b"\xff\xfe"),
        "bad_envelope",
    ),
    "bad_utf8_optional_header": lambda t: (
        b"{}",
        [*envelope_headers(t), ("traceparent", b"00-\xc3\x28-\xa0\xa1")],
        "bad_envelope",
    ),
    "nul_in_header_value": lambda t: (
        b"{}",
        envelope_headers(t, ce_source=b"evil\x00source"),
        "bad_envelope",
    ),
    "bad_specversion": lambda t: (
        b"{}",
        envelope_headers(t, ce_specversion=b"0.3"),
        "bad_envelope",
    ),
    "bad_ce_time": lambda t: (b"{}", envelope_headers(t, ce_time=b"yesterday"), "bad_envelope"),
    "xml_content_type": lambda t: (
        b"<order/>",
        envelope_headers(t, **{"content-type": b"application/xml"}),
        "bad_envelope",
    ),
    "unknown_type": lambda t: (
        b"{}",
        envelope_headers(t, ce_type=t.split(".")[0].encode() + b".teleported.v1"),
        "unknown_type",
    ),
    "unknown_version": lambda t: (
        every_field(t, "x"),
        envelope_headers(t, ce_type=t.rsplit(".", 1)[0].encode() + b".v99"),
        "unknown_type",
    ),
    "malformed_type": lambda t: (
        b"{}",
        envelope_headers(t, ce_type=b"DROP TABLE orders;--"),
        "unknown_type",
    ),
    # larger than max_record_bytes: refused before anything is parsed
    "oversized_value": lambda t: (
        b'{"pad": "' + b"x" * MAX_RECORD_BYTES + b'"}',
        envelope_headers(t),
        "too_large",
    ),
    # PostgreSQL text cannot hold NUL: the dead letter's header names are stored as text
    "nul_in_header_name": lambda t: (b"{}", [("x-evil\x00name", b"1")], "missing_header"),
}

# refused by the services that handle the type; the others don't parse it
DATA_POISON: dict[str, Callable[[str], bytes]] = {
    "not_json": lambda t: b"this is { not json",
    "random_bytes": lambda t: random.Random(t).randbytes(4096),
    "bad_utf8_value": lambda t: b'{"order_id": "\xff\xfe\xfd"}',
    "truncated_json": lambda t: every_field(t, "x")[:-5],
    "empty_value": lambda t: b"",
    "json_null": lambda t: b"null",
    "not_an_object": lambda t: b"[1, 2, 3]",
    "deep_array": lambda t: b"[" * 10_000 + b"]" * 10_000,
    "deep_object": lambda t: b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    "missing_fields": lambda t: b"{}",
    "wrong_types": lambda t: every_field(t, [[{}]]),
    "huge_number": lambda t: every_field(t, 10**400),
    "integer_past_4300_digits": lambda t: b'{"order_id": ' + b"9" * 5000 + b"}",
    "nul_in_text": lambda t: every_field(t, "a\x00b"),
    # not JSON, exactly as large as allowed: parsed, refused, and its copy must fit the DLQ
    "at_the_size_limit": lambda t: b"x" * MAX_RECORD_BYTES,
}
# (kind, extra header): bad data again, with headers the envelope ignores
DATA_POISON_HEADERS: dict[str, tuple[str, bytes | None]] = {
    "null_header_value": ("x-null", None),
    # the value is small, the headers are not: the dead letter's copy must still fit
    "oversized_header": ("x-padding", b"p" * (MAX_RECORD_BYTES + 1)),
}


def battery(topic: str) -> list[Hostile]:
    records = []
    for kind in [*ENVELOPE_POISON, *DATA_POISON, *DATA_POISON_HEADERS]:
        type_ = target_type(topic)
        readers = consumers(topic)
        if kind in ENVELOPE_POISON:
            value, headers, reason = ENVELOPE_POISON[kind](type_)
            expect = dict.fromkeys(readers, reason)
        else:
            if kind in DATA_POISON:
                value, headers = DATA_POISON[kind](type_), envelope_headers(type_)
            else:
                value, headers = b"{}", [*envelope_headers(type_), DATA_POISON_HEADERS[kind]]
            refusers = [s for s in readers if type_ in handled_types(s)]
            expect = dict.fromkeys(refusers, "invalid_data")
        records.append(Hostile(topic, kind, value, headers, expect))
    return records


def intake_poison(valid: dict[str, Any]) -> list[Hostile]:
    """Storefront submissions (order.submit.v1) whose money is not integer minor units."""
    submit = "order.submit.v1"

    def changed(**fields: Any) -> bytes:
        return json.dumps({**valid, "storefront_reference": "money", **fields}).encode()

    line = valid["lines"][0]
    return [
        Hostile(
            "order.commands",
            kind,
            value,
            envelope_headers(submit),
            {"order": "invalid_data"},
        )
        for kind, value in {
            "fractional_total": changed(total_minor=valid["total_minor"] + 0.5),
            "decimal_string_price": changed(lines=[{**line, "unit_price_minor": "12.50"}]),
            "float_quantity": changed(lines=[{**line, "quantity": 1.5}]),
            "money_beyond_int64": changed(total_minor=2**63),
        }.items()
    ]


async def publish_raw(stack: Stack, records: list[Hostile]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=stack.bootstrap, acks="all", max_request_size=4 * MAX_RECORD_BYTES
    )
    await producer.start()
    try:
        pending = [
            await producer.send(h.topic, value=h.value, key=h.key, headers=h.headers)
            for h in records
        ]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def submit(stack: Stack, body: dict[str, Any]) -> None:
    """One storefront submission, sent as a storefront would (keyed by its reference)."""
    raw = json.dumps(body).encode()
    headers = to_headers(Envelope(type="order.submit.v1", source="storefront/test", data=raw))
    await stack.publish("order.commands", [(body["storefront_reference"].encode(), raw, headers)])


FAUST_PRODUCER_LIMIT = 1_000_000  # faust's producer_max_request_size default


def test_risk_dead_letters_an_oversized_record_in_a_size_it_can_send() -> None:
    value = b'{"pad": "' + b"x" * MAX_RECORD_BYTES + b'"}'
    record = risk_handlers.Record.of(
        topic="order.events",
        partition=0,
        offset=0,
        key=b"k",
        value=value,
        headers=envelope_headers("order.placed.v1"),
    )
    out = risk_handlers.handle(RiskState(), record, datetime.now(UTC))
    assert out is not None and out.outcome == "dead_lettered"
    size = DefaultRecordBatchBuilder.estimate_size_in_bytes(out.key, out.value, out.headers)
    assert size <= FAUST_PRODUCER_LIMIT


def test_a_subtotal_past_int64_is_rejected_with_a_reason() -> None:
    body = {
        **orders(1, f"{RUN}-overflow")[0],
        "lines": [
            {"sku": "MUG-BLUE", "quantity": 1, "unit_price_minor": 2**62},
            {"sku": "TEE-M", "quantity": 1, "unit_price_minor": 2**62},
        ],
        "shipping_minor": 0,
        "discount_minor": 10,
        "total_minor": 2**63 - 10,
    }
    decision = validate_submission(SubmitOrder.model_validate(body))
    assert isinstance(decision, Rejected)
    assert [(r.code, r.field) for r in decision.reasons] == [("amount_out_of_range", "lines")]


def test_every_running_consumer_is_covered() -> None:
    """A consuming service the pipeline does not run yet is named here, not skipped
    silently; a new one in the pipeline joins the battery by itself."""
    assert set(RUNNING) <= set(CONSUMING_SERVICES)
    assert set(CONSUMING_SERVICES) - set(RUNNING) == {"notification", "returns"}
    assert {t for t in TOPICS if consumers(t)} == set(consumed_topics())


async def test_hostile_records_on_every_topic_while_orders_flow(
    stack: Stack, tmp_path: Path
) -> None:
    started = time.monotonic()
    pipeline = await start_pipeline(stack, ample_seed(tmp_path, 500))
    bodies = orders(VALID_ORDERS, RUN)
    flowing = asyncio.create_task(publish_orders(stack.bootstrap, bodies, rate=10))

    hostile = [h for topic in consumed_topics() for h in battery(topic)]
    hostile += intake_poison(bodies[0])
    for topic in consumed_topics():  # topic by topic, while the orders go in
        await publish_raw(stack, [h for h in hostile if h.topic == topic])
    await flowing

    # business refusals at the intake: an order.rejected.v1 with a reason, no dead letter
    negative = {
        **orders(1, f"{RUN}-negative", seed=7)[0],
        "lines": [{"sku": "MUG-BLUE", "quantity": -2, "unit_price_minor": 1250}],
    }
    negative["total_minor"] = negative["shipping_minor"] - 2500
    await submit(stack, negative)
    original = bodies[1]  # placed by now: its record was acknowledged before this one
    conflicting = {**original, "lines": [{**original["lines"][0], "quantity": 9}]}
    await submit(stack, conflicting)

    expected = {(service, h.key): reason for h in hostile for service, reason in h.expect.items()}
    dlqs = [dlq_topic(s) for s in sorted(RUNNING)]

    async def dead_letters() -> dict[tuple[str, bytes], list[str]]:
        found: dict[tuple[str, bytes], list[str]] = {}
        for topic in dlqs:
            for r in await stack.read_topic(topic):
                found.setdefault((header(r, "dlq_service") or "?", r.key or b""), []).append(
                    f"{header(r, 'dlq_reason')}|{header(r, 'dlq_detail')}"
                )
        return found

    async def all_dead_lettered() -> dict[tuple[str, bytes], list[str]] | None:
        found = await dead_letters()
        return found if set(expected) <= set(found) else None

    try:
        found = await eventually(all_dead_lettered, timeout_s=60, what="every dead letter")
    except AssertionError:
        found = await dead_letters()
        missing = Counter(key.split(b":")[1].decode() for _, key in set(expected) - set(found))
        raise AssertionError(
            f"dead letters missing per topic: {dict(missing)}; e.g. "
            f"{sorted(set(expected) - set(found))[:10]}"
        ) from None

    reasons = {k: v[0].split("|", 1)[0] for k, v in found.items()}
    unexpected = {k: v for k, v in found.items() if k not in expected}
    assert not unexpected, f"dead-lettered but should not be: {unexpected}"
    assert {k: reasons[k] for k in expected} == expected
    assert all(len(v) == 1 for v in found.values()), "each dead-lettered once"
    assert all(v[0].split("|", 1)[1] for v in found.values()), "each with its detail"
    per_topic = Counter(key.split(b":")[1].decode() for _, key in found)
    assert per_topic == Counter(key.split(b":")[1].decode() for _, key in expected)

    # every valid order (and the negative one) ends, and the conflict changed nothing
    ids = [order_id_for(b["storefront_id"], b["storefront_reference"]) for b in bodies]

    async def all_final() -> dict[str, str] | None:
        rows = await stack.query(
            "SELECT order_id, status FROM order_service.orders WHERE order_id = ANY($1)", ids
        )
        status = {r["order_id"]: r["status"] for r in rows}
        return status if len(status) == len(ids) and set(status.values()) <= TERMINAL else None

    final = await eventually(all_final, timeout_s=90, what="every valid order in a final state")
    assert Counter(final.values()) == {"completed": VALID_ORDERS}

    rejected = {
        data(r)["storefront_reference"]: data(r)
        for r in await stack.read_topic("order.events")
        if not (r.key or b"").startswith(KEY_PREFIX) and header(r, "ce_type") == "order.rejected.v1"
    }
    assert {r["code"] for r in rejected[negative["storefront_reference"]]["reasons"]} == {
        "quantity_not_positive"
    }
    conflict = rejected[original["storefront_reference"]]
    assert [r["code"] for r in conflict["reasons"]] == ["reference_conflict"]
    assert conflict["order_id"] == ids[1]

    # nobody died, nobody is unready, nothing was retried: every hostile record was
    # refused before a handler ran, and no dead letter failed to go out
    async with httpx.AsyncClient() as http:
        for name, process in pipeline.items():
            assert process.proc is not None and process.proc.poll() is None, (
                f"{name} exited:\n{process.log()}"
            )
            ready = await http.get(f"{process.url}/health/ready")
            assert ready.status_code == 200, f"{name} not ready: {ready.text}"
            assert await process.metric("conveyor_retries_total", kind="handler") == 0, name
            log = process.log_path.read_text(errors="replace")
            for trouble in ("part_failed", "publish_retry", "publish_failed", "handler_failed"):
                assert trouble not in log, f"{name}: {trouble}"
    print(
        f"{len(hostile)} hostile records on {len(consumed_topics())} topics, "
        f"{len(expected)} dead letters, {time.monotonic() - started:.1f}s"
    )
