"""Publish the contracts: JSON Schema snapshots per type+version and an AsyncAPI 3.0 document.

    python -m shared.schemas.export            # print the AsyncAPI document
    python -m shared.schemas.export --write    # add changed snapshots, regenerate asyncapi.yaml
    python -m shared.schemas.export --check    # exit 1 when committed files are not current

Snapshots are append-only: ``jsonschema/<type>/<NNNN>.json``. ``--write`` adds one only
when a model's schema differs from its newest snapshot, and only if the model still reads
every earlier snapshot of its type (BACKWARD_TRANSITIVE: instances generated from each
snapshot must pass :func:`registry.parse`, upcasters included). It never rewrites or
deletes a snapshot.

One tightening is not a break: refusing what PostgreSQL cannot store (a NUL character in
a string, an integer beyond an ``integer`` or ``bigint`` column; see
``shared.schemas.common``). No service ever processed such a message — its handler failed
on the first write — so no reader can depend on it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from shared.schemas.common import INT32_MAX, INT64_MAX, INT64_MIN, NO_NUL
from shared.schemas.envelope import CONTENT_TYPE, REQUIRED_HEADERS, SPEC_VERSION, Envelope
from shared.schemas.registry import Message, all_models, parse
from shared.schemas.topics import EXTERNAL, TOPICS, Topic

HERE = Path(__file__).parent
SNAPSHOT_DIR = HERE / "jsonschema"
ASYNCAPI_PATH = HERE / "asyncapi.yaml"
EXAMPLES_PER_SNAPSHOT = 25
DOCUMENT_VERSION = "1.0.0"  # of the document's shape; message versions live in their types
KAFKA_BINDING_VERSION = "0.5.0"

Schema = dict[str, Any]
Models = Mapping[str, type[Message]]
Reader = Callable[[str, dict[str, Any]], object]


class IncompatibleSchema(Exception):
    """The current models cannot read data written under earlier snapshots."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# --- JSON Schema snapshots ---


def snapshot_files(type_: str, root: Path = SNAPSHOT_DIR) -> list[Path]:
    return sorted((root / type_).glob("[0-9][0-9][0-9][0-9].json"))


def load(path: Path) -> Schema:
    result: Schema = json.loads(path.read_text())
    return result


def dump(schema: Schema) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def unsaved(models: Models, root: Path = SNAPSHOT_DIR) -> dict[str, Schema]:
    """Types whose current schema has no snapshot yet, or differs from the newest one."""
    result = {}
    for type_, model in models.items():
        files = snapshot_files(type_, root)
        schema = model.model_json_schema()
        if not files or load(files[-1]) != schema:
            result[type_] = schema
    return result


def orphans(models: Models, root: Path = SNAPSHOT_DIR) -> list[str]:
    """Snapshot folders whose type is no longer registered: its old data would be unreadable."""
    folders = sorted(path for path in root.iterdir() if path.is_dir()) if root.is_dir() else []
    return [
        f"{path.name}: snapshots exist but no model is registered"
        for path in folders
        if path.name not in models
    ]


def read_registered(type_: str, data: dict[str, Any]) -> Message:
    """Read ``data`` as a consumer would: upcast and validate through the registry."""
    envelope = Envelope(type=type_, source="conveyor/schema-check", data=json.dumps(data).encode())
    return parse(envelope)


STORAGE_LIMITS = (
    ("string_pattern_mismatch", "pattern", NO_NUL),
    ("less_than_equal", "le", INT32_MAX),
    ("less_than_equal", "le", INT64_MAX),
    ("greater_than_equal", "ge", INT64_MIN),
)


def beyond_storage(exc: BaseException) -> bool:
    """Whether ``exc`` refused a message only for what PostgreSQL could not have stored."""
    error = exc if isinstance(exc, ValidationError) else exc.__cause__
    if not isinstance(error, ValidationError):
        return False
    return all(
        any(
            found["type"] == type_ and found.get("ctx", {}).get(key) == limit
            for type_, key, limit in STORAGE_LIMITS
        )
        for found in error.errors()
    )


def incompatibility(
    snapshot: Schema,
    type_: str,
    read: Reader = read_registered,
    max_examples: int = EXAMPLES_PER_SNAPSHOT,
) -> str | None:
    """The first instance of ``snapshot`` that ``read`` rejects (shrunk), or None."""
    # hypothesis-jsonschema 0.23.1 uses a hypothesis internal removed in 6.170.10.
    from hypothesis import HealthCheck, given, settings
    from hypothesis_jsonschema import from_schema

    rejected: list[tuple[Any, Exception]] = []

    @settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(from_schema(snapshot))
    def reads(instance: Any) -> None:
        try:
            read(type_, instance)
        except Exception as exc:
            if beyond_storage(exc):
                return  # never stored, so never read back: see the module's doc
            rejected.append((instance, exc))
            raise

    try:
        reads()
    except Exception:
        if not rejected:
            raise  # generation failed: not a verdict on the model
        instance, exc = rejected[-1]  # hypothesis replays the shrunk example last
        return f"rejects {json.dumps(instance, sort_keys=True)}: {exc}"
    return None


