"""How the consumer splits a batch into steps: runs for a Batched handler, single records
otherwise. Pure logic: records and messages are built in memory."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

from shared.runtime.consumer import Batched, Handler, Item, Run, plan_runs
from shared.schemas import Envelope, Message
from tests.unit.runtime.test_consumer_decoding import record


async def _noop(*_: object) -> None: ...


SAGA = Batched(_noop)
STOCK = Batched(_noop)
HANDLERS: dict[str, Handler] = {"saga.v1": SAGA, "stock.v1": STOCK, "request.v1": _noop}


def item(type_: str, id_: str) -> Item:
    message = cast(Message, SimpleNamespace(TYPE=type_))
    return Item(
        record(b"{}", [], offset=0), Envelope(id=id_, type=type_, source="t", data=b""), message
    )


def shape(steps: list[Item | Run]) -> list[object]:
    """Runs as (handler, ids), single records as their id."""

    def one(step: Item | Run) -> object:
        if isinstance(step, Run):
            return ("run", step.handler, [i.envelope.id for i in step.items if i.envelope])
        return step.envelope.id if step.envelope else "poison"

    return [one(step) for step in steps]


def test_records_the_service_does_not_handle_do_not_end_a_run() -> None:
    items = [item("saga.v1", "a"), item("other.v1", "x"), item("saga.v1", "b")]
    steps, known = plan_runs(items, HANDLERS, {"a", "b"})
    assert shape(steps) == [("run", SAGA, ["a", "b"])]
    assert [(i.envelope.id, outcome) for i, outcome in known if i.envelope] == [
        ("a", "handled"),
        ("x", "ignored"),
        ("b", "handled"),
    ]


def test_a_record_handler_or_another_batched_handler_ends_a_run() -> None:
    items = [
        item("saga.v1", "a"),
        item("request.v1", "r"),
        item("saga.v1", "b"),
        item("stock.v1", "s"),
        item("saga.v1", "c"),
    ]
    steps, _ = plan_runs(items, HANDLERS, {"a", "r", "b", "s", "c"})
    assert shape(steps) == [
        ("run", SAGA, ["a"]),
        "r",
        ("run", SAGA, ["b"]),
        ("run", STOCK, ["s"]),
        ("run", SAGA, ["c"]),
    ]


def test_a_poison_record_ends_a_run_and_is_its_own_step() -> None:
    poison = Item(record(b"{oops", []))
    steps, _ = plan_runs([item("saga.v1", "a"), poison, item("saga.v1", "b")], HANDLERS, {"a", "b"})
    assert shape(steps) == [("run", SAGA, ["a"]), "poison", ("run", SAGA, ["b"])]


def test_a_repeated_id_is_a_duplicate_and_stays_out_of_the_run() -> None:
    items = [
        item("saga.v1", "a"),
        item("saga.v1", "a"),
        item("saga.v1", "seen"),
        item("saga.v1", "b"),
    ]
    steps, known = plan_runs(items, HANDLERS, {"a", "b"})  # "seen": in the inbox already
    assert shape(steps) == [("run", SAGA, ["a", "b"])]
    assert [outcome for _, outcome in known] == ["handled", "duplicate", "duplicate", "handled"]
