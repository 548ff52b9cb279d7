"""Type registry: parse (decode, upcast, validate), poison reasons, upcaster chains."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from shared.schemas import registry
from shared.schemas.envelope import Envelope
from shared.schemas.events.order import CancelOrder
from shared.schemas.events.payment import RefundPayment
from shared.schemas.registry import (
    InvalidEventData,
    Message,
    UnknownEventType,
    all_models,
    command,
    event,
    parse,
    upcaster,
)

CANCEL = {"order_id": "o-1", "requested_by": "customer", "actor_id": "c-1", "reason": "late"}
REFUND = {
    "order_id": "o-1",
    "refund_id": "r-1",
    "amount": {"amount_minor": 1250, "currency": "EUR"},
    "reason": "damaged",
    "requested_by": "returns",
}


def envelope(type_: str, data: bytes | dict[str, Any]) -> Envelope:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return Envelope(type=type_, source="test", data=raw)


def test_parse_returns_the_registered_model() -> None:
    message = parse(envelope("order.cancel.v1", CANCEL))
    assert message == CancelOrder(**CANCEL)
    assert message.subject == "o-1"


def test_to_json_parses_back() -> None:
    message = RefundPayment.model_validate(REFUND)
    assert parse(envelope(message.TYPE, message.to_json())) == message


def test_unknown_fields_are_ignored() -> None:
    assert parse(envelope("order.cancel.v1", {**CANCEL, "added_later": 1})) == CancelOrder(**CANCEL)


@pytest.mark.parametrize(
    ("type_", "data", "poison", "reason", "mentions"),
    [
        ("order.unheard_of.v1", CANCEL, UnknownEventType, "unknown_type", "order.unheard_of.v1"),
        ("order.cancel.v9", CANCEL, UnknownEventType, "unknown_type", "order.cancel.v9"),
        ("order.cancel.v1", b"{not json", InvalidEventData, "invalid_data", "not JSON"),
        ("order.cancel.v1", b"\xff\xfe{}", InvalidEventData, "invalid_data", "not JSON"),
        # nested deeper than json goes (RecursionError), an integer past Python's
        # 4300-digit limit (ValueError): readers calling parse() alone (risk) saw these
        # raise and dead-lettered them as handler_failed
        ("order.cancel.v1", b"[" * 10_000, InvalidEventData, "invalid_data", "RecursionError"),
        (
            "order.cancel.v1",
            b'{"order_id": ' + b"9" * 5000 + b"}",
            InvalidEventData,
            "invalid_data",
            "4300 digits",
        ),
        ("order.cancel.v1", b"[1, 2]", InvalidEventData, "invalid_data", "not a JSON object"),
        ("order.cancel.v1", b'"o-1"', InvalidEventData, "invalid_data", "not a JSON object"),
        ("order.cancel.v1", b"null", InvalidEventData, "invalid_data", "not a JSON object"),
        ("order.cancel.v1", {"order_id": "o-1"}, InvalidEventData, "invalid_data", "actor_id"),
        (
            "order.cancel.v1",
            {**CANCEL, "requested_by": "robot"},
            InvalidEventData,
            "invalid_data",
            "requested_by",
        ),
        (
            "payment.refund.v1",
            {**REFUND, "amount": {"amount_minor": 12.5, "currency": "EUR"}},
            InvalidEventData,
            "invalid_data",
            "amount.amount_minor",
        ),
        (
            "payment.refund.v1",
            {**REFUND, "amount": {"amount_minor": 1250, "currency": "eur"}},
            InvalidEventData,
            "invalid_data",
            "amount.currency",
        ),
    ],
)
def test_poison_data_raises_with_its_reason(
    type_: str, data: bytes | dict[str, Any], poison: type[Exception], reason: str, mentions: str
) -> None:
    with pytest.raises(poison) as caught:
        parse(envelope(type_, data))
    assert getattr(caught.value, "reason", None) == reason
    assert mentions in str(caught.value)


def test_unknown_type_fails_before_the_payload_is_read() -> None:
    with pytest.raises(UnknownEventType):
        parse(envelope("nobody.knows.v1", b"{not json"))


# --- registration ---


@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register test-only types in copies of the registry's tables, restored afterwards."""
    monkeypatch.setattr(registry, "_models", dict(registry._models))
    monkeypatch.setattr(registry, "_upcasters", dict(registry._upcasters))


