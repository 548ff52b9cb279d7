"""The committed contract (asyncapi.yaml, JSON Schema snapshots) matches the code."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from shared.schemas.export import (
    ASYNCAPI_PATH,
    asyncapi_document,
    check,
    load,
    render,
    snapshot_files,
)
from shared.schemas.registry import all_models
from shared.schemas.topics import TOPICS

HOW_TO_FIX = "run: python -m shared.schemas.export --write"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    result: dict[str, Any] = yaml.safe_load(ASYNCAPI_PATH.read_text())
    return result


def test_committed_asyncapi_is_the_generated_one() -> None:
    assert ASYNCAPI_PATH.read_text() == render(asyncapi_document()), HOW_TO_FIX


@pytest.mark.parametrize("type_", sorted(all_models()))
def test_newest_snapshot_is_the_current_schema(type_: str) -> None:
    files = snapshot_files(type_)
    assert files, f"{type_} has no snapshot; {HOW_TO_FIX}"
    assert load(files[-1]) == all_models()[type_].model_json_schema(), HOW_TO_FIX


def test_export_check_passes() -> None:
    assert check() == []


def test_generation_is_deterministic() -> None:
    shuffled = dict(reversed(list(TOPICS.items())))
    models = dict(reversed(list(all_models().items())))
    assert render(asyncapi_document(models, shuffled)) == render(asyncapi_document())


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in refs(item)]
    return []


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_every_ref_resolves_inside_the_document(document: dict[str, Any]) -> None:
    all_refs = refs(document)
    assert all_refs
    assert not [ref for ref in all_refs if "$defs" in ref]
    for ref in set(all_refs):
        assert resolve(document, ref) is not None, ref


def test_document_shape(document: dict[str, Any]) -> None:
    assert document["asyncapi"] == "3.0.0"
    assert set(document["servers"]) == {"development", "production"}
    assert set(document["channels"]) == set(TOPICS)
    assert set(document["components"]["messages"]) == set(all_models())
    assert "$defs" not in str(document)


@pytest.mark.parametrize("name", sorted(TOPICS))
def test_operations_follow_writers_and_consumers(document: dict[str, Any], name: str) -> None:
    topic = TOPICS[name]
    on_topic = {
        (op["action"], op_id.rsplit(".", 1)[1])
        for op_id, op in document["operations"].items()
        if op["channel"]["$ref"] == f"#/channels/{name}"
    }
    expected = {("send", s) for s in topic.writers} | {("receive", s) for s in topic.consumers}
    assert on_topic == expected
    assert set(document["channels"][name]["messages"]) == set(topic.messages)


def test_cloudevents_headers_trait(document: dict[str, Any]) -> None:
    headers = document["components"]["messageTraits"]["CloudEventsBinary"]["headers"]
    assert set(headers["properties"]) == {
        "ce_id",
        "ce_type",
        "ce_source",
        "ce_specversion",
        "ce_time",
        "ce_subject",
        "content-type",
        "traceparent",
        "correlation_id",
        "causation_id",
    }
    assert set(headers["required"]) == {
        "ce_id",
        "ce_type",
        "ce_source",
        "ce_specversion",
        "ce_time",
    }
    for message in document["components"]["messages"].values():
        assert message["traits"] == [{"$ref": "#/components/messageTraits/CloudEventsBinary"}]
