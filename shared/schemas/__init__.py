"""Conveyor's event contracts: envelope, one model per type+version, topic registry."""

from shared.schemas import events  # noqa: F401  (registers every model)
from shared.schemas.envelope import Envelope, PoisonMessage, from_record, to_headers
from shared.schemas.registry import Message, all_models, is_upcast, model_for, parse
from shared.schemas.topics import TOPICS, Topic, dlq_topic, subscriptions, topic_for_message

__all__ = [
    "TOPICS",
    "Envelope",
    "Message",
    "PoisonMessage",
    "Topic",
    "all_models",
    "dlq_topic",
    "from_record",
    "is_upcast",
    "model_for",
    "parse",
    "subscriptions",
    "to_headers",
    "topic_for_message",
]