@pytest.mark.usefixtures("scratch_registry")
def test_upcaster_chain_hands_readers_the_newest_version() -> None:
    @event("test.thing_happened.v1")
    class ThingV1(Message):
        order_id: str
        price: int

    @event("test.thing_happened.v2")
    class ThingV2(Message):
        order_id: str
        price_minor: int

    @event("test.thing_happened.v3")
    class ThingV3(Message):
        order_id: str
        price_minor: int
        currency: str

    @upcaster("test.thing_happened.v1")
    def v1_to_v2(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return "test.thing_happened.v2", {
            "order_id": data["order_id"],
            "price_minor": data["price"],
        }

    @upcaster("test.thing_happened.v2")
    def v2_to_v3(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return "test.thing_happened.v3", {**data, "currency": "EUR"}

    old = parse(envelope("test.thing_happened.v1", {"order_id": "o-1", "price": 990}))
    middle = parse(envelope("test.thing_happened.v2", {"order_id": "o-1", "price_minor": 990}))
    assert old == middle == ThingV3(order_id="o-1", price_minor=990, currency="EUR")
    assert type(old) is ThingV3
    assert ThingV1.TYPE == "test.thing_happened.v1"
    assert ThingV2.KIND == "event"


@pytest.mark.usefixtures("scratch_registry")
def test_upcast_result_is_validated_against_the_newer_model() -> None:
    @event("test.widget_moved.v1")
    class WidgetV1(Message):
        order_id: str

    @event("test.widget_moved.v2")
    class WidgetV2(Message):
        order_id: str
        bin: str

    upcaster("test.widget_moved.v1")(lambda data: ("test.widget_moved.v2", data))

    with pytest.raises(InvalidEventData) as caught:
        parse(envelope("test.widget_moved.v1", {"order_id": "o-1"}))
    assert "test.widget_moved.v2" in str(caught.value)
    assert "bin" in str(caught.value)


def test_scratch_types_do_not_leak() -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(registry, "_models", dict(registry._models))

        @command("test.do_it.v1")
        class DoIt(Message):
            order_id: str

        assert all_models()["test.do_it.v1"] is DoIt
    assert "test.do_it.v1" not in all_models()


@pytest.mark.parametrize("bad", ["placed", "order.placed", "order.placed.v0", "Order.placed.v1"])
def test_type_names_must_be_context_name_version(bad: str) -> None:
    with pytest.raises(ValueError, match="is not"):
        event(bad)


def test_a_type_cannot_be_registered_twice() -> None:
    with pytest.raises(ValueError, match="twice"):
        event("order.placed.v1")(CancelOrder)


@pytest.mark.usefixtures("scratch_registry")
def test_the_subject_field_must_exist() -> None:
    class NoOrder(Message):
        sku: str

    with pytest.raises(ValueError, match="subject"):
        event("test.no_order.v1")(NoOrder)


# --- conventions every registered model keeps ---


@pytest.mark.parametrize("type_", sorted(all_models()))
def test_every_event_says_when_it_happened(type_: str) -> None:
    model = all_models()[type_]
    if model.KIND == "event":
        assert model.model_fields["occurred_at"].annotation is datetime


def contains_number(node: Any) -> bool:
    if isinstance(node, dict):
        return node.get("type") == "number" or any(contains_number(v) for v in node.values())
    if isinstance(node, list):
        return any(contains_number(item) for item in node)
    return False


@pytest.mark.parametrize("type_", sorted(all_models()))
def test_contracts_carry_no_floats(type_: str) -> None:
    """Money is integer minor units; scores and quantities are integers too."""
    assert not contains_number(all_models()[type_].model_json_schema())


def test_kinds_are_events_or_commands() -> None:
    kinds = {model.KIND for model in all_models().values()}
    assert kinds == {"event", "command"}
