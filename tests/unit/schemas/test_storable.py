"""Contracts accept only what PostgreSQL can store: no NUL in a string, integers that fit
their column. Such input is invalid data (422, or dead-lettered as ``invalid_data``)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import pytest
from pydantic import Field

from shared.schemas.common import INT32_MAX, INT64_MAX
from shared.schemas.envelope import Envelope
from shared.schemas.events.fulfillment import ConfirmPick
from shared.schemas.events.inventory import ReceiveStock
from shared.schemas.events.order import SubmitOrder
from shared.schemas.export import incompatibility, load, snapshot_files
from shared.schemas.registry import InvalidEventData, all_models, parse
from tests.factories import submission_body

CONFIRM = "picking.confirm_pick.v1"


def confirm_pick(**overrides: Any) -> dict[str, Any]:
    return {
        "order_id": "o-1",
        "task_id": "t-1",
        "line_id": "1",
        "sku": "MUG-BLUE",
        "location": "H-04-02",
        "quantity_picked": 1,
        "picker_id": "ada",
        "confirmation_id": "c-1",
        "scanned_at": "2026-01-01T00:00:00Z",
        **overrides,
    }


def parsed(type_: str, data: dict[str, Any]) -> object:
    return parse(Envelope(type=type_, source="test", data=json.dumps(data).encode()))


@pytest.mark.parametrize(
    "body",
    [
        submission_body("NUL\x00REF"),
        submission_body("R", customer={"customer_id": "c", "email": "a@b.c", "name": "A\x00"}),
        submission_body("R", lines=[{"sku": "MUG\x00", "quantity": 1, "unit_price_minor": 1}]),
        submission_body("R", payment={"method": "card", "token": "tok\x00"}),
        submission_body("R", total_minor=INT64_MAX + 1),
    ],
    ids=["reference", "customer name", "line sku", "payment token", "total beyond bigint"],
)
def test_a_submission_postgresql_cannot_store_is_invalid_data(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidEventData):
        parsed(SubmitOrder.TYPE, body)


def test_counts_beyond_an_integer_column_are_invalid_data() -> None:
    assert parsed(CONFIRM, confirm_pick(quantity_picked=INT32_MAX))
    with pytest.raises(InvalidEventData, match="quantity_picked"):
        parsed(CONFIRM, confirm_pick(quantity_picked=INT32_MAX + 1))
    receipt = {"sku": "S", "warehouse_id": "W", "receipt_id": "r", "received_by": "x"}
    with pytest.raises(InvalidEventData, match="quantity"):
        parsed(ReceiveStock.TYPE, {**receipt, "quantity": 99_999_999_999})


def _strings_without_a_pattern(node: Any, path: str = "") -> list[str]:
    if isinstance(node, list):
        return [p for i, item in enumerate(node) for p in _strings_without_a_pattern(item, path)]
    if not isinstance(node, dict):
        return []
    found = []
    if node.get("type") == "string" and not {"pattern", "enum", "const", "format"} & set(node):
        found.append(path)
    for key, value in node.items():
        found += _strings_without_a_pattern(value, f"{path}/{key}")
    return found


@pytest.mark.parametrize("type_", sorted(all_models()))
def test_every_free_string_of_every_contract_refuses_nul(type_: str) -> None:
    schema = all_models()[type_].model_json_schema()
    assert _strings_without_a_pattern(schema) == [], "use shared.schemas.common.Text"


# --- the compatibility checker allows exactly these tightenings ---


class ConfirmWithin(ConfirmPick):
    """Throwaway, never registered: bounded to what an integer column holds."""

    quantity_picked: Annotated[int, Field(ge=0, le=INT32_MAX)]


class ConfirmAtMostAThousand(ConfirmPick):
    """Throwaway, never registered: a business bound, which old data may exceed."""

    quantity_picked: Annotated[int, Field(ge=0, le=1000)]


def test_checker_allows_refusing_what_postgresql_could_not_store_and_nothing_more() -> None:
    first = load(snapshot_files(CONFIRM)[0])
    assert "maximum" not in json.dumps(first)  # the first snapshot had no bound

    def reader(model: type[ConfirmPick]) -> Any:
        return lambda _type, data: model.model_validate(data)

    assert incompatibility(first, CONFIRM, reader(ConfirmWithin)) is None
    problem = incompatibility(first, CONFIRM, reader(ConfirmAtMostAThousand))
    assert problem is not None and "quantity_picked" in problem
