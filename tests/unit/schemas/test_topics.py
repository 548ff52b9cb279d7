"""Topic registry: every type on exactly one topic, one writer per events topic, keys agree."""

from __future__ import annotations

from collections import Counter

import pytest

from shared.schemas.registry import all_models
from shared.schemas.topics import (
    CONSUMING_SERVICES,
    EXTERNAL,
    TOPICS,
    all_topic_names,
    dlq_topic,
    subscriptions,
    topic_for_message,
)

# A topic's key, as written in the registry, and the message field that must hold it.
KEY_FIELDS = {"order id": "order_id", "SKU": "sku", "customer id": "customer_id"}


def test_every_registered_type_is_on_exactly_one_topic() -> None:
    placements = Counter(type_ for topic in TOPICS.values() for type_ in topic.messages)
    assert sorted(all_models()) == sorted(placements)
    assert [type_ for type_, count in placements.items() if count > 1] == []


def test_every_message_on_a_topic_is_registered() -> None:
    registered = all_models()
    unknown = {
        topic.name: [type_ for type_ in topic.messages if type_ not in registered]
        for topic in TOPICS.values()
    }
    assert {name: types for name, types in unknown.items() if types} == {}


@pytest.mark.parametrize("name", sorted(TOPICS))
def test_topic_names_are_context_events_or_commands(name: str) -> None:
    context, kind = name.split(".")
    assert kind in {"events", "commands"}
    assert context


@pytest.mark.parametrize("name", [n for n in sorted(TOPICS) if n.endswith(".events")])
def test_events_topics_have_exactly_one_writing_service(name: str) -> None:
    writers = TOPICS[name].writers
    assert len(writers) == 1
    assert writers != (EXTERNAL,)


@pytest.mark.parametrize("name", sorted(TOPICS))
def test_events_topics_carry_events_and_commands_topics_commands(name: str) -> None:
    kind = "event" if name.endswith(".events") else "command"
    assert {all_models()[type_].KIND for type_ in TOPICS[name].messages} == {kind}


@pytest.mark.parametrize("name", [n for n in sorted(TOPICS) if TOPICS[n].key in KEY_FIELDS])
def test_messages_are_keyed_by_the_topics_key(name: str) -> None:
    expected = KEY_FIELDS[TOPICS[name].key]
    subjects = {type_: all_models()[type_].SUBJECT for type_ in TOPICS[name].messages}
    assert subjects == dict.fromkeys(subjects, expected)


@pytest.mark.parametrize("name", sorted(TOPICS))
def test_every_topic_is_read_by_someone(name: str) -> None:
    assert TOPICS[name].consumers


def test_commands_are_consumed_by_their_own_service() -> None:
    for topic in TOPICS.values():
        if topic.name.endswith(".commands"):
            assert topic.consumers == (topic.name.split(".")[0],), topic.name


def test_the_portal_reads_every_events_topic() -> None:
    events = sorted(name for name in TOPICS if name.endswith(".events"))
    assert [name for name in events if name not in subscriptions("portal")] == []


def test_lifecycle_subscriptions() -> None:
    assert set(subscriptions("payment")) == {"order.events", "shipping.events", "payment.commands"}
    assert set(subscriptions("inventory")) == {
        "order.events",
        "picking.events",  # short picks
        "shipping.events",
        "inventory.commands",
        "returns.events",
    }
    order_reads = set(subscriptions("order"))
    assert {
        "payment.events",
        "inventory.events",
        "risk.events",
        "picking.events",
        "packing.events",
        "shipping.events",
    } <= order_reads


def test_writer_finds_its_topic_and_a_wrong_writer_fails() -> None:
    assert topic_for_message("stock.level_changed.v1", "inventory") == "stock.events"
    assert topic_for_message("shipment.dispatched.v1", "shipping") == "shipping.events"
    assert topic_for_message("payment.refund.v1", "returns") == "payment.commands"
    with pytest.raises(LookupError):
        topic_for_message("payment.captured.v1", "order")


def test_every_consuming_service_has_a_dead_letter_topic() -> None:
    names = all_topic_names()
    assert [dlq_topic(s) for s in CONSUMING_SERVICES] == names[len(TOPICS) :]
    assert "portal" in CONSUMING_SERVICES
