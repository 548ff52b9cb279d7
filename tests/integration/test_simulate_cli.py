"""`conveyor simulate` and `conveyor send` publish valid storefront orders through a real
producer."""

from __future__ import annotations

import pytest

from shared.runtime.client import publish_submission
from shared.schemas import model_for
from shared.schemas.registry import InvalidEventData
from tests.factories import submission_body
from tests.integration.harness import Stack, conveyor, data, header


async def test_simulate_publishes_the_requested_orders_with_progress(stack: Stack) -> None:
    output = await conveyor(
        stack.bootstrap, "simulate", "--count", "25", "--rate", "0", "--run-id", "t1", "--seed", "7"
    )
    assert "25/25" in output, "the progress bar counts what the broker acknowledged"

    records = await stack.wait_for_records("order.commands", 25)
    references = set()
    for record in records:
        assert header(record, "ce_type") == "order.submit.v1"
        body = model_for("order.submit.v1").model_validate(data(record))
        references.add(body.storefront_reference)  # type: ignore[attr-defined]
    assert references == {f"t1-{n:07d}" for n in range(25)}


async def test_send_publishes_one_order_as_a_storefront_would(stack: Stack) -> None:
    body = submission_body("SEND-1")
    event_id = await publish_submission(stack.bootstrap, body)

    [record] = await stack.wait_for_records("order.commands", 1)
    assert header(record, "ce_id") == event_id
    assert header(record, "ce_type") == "order.submit.v1"
    assert header(record, "ce_source") == f"storefront/{body['storefront_id']}"
    assert record.key == header(record, "ce_subject").encode()
    assert data(record)["storefront_reference"] == "SEND-1"


async def test_send_refuses_an_invalid_order_before_publishing() -> None:
    body = submission_body("SEND-2")
    del body["total_minor"]
    with pytest.raises(InvalidEventData, match="total_minor"):
        await publish_submission("127.0.0.1:1", body)  # never reaches a broker
