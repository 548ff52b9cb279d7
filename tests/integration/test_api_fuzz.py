"""Every HTTP API answers as its OpenAPI document says: schemathesis against real processes.

Each service of the stack is started as ``make run`` starts it; schemathesis reads the
service's ``/openapi.json`` and sends, per operation, a few requests that fit the schema
and a few that do not. Every answer must be a documented status with a body and content
type that match the document, and never a server error. A pick task exists, so the
handheld API is also driven on a real task, not only on unknown ids.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis.strategies import SearchStrategy
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.harness import Stack
from tests.integration.test_picking import confirmed, publish, reserved, wait_for

SERVICES = (
    "order",
    "portal",
    "payment",
    "inventory",
    "risk",
    "fulfillment.picking",
    "fulfillment.packing",
    "fulfillment.shipping",
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = 50  # per operation and mode: bounds the run to a few minutes on two cores
REQUEST_TIMEOUT_S = 10.0  # a request that hangs (an endless stream) is a failure too
# read-your-writes waits up to 30 s by design for a version not yet projected: keep the
# waits short, or one operation would take minutes
QUERY = {"wait_ms": 100}


Note = Callable[[str, str, schemathesis.Case], None]


def fuzz(document: dict[str, Any], base_url: str, path_parameters: dict[str, str]) -> list[str]:
    """Problems found in one service's API, one per operation and kind of failure, each
    with a curl command that reproduces it."""
    # an open stream is read for one event: it proves the status and the content type
    config = schemathesis.Config.from_dict({"max-stream-events": 1})
    schema = schemathesis.openapi.from_dict(document, config=config)
    problems: dict[tuple[str, str], str] = {}

    def note(title: str, message: str, case: schemathesis.Case) -> None:
        problems.setdefault((case.operation.label, title), f"{message}\n{case.as_curl_command()}")

    for result in schema.get_all_operations():
        operation = result.ok()
        fixed = {
            name: value
            for name, value in path_parameters.items()
            if f"{{{name}}}" in operation.path
        }
        query = {
            name: value
            for name, value in QUERY.items()
            if any(p.name == name for p in operation.query)
        }
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for parameters in ({}, fixed) if fixed else ({},):
                strategy = operation.as_strategy(
                    mode, path_parameters=parameters or None, query=query or None
                )
                with contextlib.suppress(Unsatisfiable):  # nothing to negate here
                    send_each(strategy, base_url, note)
    return [f"{label} -> {kind}\n{detail}" for (label, kind), detail in sorted(problems.items())]


def send_each(strategy: SearchStrategy[schemathesis.Case], base_url: str, note: Note) -> None:
    """Send up to EXAMPLES cases and note every failed check; no shrinking, no stopping."""

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run(case: schemathesis.Case) -> None:
        try:
            case.call_and_validate(base_url=base_url, checks=CHECKS, timeout=REQUEST_TIMEOUT_S)
        except FailureGroup as group:
            for failure in group.exceptions:
                note(failure.title, failure.message, case)
        except Failure as failure:
            note(failure.title, failure.message, case)
        except Exception as exc:  # e.g. a timeout: the API did not answer
            note(type(exc).__name__, str(exc), case)

    run()


async def test_every_service_answers_as_its_openapi_document_says(stack: Stack) -> None:
    overrides = {
        "fulfillment.picking": {"picking_simulator": "false", "picking_strategy": "single_order"},
    }
    processes = [stack.service(name, **overrides.get(name, {})) for name in SERVICES]
    for process in processes:
        process.start()
    await asyncio.gather(*(process.ready(timeout_s=120) for process in processes))

    lines = [("1", "MUG-BLUE", "WH-LON", 2), ("2", "TEE-M", "WH-LON", 3)]
    await publish(stack, reserved("ord-fuzz", lines), confirmed("ord-fuzz"))
    [created] = await wait_for(stack, "picking.task_created.v1", 1)
    fixed = {"task_id": created["task_id"], "warehouse_id": "WH-LON"}

    problems: list[str] = []
    async with httpx.AsyncClient() as http:
        for process in processes:
            document = (await http.get(f"{process.url}/openapi.json")).json()
            found = await asyncio.to_thread(fuzz, document, process.url, fixed)
            problems += [f"[{process.name}] {problem}" for problem in found]
    assert not problems, "\n\n".join(problems)
