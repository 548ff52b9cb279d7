"""The partition counts topic creation asks for."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.runtime.settings import Settings
from shared.runtime.topics import DLQ_PARTITIONS, registry_topics
from shared.schemas.topics import CONSUMING_SERVICES, TOPICS, dlq_topic


def test_the_registry_counts_by_default_and_one_count_for_all_when_set() -> None:
    assert {n: registry_topics()[n] for n in TOPICS} == {
        t.name: t.partitions for t in TOPICS.values()
    }
    assert {n: registry_topics(1)[n] for n in TOPICS} == {n: 1 for n in TOPICS}
    for service in CONSUMING_SERVICES:  # dead letters: one partition either way
        assert registry_topics(3)[dlq_topic(service)] == DLQ_PARTITIONS


def test_a_partition_count_below_one_is_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(topic_partitions=0)