def compatibility_problems(
    types: Iterable[str], read: Reader = read_registered, root: Path = SNAPSHOT_DIR
) -> list[str]:
    problems = []
    for type_ in types:
        for path in snapshot_files(type_, root):
            problem = incompatibility(load(path), type_, read)
            if problem:
                problems.append(f"{type_}: {path.name} is no longer readable: {problem}")
    return problems


def write_snapshots(
    models: Models, root: Path = SNAPSHOT_DIR, read: Reader = read_registered
) -> list[Path]:
    """Add a snapshot for each changed type; all or nothing, never overwriting one."""
    changed = unsaved(models, root)
    problems = orphans(models, root) + compatibility_problems(changed, read, root)
    if problems:
        raise IncompatibleSchema(problems)
    written = []
    for type_, schema in changed.items():
        files = snapshot_files(type_, root)
        number = int(files[-1].stem) + 1 if files else 1
        path = root / type_ / f"{number:04d}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("x") as out:  # "x": fail rather than overwrite
            out.write(dump(schema))
        written.append(path)
    return written


# --- AsyncAPI 3.0 ---


def _string(description: str, **constraints: str) -> Schema:
    return {"type": "string", "description": description, **constraints}


CLOUDEVENTS_HEADERS: Schema = {
    "type": "object",
    "required": list(REQUIRED_HEADERS),
    "properties": {
        "ce_id": _string("Event id: the idempotency key consumers deduplicate on."),
        "ce_type": _string("Message type and version, e.g. order.placed.v1."),
        "ce_source": _string("The producing service."),
        "ce_specversion": _string("CloudEvents version.", const=SPEC_VERSION),
        "ce_time": _string("When the event happened (RFC 3339).", format="date-time"),
        "ce_subject": _string(
            "Equal to the Kafka key: order id, SKU, customer id or storefront reference."
        ),
        "content-type": _string("Content type of the value.", const=CONTENT_TYPE),
        "traceparent": _string("W3C trace context."),
        "correlation_id": _string("The whole conversation, usually the order's first event."),
        "causation_id": _string("ce_id of the message that caused this one."),
    },
}


def _rewrite_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: value.replace("#/$defs/", "#/components/schemas/")
            if key == "$ref" and isinstance(value, str)
            else _rewrite_refs(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(item) for item in node]
    return node


def _hoisted_schemas(models: Models) -> dict[str, Schema]:
    """Payload schemas by type, plus their shared ``$defs``, with ``$ref``s re-pointed."""
    schemas: dict[str, Schema] = {}
    shared_by: dict[str, str] = {}
    for type_, model in models.items():
        schema = model.model_json_schema()
        for name, definition in schema.pop("$defs", {}).items():
            definition = _rewrite_refs(definition)
            if name in schemas and schemas[name] != definition:
                raise ValueError(
                    f"two different models named {name} ({shared_by[name]} and {type_}): rename one"
                )
            schemas[name], shared_by[name] = definition, type_
        schemas[type_] = _rewrite_refs(schema)
    return dict(sorted(schemas.items()))


def _summary(model: type[Message]) -> str:
    return (model.__doc__ or model.__name__).strip().splitlines()[0]


