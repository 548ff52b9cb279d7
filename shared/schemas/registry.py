"""Event type registry: ``<context>.<name>.v<N>`` → pydantic model, plus upcasters.

Every type and version ever published stays registered, so old events stay readable
forever (replay depends on it). A breaking change is a new version plus an upcaster
from the old one; readers are handed the newest version.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from shared.schemas.envelope import Envelope, PoisonMessage

TYPE_PATTERN = re.compile(r"^[a-z_]+(\.[a-z_]+)+\.v[1-9][0-9]*$")


class UnknownEventType(PoisonMessage):
    reason = "unknown_type"


class InvalidEventData(PoisonMessage):
    reason = "invalid_data"


class Message(BaseModel):
    """Base of every event and command. ``TYPE`` is set by :func:`message`."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    TYPE: ClassVar[str]
    KIND: ClassVar[str]  # "event" | "command"
    SUBJECT: ClassVar[str]  # field holding the subject / partition key

    @property
    def subject(self) -> str:
        return str(getattr(self, self.SUBJECT))

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()


M = TypeVar("M", bound=type[Message])

_models: dict[str, type[Message]] = {}
_upcasters: dict[str, Callable[[dict[str, Any]], tuple[str, dict[str, Any]]]] = {}


def _register(type_: str, kind: str, subject: str) -> Callable[[M], M]:
    if not TYPE_PATTERN.match(type_):
        raise ValueError(f"{type_!r} is not <context>.<name>.v<N>")

    def decorate(model: M) -> M:
        if type_ in _models:
            raise ValueError(f"{type_} registered twice")
        if subject not in model.__pydantic_fields__:
            raise ValueError(f"{model.__name__} has no subject field {subject!r}")
        model.TYPE, model.KIND, model.SUBJECT = type_, kind, subject
        _models[type_] = model
        return model

    return decorate


def event(type_: str, *, subject: str = "order_id") -> Callable[[M], M]:
    """Register a past-tense event model, e.g. ``@event("order.placed.v1")``."""
    return _register(type_, "event", subject)


def command(type_: str, *, subject: str = "order_id") -> Callable[[M], M]:
    """Register an imperative command model, e.g. ``@command("order.cancel.v1")``."""
    return _register(type_, "command", subject)


def upcaster(from_type: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``fn(data) -> (newer_type, newer_data)`` applied before validation."""

    def decorate(fn: Callable[[dict[str, Any]], tuple[str, dict[str, Any]]]) -> Any:
        _upcasters[from_type] = fn
        return fn

    return decorate


def model_for(type_: str) -> type[Message]:
    try:
        return _models[type_]
    except KeyError:
        raise UnknownEventType(f"no model registered for {type_!r}") from None


def all_models() -> dict[str, type[Message]]:
    return dict(sorted(_models.items()))


def is_upcast(type_: str) -> bool:
    """Whether records of ``type_`` are read as a newer type (known only once parsed)."""
    return type_ in _upcasters


def upcast(type_: str, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    while type_ in _upcasters:
        type_, data = _upcasters[type_](data)
    return type_, data


def parse(envelope: Envelope) -> Message:
    """Decode, upcast and validate an envelope's data; raise :class:`PoisonMessage`."""
    model_for(envelope.type)  # unknown types fail before we look at the payload
    try:
        raw = json.loads(envelope.data)
    # ValueError: not UTF-8, not JSON, or an integer past the 4300-digit limit;
    # RecursionError: nested deeper than the parser goes
    except (ValueError, RecursionError) as exc:
        raise InvalidEventData(f"data is not JSON: {type(exc).__name__}: {exc}"[:500]) from exc
    if not isinstance(raw, dict):
        raise InvalidEventData("data is not a JSON object")
    type_, data = upcast(envelope.type, raw)
    try:
        return model_for(type_).model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise InvalidEventData(f"{type_}: {problems}") from exc