def _message(model: type[Message], topic: Topic) -> Schema:
    return {
        "name": model.TYPE,
        "title": model.__name__,
        "summary": _summary(model),
        "description": f"{model.KIND.capitalize()} on {topic.name}, ce_type {model.TYPE}. "
        f"Kafka key and ce_subject: the {model.SUBJECT} field.",
        "contentType": CONTENT_TYPE,
        "payload": {"$ref": f"#/components/schemas/{model.TYPE}"},
        "traits": [{"$ref": "#/components/messageTraits/CloudEventsBinary"}],
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": f"the {model.SUBJECT} field"},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def _channel(topic: Topic) -> Schema:
    return {
        "address": topic.name,
        "title": topic.name,
        "description": f"{topic.description} Written by: {', '.join(topic.writers)}. "
        f"Read by: {', '.join(topic.consumers)}. Key: {topic.key}.",
        "messages": {
            type_: {"$ref": f"#/components/messages/{type_}"} for type_ in sorted(topic.messages)
        },
        "bindings": {
            "kafka": {
                "topic": topic.name,
                "partitions": topic.partitions,
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def _operations(topic: Topic) -> dict[str, Schema]:
    messages = [
        {"$ref": f"#/channels/{topic.name}/messages/{type_}"} for type_ in sorted(topic.messages)
    ]
    roles = [("send", s) for s in topic.writers] + [("receive", s) for s in topic.consumers]
    operations = {}
    for action, service in roles:
        who = (
            "outside callers (storefronts, 3PL clients, devices)"
            if service == EXTERNAL
            else service
        )
        operations[f"{topic.name}.{action}.{service}"] = {
            "action": action,
            "channel": {"$ref": f"#/channels/{topic.name}"},
            "summary": f"{'Sent' if action == 'send' else 'Received'} by {who}.",
            "messages": messages,
        }
    return operations


def asyncapi_document(models: Models | None = None, topics: Mapping[str, Topic] = TOPICS) -> Schema:
    models = all_models() if models is None else models
    ordered = [topics[name] for name in sorted(topics)]
    messages = {
        type_: _message(models[type_], topic) for topic in ordered for type_ in topic.messages
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Conveyor events and commands",
            "version": DOCUMENT_VERSION,
            "description": "Kafka contract of Conveyor's services. Every message is a "
            "CloudEvents 1.0 event in Kafka binary mode: attributes in ce_* headers, JSON "
            "data as the value. Types are versioned (<context>.<name>.v<N>); old versions "
            "stay readable forever. Generated by `python -m shared.schemas.export --write`; "
            "see docs/contracts.md.",
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "development": {
                "host": "127.0.0.1:{port}",
                "protocol": "kafka",
                "description": "The embedded broker `make run` starts (tests use free ports) "
                "(memory only, no idempotent producer).",
                "variables": {"port": {"default": "19092"}},
            },
            "production": {
                "host": "{bootstrap}",
                "protocol": "kafka",
                "protocolVersion": "3.7",
                "description": "Apache Kafka >= 3.7 in KRaft mode, or a Kafka-compatible service.",
                "variables": {"bootstrap": {"default": "kafka:9092"}},
            },
        },
        "channels": {topic.name: _channel(topic) for topic in ordered},
        "operations": dict(
            sorted(item for topic in ordered for item in _operations(topic).items())
        ),
        "components": {
            "schemas": _hoisted_schemas(models),
            "messages": dict(sorted(messages.items())),
            "messageTraits": {"CloudEventsBinary": {"headers": CLOUDEVENTS_HEADERS}},
        },
    }


def render(document: Schema) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)


# --- command line ---


def check(
    models: Models | None = None,
    root: Path = SNAPSHOT_DIR,
    asyncapi_path: Path = ASYNCAPI_PATH,
) -> list[str]:
    """What is not current: missing or stale snapshots, orphans, the AsyncAPI document."""
    models = all_models() if models is None else models
    problems = []
    for type_ in unsaved(models, root):
        files = snapshot_files(type_, root)
        problems.append(
            f"{type_}: schema differs from {files[-1].name}" if files else f"{type_}: no snapshot"
        )
    problems += orphans(models, root)
    current = asyncapi_path.is_file() and asyncapi_path.read_text() == render(
        asyncapi_document(models)
    )
    if not current:
        problems.append(f"{asyncapi_path.name} is not current")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.schemas.export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="add snapshots, write asyncapi.yaml")
    mode.add_argument("--check", action="store_true", help="fail if anything is not current")
    args = parser.parse_args(argv)
    models = all_models()
    if args.check:
        problems = check(models)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("run: python -m shared.schemas.export --write", file=sys.stderr)
            return 1
        print(f"contracts current: {len(models)} types")
        return 0
    if args.write:
        try:
            written = write_snapshots(models)
        except IncompatibleSchema as exc:
            print("refusing to write: a change would break readers of old data.", file=sys.stderr)
            for problem in exc.problems:
                print(f"  {problem}", file=sys.stderr)
            print(
                "Make the change compatible (new fields optional, constraints not tighter), "
                "or add a new version with an upcaster.",
                file=sys.stderr,
            )
            return 1
        for path in written:
            print(f"added {path.relative_to(HERE.parent.parent)}")
        ASYNCAPI_PATH.write_text(render(asyncapi_document(models)))
        print(f"wrote {ASYNCAPI_PATH.relative_to(HERE.parent.parent)}")
        return 0
    sys.stdout.write(render(asyncapi_document(models)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
